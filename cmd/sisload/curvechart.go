package main

import (
	"fmt"
	"os"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// chartMetric is one panel of a chart: a figure of a run.
type chartMetric struct {
	title string
	value func(runResult) float64
	log   bool // a log scale: latencies span orders of magnitude
	// matched adds the gateway's runs at the load of each peer that held
	// the router back, as points in the gateway's colour with that peer's
	// marker.
	matched bool
}

// chartMetrics are the four panels of each chart.
var chartMetrics = []chartMetric{
	{"deliveries/s", func(r runResult) float64 { return r.DeliveriesPerSec }, false, false},
	{"p50 latency (ms, log scale)", func(r runResult) float64 { return latencyMS(r.P50) }, true, false},
	{"p99 latency (ms, log scale)", func(r runResult) float64 { return latencyMS(r.P99) }, true, true},
	{"serving process CPU per delivery (µs)", func(r runResult) float64 { return us(serverCPUPerDelivery(r)) }, false, false},
}

// latencyMS is d in milliseconds, at least a microsecond (a log scale
// has no zero).
func latencyMS(d time.Duration) float64 {
	return max(float64(d), float64(time.Microsecond)) / float64(time.Millisecond)
}

// writeCharts writes prefix-clients.png and prefix-rate.png.
func writeCharts(prefix string, res curveResult) error {
	charts := []struct {
		file, xLabel string
		points       []curvePoint
		x            func(curvePoint) float64
	}{
		{prefix + "-clients.png", "clients", res.ByClients, func(p curvePoint) float64 { return float64(p.Clients) }},
		{prefix + "-rate.png", "router changes/s asked", res.ByRate, func(p curvePoint) float64 { return p.Rate }},
	}
	for _, c := range charts {
		if len(c.points) == 0 {
			continue
		}
		if err := writeChart(c.file, c.xLabel, c.points, c.x); err != nil {
			return fmt.Errorf("chart %s: %w", c.file, err)
		}
	}
	return nil
}

// writeChart draws the four metrics of points against x, a line per
// system, in a 2×2 grid.
func writeChart(file, xLabel string, points []curvePoint, x func(curvePoint) float64) error {
	grid := [][]*plot.Plot{make([]*plot.Plot, 2), make([]*plot.Plot, 2)}
	for i, m := range chartMetrics {
		p, err := metricPlot(m, xLabel, points, x)
		if err != nil {
			return err
		}
		grid[i/2][i%2] = p
	}
	img := vgimg.New(vg.Length(1200), vg.Length(900))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 2, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3, PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3}
	canvases := plot.Align(grid, tiles, dc)
	for r := range grid {
		for c := range grid[r] {
			grid[r][c].Draw(canvases[r][c])
		}
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// pointTicks marks the x axis at each point, as a whole number.
func pointTicks(points []curvePoint, x func(curvePoint) float64) plot.ConstantTicks {
	ticks := make(plot.ConstantTicks, len(points))
	for i, p := range points {
		ticks[i] = plot.Tick{Value: x(p), Label: fmt.Sprintf("%.0f", x(p))}
	}
	return ticks
}

// metricPlot is one panel: a line with points per system.
func metricPlot(m chartMetric, xLabel string, points []curvePoint, x func(curvePoint) float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = m.title
	p.X.Label.Text = xLabel
	p.X.Tick.Marker = pointTicks(points, x)
	if !m.log {
		p.Y.Min = 0
	}
	p.Legend.Top = true
	p.Legend.Left = true
	for i, sys := range allSystems {
		xys := plotter.XYs{}
		for _, pt := range points {
			for _, r := range pt.Results {
				if r.System == sys {
					xys = append(xys, plotter.XY{X: x(pt), Y: m.value(r)})
				}
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, dots, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", m.title, sys, err)
		}
		line.Color, dots.Color = plotutil.Color(i), plotutil.Color(i)
		line.Width = vg.Points(2)
		dots.Shape = plotutil.Shape(i)
		p.Add(line, dots)
		p.Legend.Add(systemLabel(sys), line, dots)
	}
	if m.matched {
		if err := addMatched(p, m, points, x); err != nil {
			return nil, err
		}
	}
	if m.log {
		logAxis(p)
	}
	return p, nil
}

// addMatched adds to p, for each peer, the gateway's runs at that peer's
// load where it held the router back.
func addMatched(p *plot.Plot, m chartMetric, points []curvePoint, x func(curvePoint) float64) error {
	for i, sys := range allSystems {
		xys := plotter.XYs{}
		for _, pt := range points {
			if r, ok := pt.Matched[sys]; ok {
				xys = append(xys, plotter.XY{X: x(pt), Y: m.value(r)})
			}
		}
		if len(xys) == 0 {
			continue
		}
		dots, err := plotter.NewScatter(xys)
		if err != nil {
			return fmt.Errorf("%s of the gateway at %s's load: %w", m.title, sys, err)
		}
		dots.Color, dots.Shape, dots.Radius = plotutil.Color(0), plotutil.Shape(i), vg.Points(4)
		p.Add(dots)
		p.Legend.Add("gateway at "+systemLabel(sys)+"'s load", dots)
	}
	return nil
}

// logAxis puts p's y axis on a log scale, its range set apart from the
// values' by a factor of 1.5: left to itself, the axis widens a range of
// one value by ±1, below 0, where a log scale has no place.
func logAxis(p *plot.Plot) {
	if p.Y.Min <= 0 || p.Y.Max <= 0 { // no values (latencyMS keeps them above 0)
		return
	}
	p.Y.Min, p.Y.Max = p.Y.Min/1.5, p.Y.Max*1.5
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
}
