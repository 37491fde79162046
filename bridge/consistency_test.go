package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/client"
	"github.com/sisbridge/sisbridge/protocol"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router/sim"
	"github.com/sisbridge/sisbridge/subjects"
)

// observation is what a client held for a group right after an event.
type observation struct {
	group     string
	seq       uint64
	positions bool
	print     uint64
}

// fingerprint hashes a queue: in order with positions for a session that
// gets position updates, as a set otherwise.
func fingerprint(ids []string, positions bool) uint64 {
	if !positions {
		ids = slices.Clone(ids)
		slices.Sort(ids)
	}
	h := fnv.New64a()
	for i, id := range ids {
		fmt.Fprintf(h, "%d:%s,", i+1, id)
	}
	return h.Sum64()
}

// TestConsistencyUnderChurn runs the simulator fast while clients subscribe
// and unsubscribe at random. After every event, each client's copy of a
// group must equal the router's state at the Seq it last received, as the
// stream's history tells. It runs with delivery rounds back to back and
// spaced (several changes per event and per write).
func TestConsistencyUnderChurn(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  bridge.Config
	}{
		{"rounds back to back", bridge.Config{Coalesce: -1}},
		{"coalesce 10ms (default)", bridge.Config{}},
	} {
		// The clients check every event against the stream's history, which
		// under the race detector can be slower than the simulator: a
		// backlog must not close them (TestSlowClientIsClosedOthersGoOn is
		// about that).
		tc.cfg.OutboundLimit = 1 << 30
		t.Run(tc.name, func(t *testing.T) { consistencyUnderChurn(t, tc.cfg) })
	}
}

func consistencyUnderChurn(t *testing.T, cfg bridge.Config) {
	e := bareEnv(t)
	e.Adapter = e.OpenAdapter() // the simulator reports the directory
	src, err := sim.New(sim.Config{Seed: 11, Speed: 7200, Rate: 3, Start: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopSim := context.WithCancel(e.Ctx)
	simDone := make(chan error, 1)
	go func() { simDone <- e.Adapter.Run(runCtx, src) }()
	_, url := e.gateway(cfg, nil)
	groups := make([]string, 0, 9)
	waitFor(t, "the simulator's directory", func() bool { return len(directoryGroups(t, e)) == 9 })
	groups = directoryGroups(t, e)

	var (
		mu  sync.Mutex
		obs []observation
		wg  sync.WaitGroup
	)
	churnCtx, stopChurn := context.WithTimeout(e.Ctx, 4*time.Second)
	defer stopChurn()
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := churn(churnCtx, url, groups, uint64(i), protocol.Format(i%2), i%4 < 2)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			obs = append(obs, got...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	stopSim()
	if err := <-simDone; err != nil {
		t.Fatal(err)
	}
	if err := e.Adapter.Flush(e.Ctx); err != nil {
		t.Fatal(err)
	}
	oracle := historyPrints(t, e)
	for _, o := range obs {
		want, ok := oracle[o.group][o.positions][o.seq]
		if !ok || want != o.print {
			t.Fatalf("group %s at seq %d (positions %v): client state differs from the router's", o.group, o.seq, o.positions)
		}
	}
	if len(obs) < 50 {
		t.Fatalf("only %d observations: the test saw too little", len(obs))
	}
	t.Logf("%d observations checked", len(obs))
}

// churn is one client: it subscribes and unsubscribes at random, checking
// every event against the queues it mirrors, until ctx ends.
func churn(ctx context.Context, url string, groups []string, seed uint64, f protocol.Format, positions bool) ([]observation, error) {
	c, err := client.Dial(ctx, url, client.Options{Format: f})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Initialize(ctx, "", "", positions); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, 99))
	m := client.NewMirror(positions)
	var obs []observation
	subscribed := map[string]bool{}
	for ctx.Err() == nil {
		g := groups[r.IntN(len(groups))]
		if subscribed[g] {
			if err := c.Unsubscribe(ctx, g); err != nil {
				return obs, ignoreEnd(ctx, closeErr(c, err))
			}
			// the events already buffered came before the reply: they still count
			for range len(c.Events()) {
				if err := record(m, <-c.Events(), positions, &obs); err != nil {
					return obs, err
				}
			}
			m.Drop(g)
			delete(subscribed, g)
		} else {
			if _, err := c.Subscribe(ctx, protocol.Request{ServiceGroupID: g}); err != nil {
				return obs, ignoreEnd(ctx, closeErr(c, err))
			}
			subscribed[g] = true
		}
		deadline := time.After(time.Duration(20+r.IntN(80)) * time.Millisecond)
		for drained := false; !drained; {
			select {
			case ev, ok := <-c.Events():
				if !ok {
					code, why := c.CloseCode()
					return obs, fmt.Errorf("connection closed: %d %s", code, why)
				}
				if err := record(m, ev, positions, &obs); err != nil {
					return obs, err
				}
			case <-deadline:
				drained = true
			case <-ctx.Done():
				return obs, nil
			}
		}
	}
	return obs, nil
}

// record applies an event and notes the group's state after it.
func record(m *client.Mirror, ev protocol.Message, positions bool, obs *[]observation) error {
	if err := m.Apply(ev); err != nil {
		return err
	}
	if ev.Event == protocol.EventSessionsUpdated && m.Complete[ev.ServiceGroupID] || ev.Event == protocol.EventInitialDataComplete {
		*obs = append(*obs, observation{ev.ServiceGroupID, ev.Seq, positions, fingerprint(callIDs(m.Groups[ev.ServiceGroupID]), positions)})
	}
	return nil
}

// closeErr adds the close code and reason to an error of a closed client.
func closeErr(c *client.Client, err error) error {
	if errors.Is(err, client.ErrClosed) {
		code, why := c.CloseCode()
		return fmt.Errorf("%w (close %d %q)", err, code, why)
	}
	return err
}

func ignoreEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func directoryGroups(t *testing.T, e *env) []string {
	kv, err := e.JS.KeyValue(e.Ctx, subjects.BucketDirectory)
	if err != nil {
		t.Fatal(err)
	}
	d, err := subjects.ReadDirectory(e.Ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for id := range d.Groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// historyPrints replays every group's events and fingerprints the queue at
// each sequence number, with and without positions.
func historyPrints(t *testing.T, e *env) map[string]map[bool]map[uint64]uint64 {
	t.Helper()
	hist, err := subjects.OpenHistory(e.Ctx, e.JS)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[bool]map[uint64]uint64{}
	for _, g := range directoryGroupsFull(t, e) {
		q := queue.New(g.ServiceGroupID)
		prints := map[bool]map[uint64]uint64{true: {0: fingerprint(nil, true)}, false: {0: fingerprint(nil, false)}}
		err := hist.Replay(e.Ctx, g.TenantID, g.ServiceGroupID, 1, 0, func(ev *subjects.Event, _ uint64) error {
			if _, err := q.Apply(ev.Change); err != nil {
				return err
			}
			ids := queueIDs(q)
			prints[true][ev.Seq], prints[false][ev.Seq] = fingerprint(ids, true), fingerprint(ids, false)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		out[g.ServiceGroupID] = prints
	}
	return out
}

func directoryGroupsFull(t *testing.T, e *env) []subjects.Group {
	kv, _ := e.JS.KeyValue(e.Ctx, subjects.BucketDirectory)
	d, err := subjects.ReadDirectory(e.Ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	var out []subjects.Group
	for _, g := range d.Groups {
		out = append(out, g)
	}
	return out
}
