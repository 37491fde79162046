package wallboard_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/queue"
)

// churn changes the router's queues the way a busy contact center does:
// arrivals, and departures answered or abandoned, in random groups, with
// one group (deep) kept about depth sessions long.
type churn struct {
	e      *env
	rng    *rand.Rand
	groups []string
	deep   string
	depth  int
	next   int
}

func (c *churn) enqueue(group string) {
	c.next++
	c.e.enqueue(group, fmt.Sprintf("c%d", c.next), fmt.Sprintf("+4420794%05d", c.next%100000),
		queue.MediaTypes[1+c.rng.IntN(len(queue.MediaTypes)-1)], 0, time.Duration(c.rng.IntN(300))*time.Second)
}

// step makes one change: in the deep group one time in ten.
func (c *churn) step() {
	g := c.groups[c.rng.IntN(len(c.groups))]
	want := 3 + c.rng.IntN(10)
	if c.rng.IntN(10) == 0 {
		g, want = c.deep, c.depth
	}
	q := c.e.Queues[g]
	if q.Len() < want || q.Len() == 0 {
		c.enqueue(g)
		return
	}
	s := q.Sessions()[c.rng.IntN(min(q.Len(), 3))] // near the head, as agents take them
	cause := queue.CauseSessionAllocatedToAgent
	if c.rng.IntN(8) == 0 {
		cause = queue.CauseDisconnect
	}
	c.e.remove(g, s.CallID, cause)
}

// metrics are Chromium's counters of the page (Performance.getMetrics).
func metrics(p *page) map[string]float64 {
	r := cdpCall(p, performance.GetMetrics, cdp.Empty{})
	m := map[string]float64{}
	for _, x := range r.Metrics {
		m[x.Name] = x.Value
	}
	return m
}

// BenchmarkWallboard measures how smooth the wallboard stays on a wall of
// 100 groups (1920×1080, one page) while the router makes 200 changes a
// second in random groups: "wall" with the tiles only, "list" with one
// group's list of 300 sessions open as well (every tenth change in that
// group, each moving the positions behind it), "quiet" with the list open
// and no change at all (what the page costs at rest). Each iteration is
// one second; it reports the page's frames a second (requestAnimationFrame
// callbacks, 60 at most) and the main thread's milliseconds a second spent
// in script, style, layout and all its tasks (Chromium's
// Performance.getMetrics). After the last, the page must show the
// router's queues exactly.
//
//	go test -run '^$' -bench Wallboard -benchtime 10x ./wallboard/
func BenchmarkWallboard(b *testing.B) {
	for _, c := range []struct {
		name string
		rate int
		list bool
	}{{"wall", 200, false}, {"list", 200, true}, {"quiet", 0, true}} {
		b.Run(c.name, func(b *testing.B) { benchWallboard(b, c.rate, c.list) })
	}
}

func benchWallboard(b *testing.B, rate int, list bool) {
	const groups, depth = 100, 300
	bin := chromium(b)
	e := newEnvWith(b, directory(groups, "acme", "globex", "initech", "umbrella"))
	c := &churn{e: e, rng: rand.New(rand.NewPCG(1, 2)), deep: "g000", depth: depth}
	for i := 1; i < groups; i++ {
		c.groups = append(c.groups, fmt.Sprintf("g%03d", i))
	}
	for range depth {
		c.enqueue(c.deep)
	}
	for range 5 * groups {
		c.step()
	}
	_, base := e.serve(bridge.Config{}, nil)
	p := openPageSized(b, bin, base+"/", 1920, 1080)
	cdpCall(p, performance.Enable, performance.EnableParams{TimeDomain: performance.EnableTimeDomainThreadTicks})
	p.waitDOM("the tiles", []string{live, fmt.Sprintf(`<dd id="total-groups">%d</dd>`, groups)})
	if list {
		click(p, `.tile[data-group="g000"]`)
		waitFor(b, "the deep group's list", func() bool {
			var n int
			p.eval(`document.querySelectorAll('#detail .session').length`, &n)
			return n == e.Queues[c.deep].Len()
		})
	}
	p.eval(`window.frames_ = 0; (function count() { frames_++; requestAnimationFrame(count); })(); true`, nil)

	var frames, script, style, layout, task float64
	b.ResetTimer()
	for range b.N {
		var f0, f1 float64
		p.eval(`frames_`, &f0)
		m0 := metrics(p)
		tick := time.NewTicker(10 * time.Millisecond)
		for end := time.Now().Add(time.Second); time.Now().Before(end); {
			<-tick.C
			for range rate / 100 {
				c.step()
			}
		}
		tick.Stop()
		m1 := metrics(p)
		p.eval(`frames_`, &f1)
		frames += f1 - f0
		script += m1["ScriptDuration"] - m0["ScriptDuration"]
		style += m1["RecalcStyleDuration"] - m0["RecalcStyleDuration"]
		layout += m1["LayoutDuration"] - m0["LayoutDuration"]
		task += m1["TaskDuration"] - m0["TaskDuration"]
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(frames/n, "frames/s")
	b.ReportMetric(script/n*1000, "script-ms/s")
	b.ReportMetric(style/n*1000, "style-ms/s")
	b.ReportMetric(layout/n*1000, "layout-ms/s")
	b.ReportMetric(task/n*1000, "task-ms/s")
	b.ReportMetric(0, "ns/op")
	kept(b, p, c, list)
	p.screenshot("wall")
}

// kept waits until the page shows the router's queues: every tile's count,
// and the deep group's list in order when it is open.
func kept(b *testing.B, p *page, c *churn, list bool) {
	b.Helper()
	if list {
		want := make([]string, 0, c.depth)
		for i, s := range c.e.Queues[c.deep].Sessions() {
			want = append(want, fmt.Sprintf("%s@%d", s.CallID, i+1))
		}
		waitFor(b, "the deep group's list to be the router's", func() bool {
			var got string
			p.eval(`Array.from(document.querySelectorAll('#detail .session')).map(r => r.dataset.callId + '@' + r.querySelector('.pos').textContent).join(',')`, &got)
			return got == strings.Join(want, ",")
		})
	}
	for _, g := range c.groups {
		n := fmt.Sprint(c.e.Queues[g].Len())
		waitFor(b, "tile "+g, func() bool { v, _ := tile(p, g); return v.Waiting == n })
	}
}
