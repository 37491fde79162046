package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"
)

// memSample is this process's memory at one moment.
type memSample struct {
	// RSS is the resident set (VmRSS), HWM its peak since the process
	// started or the last resetPeakRSS (VmHWM), both from /proc/self/status.
	RSS uint64 `json:"rss"`
	HWM uint64 `json:"hwm"`
	// Heap is the Go heap in use: spans holding objects, live or not yet
	// swept, and their free slots (MemStats.HeapInuse).
	Heap uint64 `json:"heap"`
	// Goroutines is how many goroutines there are.
	Goroutines int `json:"goroutines"`
	// KernelTCP is the memory the kernel holds in TCP buffers, every
	// process of the machine together (/proc/net/sockstat): data a process
	// has written and its peer not yet read sits there, outside any RSS.
	KernelTCP uint64 `json:"kernelTCP"`
}

// heapMetrics are the runtime/metrics whose sum is MemStats.HeapInuse.
var heapMetrics = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes"}

// sampleMem reads the process's memory without stopping the world.
func sampleMem() memSample {
	s := make([]metrics.Sample, len(heapMetrics))
	for i, name := range heapMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	var m memSample
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			m.Heap += x.Value.Uint64()
		}
	}
	m.RSS, m.HWM = procStatus()
	m.Goroutines = runtime.NumGoroutine()
	m.KernelTCP = kernelTCP()
	return m
}

// kernelTCP returns the TCP buffer memory of the machine in bytes, from
// the "mem" field (pages) of /proc/net/sockstat's TCP line; 0 if unknown.
func kernelTCP() uint64 {
	data, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(data) {
		f := bytes.Fields(line)
		if len(f) == 0 || string(f[0]) != "TCP:" {
			continue
		}
		for i := 1; i+1 < len(f); i += 2 {
			if string(f[i]) == "mem" {
				n, _ := strconv.ParseUint(string(f[i+1]), 10, 64)
				return n * uint64(os.Getpagesize())
			}
		}
	}
	return 0
}

// settledMem collects garbage, returns freed memory to the OS and samples:
// what the process holds, not what it has yet to collect.
func settledMem() memSample {
	runtime.GC()
	debug.FreeOSMemory()
	return sampleMem()
}

// procStatus returns VmRSS and VmHWM of this process in bytes (0 where
// /proc cannot be read).
func procStatus() (rss, hwm uint64) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			rss = kbField(line)
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			hwm = kbField(line)
		}
	}
	return rss, hwm
}

// kbField parses "Name:   1234 kB" into bytes.
func kbField(line []byte) uint64 {
	f := bytes.Fields(line)
	if len(f) < 2 {
		return 0
	}
	n, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return n << 10
}

// resetPeakRSS resets VmHWM to the current RSS (Linux 4.0 and later); it
// reports whether it could.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// memWatch samples the process's memory every interval and keeps the
// peaks, until stop.
type memWatch struct {
	mu      sync.Mutex
	peak    memSample // each field's own maximum
	samples int
	quit    chan struct{}
	done    chan struct{}
}

// watchMem starts sampling every interval.
func watchMem(interval time.Duration) *memWatch {
	w := &memWatch{quit: make(chan struct{}), done: make(chan struct{})}
	w.take()
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-w.quit:
				w.take()
				return
			case <-t.C:
				w.take()
			}
		}
	}()
	return w
}

// take records one sample.
func (w *memWatch) take() {
	s := sampleMem()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples++
	w.peak.RSS = max(w.peak.RSS, s.RSS)
	w.peak.HWM = max(w.peak.HWM, s.HWM)
	w.peak.Heap = max(w.peak.Heap, s.Heap)
	w.peak.Goroutines = max(w.peak.Goroutines, s.Goroutines)
	w.peak.KernelTCP = max(w.peak.KernelTCP, s.KernelTCP)
}

// Peak returns the peaks so far and how many samples they come from.
func (w *memWatch) Peak() (memSample, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak, w.samples
}

// Stop ends the sampling (after a last sample) and returns the peaks.
func (w *memWatch) Stop() (memSample, int) {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
	return w.Peak()
}

// mibs formats bytes in MiB.
func mibs(b uint64) string { return fmt.Sprintf("%.0f", mib(b)) }
