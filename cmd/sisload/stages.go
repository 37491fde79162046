package main

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	ToView meanOf `json:"toView"`
	// ToWrite: from the adapter accepting the oldest change of a write to
	// the write.
	ToWrite meanOf `json:"toWrite"`
}

// meanOf is a histogram's sum and count.
type meanOf struct {
	Sum float64 `json:"sum"`
	N   float64 `json:"n"`
}

// mean returns the mean, 0 without samples.
func (m meanOf) mean() time.Duration {
	if m.N == 0 {
		return 0
	}
	return time.Duration(m.Sum / m.N * float64(time.Second))
}

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
				st.ToView = meanOf{m.GetHistogram().GetSampleSum(), float64(m.GetHistogram().GetSampleCount())}
			case "sis_gateway_router_to_client_seconds":
				st.ToWrite = meanOf{m.GetHistogram().GetSampleSum(), float64(m.GetHistogram().GetSampleCount())}
			}
		}
	}
	return st
}

// since returns the figures of the time after before.
func (s stages) since(before stages) stages {
	return stages{Writes: s.Writes - before.Writes, Frames: s.Frames - before.Frames,
		ToView:  meanOf{s.ToView.Sum - before.ToView.Sum, s.ToView.N - before.ToView.N},
		ToWrite: meanOf{s.ToWrite.Sum - before.ToWrite.Sum, s.ToWrite.N - before.ToWrite.N}}
}

// String says it in a line.
func (s stages) String() string {
	per := 0.0
	if s.Writes > 0 {
		per = s.Frames / s.Writes
	}
	return fmt.Sprintf("%.0f writes of %.2f messages on average; mean time from the adapter to the view %s, to the write %s (oldest change of each write)",
		s.Writes, per, ms(s.ToView.mean()), ms(s.ToWrite.mean()))
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
