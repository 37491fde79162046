package bridge

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sisbridge/sisbridge/protocol"
)

// Registry is where the gateway registers its metrics: a
// *prometheus.Registry does.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

type metrics struct {
	gatherer                             prometheus.Gatherer
	connections, sessions, subscriptions prometheus.Gauge
	views                                prometheus.Gauge
	eventsIn, framesOut, writes          prometheus.Counter
	slowCloses, rebuilds                 prometheus.Counter
	repairs, viewFaults, freezes         prometheus.Counter
	faults, limitHits                    *prometheus.CounterVec
	latency                              prometheus.Histogram
	toView                               prometheus.Histogram
}

// latencyBuckets are the bounds, in seconds, of the gateway's latency
// histograms: fine below 10 ms, where a light load's tail is, and up to 5 s
// for a backlog.
var latencyBuckets = []float64{.00025, .0005, .00075, .001, .0015, .002, .003, .004, .005, .0075, .01, .02, .05, .1, .2, .5, 1, 2, 5}

func newMetrics(reg Registry) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	f := promFactory{reg}
	m := &metrics{
		gatherer:      reg,
		connections:   f.gauge("sis_gateway_connections", "Open WebSocket connections."),
		sessions:      f.gauge("sis_gateway_sessions", "Initialized sessions."),
		subscriptions: f.gauge("sis_gateway_subscriptions", "Group subscriptions of all sessions."),
		views:         f.gauge("sis_gateway_views", "Group views held by this gateway."),
		eventsIn:      f.counter("sis_gateway_events_in_total", "Router changes applied to views."),
		framesOut:     f.counter("sis_gateway_frames_out_total", "Messages written to clients."),
		writes:        f.counter("sis_gateway_writes_total", "System calls writing to clients (each carries one or more messages)."),
		slowCloses:    f.counter("sis_gateway_slow_client_closes_total", "Clients closed with 4009 for not keeping up."),
		rebuilds:      f.counter("sis_gateway_view_rebuilds_total", "Group views loaded anew over their subscribers (a history that no longer fits, a gap that repairs did not close)."),
		repairs:       f.counter("sis_gateway_view_repairs_total", "Reads of missed live events back from the stream."),
		viewFaults:    f.counter("sis_gateway_view_faults_total", "Times a group view found it could not follow its group (a load or repair failed, a gap stayed)."),
		freezes:       f.counter("sis_gateway_initial_copies_total", "Copies of a queue made for subscribers still reading their initial data when it changed."),
		limitHits: promauto(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sis_gateway_limit_hits_total",
			Help: "Refusals and closes by a limit (Config.Limits), by limit."}, []string{"limit"})),
		faults: promauto(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sis_gateway_faults_total",
			Help: "Faults answered, by type."}, []string{"type"})),
		latency: promauto(reg, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sis_gateway_router_to_client_seconds",
			Help:    "Time from the adapter accepting a change to its frame being written to a client.",
			Buckets: latencyBuckets})),
		toView: promauto(reg, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sis_gateway_router_to_view_seconds",
			Help:    "Time from the adapter accepting a change to the gateway applying it to its view of the group.",
			Buckets: latencyBuckets})),
	}
	// every label value there is, from 0: a dashboard's rate sees the
	// first fault or refusal, and an alert has a series to look at
	for _, ft := range []protocol.FaultType{protocol.InvalidUserFault, protocol.RouterDisconnectedFault, protocol.NoLicenseFault,
		protocol.InvalidServiceGroupFault, protocol.InvalidRequestFault} {
		m.faults.WithLabelValues(string(ft))
	}
	for _, l := range []string{limitConnections, limitPerAddress, limitInitialize, limitRequests, limitSubscriptions, limitSignIn} {
		m.limitHits.WithLabelValues(l)
	}
	return m
}

type promFactory struct{ reg prometheus.Registerer }

func (f promFactory) gauge(name, help string) prometheus.Gauge {
	return promauto(f.reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

func (f promFactory) counter(name, help string) prometheus.Counter {
	return promauto(f.reg, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

// promauto registers c, keeping an already registered twin (two gateways in
// one process share a registry's series).
func promauto[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			return are.ExistingCollector.(C)
		}
		panic(err)
	}
	return c
}
