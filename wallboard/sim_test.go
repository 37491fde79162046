package wallboard_test

import (
	"context"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/internal/stacktest"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/router/sim"
)

// simulated starts a NATS server and an adapter fed by the simulator at
// speed simulated seconds a second (3 tenants of 4 groups, 10:00 on a
// weekday); it stops at cleanup.
func simulated(t *testing.T, speed float64) *env {
	t.Helper()
	e := &env{Env: stacktest.Bare(t), seats: &seats{}}
	e.Adapter = e.OpenAdapter()
	sm, err := sim.New(sim.Config{Seed: 7, Speed: speed, GroupsPerTenant: 4,
		Start: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Adapter.Run(ctx, sm) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return e
}

// shown compares, in one look, each tile with the QueueStatistics the page
// last received for its group; it returns the groups whose tile differs.
func shown(p *page) []string {
	var bad []string
	p.eval(`(() => {
		const pct = (f) => f === null ? '—' : Math.round(f * 100) + '%';
		return window.wallboard.groups().filter(g => {
			const t = document.querySelector('.tile[data-group="' + g.id + '"]');
			const s = g.stats;
			if (!s) return true;
			const f = (c) => t.querySelector('.' + c + ' .fig-value').textContent;
			const r = s.Removed || {};
			return f('waiting') !== String(s.Waiting) || f('sl') !== pct(s.ServiceLevel) ||
				f('abandoned') !== String(r.Disconnect || 0) || f('answered') !== String(r.SessionAllocatedToAgent || 0) ||
				(s.EstimatedWait === null) !== (f('est') === '—') || (s.OldestEnteredQueue === null) !== (f('longest') === '—');
		}).map(g => g.id);
	})()`, &bad)
	return bad
}

// TestBrowserWallOfTheSimulator: the wall of a simulated contact center
// at 60 simulated seconds a second; every tile shows the figures of its
// group's latest QueueStatistics, whatever the traffic. Its screenshots
// are the README's (make screenshots).
func TestBrowserWallOfTheSimulator(t *testing.T) {
	bin := chromium(t)
	e := simulated(t, 60)
	_, base := e.serve(bridge.Config{}, nil)
	p := openPageSized(t, bin, base+"/", 1600, 900)
	p.waitDOM("the tiles", []string{live, `<dd id="total-groups">12</dd>`})
	waitFor(t, "a service level on most tiles", func() bool {
		var n int
		p.eval(`window.wallboard.groups().filter(g => g.stats && g.stats.ServiceLevel !== null).length`, &n)
		return n >= 10
	})
	for range 20 { // while the figures keep changing
		waitFor(t, "every tile to show its latest figures", func() bool { return len(shown(p)) == 0 })
		time.Sleep(100 * time.Millisecond)
	}
	p.screenshot("wall")
	var busiest string
	p.eval(`window.wallboard.groups().filter(g => g.stats).sort((a, b) => b.stats.Waiting - a.stats.Waiting)[0].id`, &busiest)
	click(p, `.tile[data-group="`+busiest+`"]`)
	waitFor(t, "the busiest group's sessions", func() bool {
		var n int
		p.eval(`document.querySelectorAll('#detail .session').length`, &n)
		return n > 0
	})
	time.Sleep(3 * time.Second) // departures to list
	p.screenshot("list")
	key(p, "Escape")

	dark := openPageSized(t, bin, base+"/?theme=dark", 1600, 900)
	dark.waitDOM("the tiles", []string{live, `<dd id="total-groups">12</dd>`})
	waitFor(t, "every dark tile's figures", func() bool { return len(shown(dark)) == 0 })
	dark.screenshot("wall-dark")
}

var _ router.Handler // the simulator reports to the adapter as a router would
