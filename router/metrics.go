package router

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports an adapter's counters and health as Prometheus
// metrics, read when scraped (the adapter counts nothing twice). Register
// it with a prometheus.Registerer.
type Collector struct {
	a     Observed
	descs map[string]*prometheus.Desc
}

// Observed is what a Collector reads: an Adapter, or a Node (whose
// counters start again each time it takes over).
type Observed interface {
	Stats() Stats
	Health() Health
	Failed() error
}

// NewCollector returns a Collector of a.
func NewCollector(a Observed) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sis_adapter_"+name, help, labels, nil)
	}
	return &Collector{a: a, descs: map[string]*prometheus.Desc{
		"accepted":        d("changes_accepted_total", "Router changes applied to the adapter's state."),
		"rejected":        d("changes_rejected_total", "Router changes refused, by reason.", "reason"),
		"published":       d("changes_published_total", "Changes stored in JetStream."),
		"messages":        d("messages_published_total", "Messages stored in JetStream (several changes of a group may share one)."),
		"retries":         d("publish_retries_total", "Publishes retried after a failure or a missing acknowledgement."),
		"lost":            d("changes_lost_total", "Accepted changes abandoned unstored (an aborted shutdown or a failure); the next adapter reconciles them with the router."),
		"snapshots":       d("snapshots_total", "Group snapshots stored."),
		"snapshot_errors": d("snapshot_errors_total", "Group snapshots that could not be stored."),
		"groups":          d("groups", "Service groups held."),
		"queued":          d("queued_sessions", "Sessions queued in all groups."),
		"router":          d("router_connected", "1 while the router link is up."),
		"store":           d("store_refusing_writes", "1 while JetStream refuses the adapter's writes (full store, lost disk)."),
		"failed":          d("failed", "1 once the adapter has stopped on a failure (a write of another's on its subjects)."),
		"active":          d("active", "1 while this adapter holds the lease and writes to the bus; 0 while it stands by."),
		"holder":          d("lease_holder", "1, labelled with the adapter that holds the lease as this one last saw it.", "adapter"),
	}}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st, h := c.a.Stats(), c.a.Health()
	counter := func(name string, v uint64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v))
	}
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v)
	}
	counter("accepted", st.Accepted)
	for _, r := range RejectReasons {
		ch <- prometheus.MustNewConstMetric(c.descs["rejected"], prometheus.CounterValue, float64(st.RejectedBy[r]), r)
	}
	counter("published", st.Published)
	counter("messages", st.Messages)
	counter("retries", st.Retries)
	counter("lost", st.Lost)
	counter("snapshots", st.Snapshots)
	counter("snapshot_errors", st.SnapshotErrors)
	gauge("groups", float64(st.Groups))
	gauge("queued", float64(st.Queued))
	gauge("router", one(h.Router))
	gauge("store", one(h.StoreFault != ""))
	gauge("failed", one(c.a.Failed() != nil))
	gauge("active", one(h.Active))
	if h.Holder != "" {
		ch <- prometheus.MustNewConstMetric(c.descs["holder"], prometheus.GaugeValue, 1, h.Holder)
	}
}

func one(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
