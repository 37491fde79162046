package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// floorOpts are the flags of sisload floor.
type floorOpts struct {
	conns, size, rounds int
	pause               time.Duration
}

func (o *floorOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.conns, "conns", 2000, "loopback TCP connections")
	fs.IntVar(&o.size, "size", 300, "bytes per write")
	fs.IntVar(&o.rounds, "rounds", 200, "rounds of one write to every connection")
	fs.DurationVar(&o.pause, "pause", 2*time.Millisecond, "pause between rounds (lets the readers sleep, as clients between events do)")
}

// floorResult is what one write and its read cost the machine.
type floorResult struct {
	Writes  int
	Elapsed time.Duration
	CPU     time.Duration
}

// floorCommand measures the machine's floor under every fan-out: the CPU
// time of one small write to a loopback TCP connection and its read by a
// goroutine, with nothing else on top (no WebSocket, no decoding).
func floorCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o floorOpts
	if err := parseCommand("sisload floor", &o, args, stderr); err != nil {
		return err
	}
	if o.conns < 1 || o.size < 1 || o.rounds < 1 {
		return errors.New("floor: --conns, --size and --rounds want at least 1")
	}
	r, err := runFloor(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d writes of %d bytes to %d loopback connections in %s: %.2f µs of CPU per write and its read\n",
		r.Writes, o.size, o.conns, r.Elapsed.Round(time.Millisecond), float64(r.CPU.Nanoseconds())/1000/float64(r.Writes))
	return nil
}

// runFloor opens the connections, writes the rounds and waits until every
// reader has read every byte.
func runFloor(ctx context.Context, o floorOpts) (floorResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return floorResult{}, fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	var writers []net.Conn
	defer func() {
		for _, c := range writers {
			_ = c.Close()
		}
		wg.Wait()
	}()
	for range o.conns {
		w, err := floorPair(ln, &wg, int64(o.size)*int64(o.rounds))
		if err != nil {
			return floorResult{}, err
		}
		writers = append(writers, w)
	}
	msg := make([]byte, o.size)
	start, cpu0 := time.Now(), cpuTime()
	for range o.rounds {
		if err := ctx.Err(); err != nil {
			return floorResult{}, err
		}
		for _, w := range writers {
			if _, err := w.Write(msg); err != nil {
				return floorResult{}, fmt.Errorf("write: %w", err)
			}
		}
		time.Sleep(o.pause)
	}
	wg.Wait()
	return floorResult{Writes: o.conns * o.rounds, Elapsed: time.Since(start), CPU: cpuTime() - cpu0}, nil
}

// floorPair connects one pair and starts its reader, which reads want
// bytes and ends.
func floorPair(ln net.Listener, wg *sync.WaitGroup, want int64) (net.Conn, error) {
	r, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	w, err := ln.Accept()
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("accept: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer r.Close()
		_, _ = io.CopyN(io.Discard, r, want)
	}()
	return w, nil
}
