package main

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// stages is what the gateway's own metrics say of a run: how its writes
// batched and where a change's time went.
type stages struct {
	// Writes and Frames count system calls writing to clients and the
	// messages they carried.
	Writes float64 `json:"writes"`
	Frames float64 `json:"frames"`
	// ToView sums (Sum) and counts (N) the time from the adapter accepting
	// a change to the gateway applying it to its view.
	ToView timing `json:"toView"`
	// ToWrite: from the adapter accepting the oldest change of a write to
	// the write.
	ToWrite timing `json:"toWrite"`
}

// timing is one of the gateway's latency histograms, in seconds.
type timing struct {
	Sum float64 `json:"sum"`
	N   float64 `json:"n"`
	// Le and Count are its buckets: Count[i] samples took at most Le[i]
	// (cumulative, as Prometheus keeps them; the +Inf bucket is N).
	Le    []float64 `json:"le,omitempty"`
	Count []float64 `json:"count,omitempty"`
}

// timingOf reads a histogram.
func timingOf(h *dto.Histogram) timing {
	t := timing{Sum: h.GetSampleSum(), N: float64(h.GetSampleCount())}
	for _, b := range h.GetBucket() {
		t.Le = append(t.Le, b.GetUpperBound())
		t.Count = append(t.Count, float64(b.GetCumulativeCount()))
	}
	return t
}

// mean returns the mean, 0 without samples.
func (m timing) mean() time.Duration {
	if m.N == 0 {
		return 0
	}
	return time.Duration(m.Sum / m.N * float64(time.Second))
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: linearly within the bucket it falls in. Past the last bound it
// returns that bound (a lower limit); 0 without samples or buckets.
func (m timing) quantile(q float64) time.Duration {
	rank := q * m.N
	for i, c := range m.Count {
		if c < rank {
			continue
		}
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = m.Le[i-1], m.Count[i-1]
		}
		frac := 1.0
		if c > below {
			frac = (rank - below) / (c - below)
		}
		return seconds(lo + (m.Le[i]-lo)*frac)
	}
	if len(m.Le) == 0 || m.N == 0 {
		return 0
	}
	return seconds(m.Le[len(m.Le)-1])
}

// since returns the samples of m taken after before (same buckets).
func (m timing) since(before timing) timing {
	out := timing{Sum: m.Sum - before.Sum, N: m.N - before.N, Le: m.Le, Count: append([]float64(nil), m.Count...)}
	for i := range out.Count {
		if i < len(before.Count) {
			out.Count[i] -= before.Count[i]
		}
	}
	return out
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// gatewayStages reads the figures from the gateway's registry.
func gatewayStages(reg prometheus.Gatherer) stages {
	var st stages
	families, err := reg.Gather()
	if err != nil {
		return st
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "sis_gateway_writes_total":
				st.Writes = m.GetCounter().GetValue()
			case "sis_gateway_frames_out_total":
				st.Frames = m.GetCounter().GetValue()
			case "sis_gateway_router_to_view_seconds":
				st.ToView = timingOf(m.GetHistogram())
			case "sis_gateway_router_to_client_seconds":
				st.ToWrite = timingOf(m.GetHistogram())
			}
		}
	}
	return st
}

// since returns the figures of the time after before.
func (s stages) since(before stages) stages {
	return stages{Writes: s.Writes - before.Writes, Frames: s.Frames - before.Frames,
		ToView: s.ToView.since(before.ToView), ToWrite: s.ToWrite.since(before.ToWrite)}
}

// String says it in a line.
func (s stages) String() string {
	per := 0.0
	if s.Writes > 0 {
		per = s.Frames / s.Writes
	}
	return fmt.Sprintf("%.0f writes of %.2f messages on average; from the adapter to the view mean %s, p99 %s; to the write mean %s, p99 %s (oldest change of each write)",
		s.Writes, per, ms(s.ToView.mean()), ms(s.ToView.quantile(0.99)), ms(s.ToWrite.mean()), ms(s.ToWrite.quantile(0.99)))
}

// gatewayValue returns the value of a counter or gauge of the gateway's
// registry, summed over its series (0 when absent).
func gatewayValue(reg prometheus.Gatherer, name string) float64 {
	var sum float64
	for _, v := range gatewayByLabel(reg, name, "") {
		sum += v
	}
	return sum
}

// gatewayByLabel returns a counter's or gauge's series by the value of
// label ("" for series without it).
func gatewayByLabel(reg prometheus.Gatherer, name, label string) map[string]float64 {
	out := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					key = l.GetValue()
				}
			}
			out[key] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}
