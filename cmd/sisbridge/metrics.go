package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// processRegistry returns a metrics registry holding the process's own
// metrics beside what the command registers: the Go runtime's (go_goroutines,
// go_memstats_*) and the process's (process_resident_memory_bytes,
// process_open_fds, process_cpu_seconds_total), which an operator and
// `sisload soak` watch for leaks.
func processRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
