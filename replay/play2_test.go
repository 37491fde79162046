package replay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

func readTestdata(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(testdataCapture)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// finalState replays a capture's frames into queues.
func finalState(t *testing.T, data []byte) map[string][]queue.Session {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), int64(len(data)), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := newTracker()
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return st.sessions()
		}
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Kind {
		case KindBase:
			must(t, st.base(rec.Base))
		case KindEvent:
			if _, err := st.event(rec.Event); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestPlayFilters(t *testing.T) {
	data := readTestdata(t)
	want := finalState(t, data)
	tests := []struct {
		name   string
		filter Filter
		groups []string
	}{
		{"one group", Filter{Groups: []string{"acme-sales"}}, []string{"acme-sales"}},
		{"one tenant", Filter{Tenants: []string{"globex"}}, []string{"globex-email", "globex-outbound", "globex-webchat"}},
		{"tenant and group", Filter{Tenants: []string{"acme"}, Groups: []string{"acme-billing", "globex-email"}}, []string{"acme-billing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := newBus(t)
			dst.play(t, data, PlayConfig{Speed: -1, Filter: tt.filter})
			if got := dst.groupIDs(t); !slices.Equal(got, tt.groups) {
				t.Fatalf("groups on the bus %v, want %v", got, tt.groups)
			}
			sub := map[string][]queue.Session{}
			for _, g := range tt.groups {
				sub[g] = want[g]
			}
			if got, _ := dst.busHash(t); got != StateHash(sub) {
				t.Fatalf("state %s, want %s", got, StateHash(sub))
			}
		})
	}
}

func TestTimeShift(t *testing.T) {
	data, _ := sampleCapture(t, true)
	for _, keep := range []bool{false, true} {
		dst := newBus(t)
		before := time.Now()
		dst.play(t, data, PlayConfig{Speed: -1, KeepTimes: keep})
		_, sessions, _ := dst.a.Group("globex-chat")
		if len(sessions) != 1 || sessions[0].CallID != "g2" {
			t.Fatalf("globex-chat %+v", sessions)
		}
		// g2 entered the queue 48 h before the capture's start.
		got := sessions[0].TimeEnteredQueue
		want := t0.Add(-48 * time.Hour)
		if !keep {
			if lo, hi := before.Add(-48*time.Hour), time.Now().Add(-48*time.Hour); got.Before(lo) || got.After(hi) {
				t.Fatalf("shifted TimeEnteredQueue %s, want between %s and %s", got, lo, hi)
			}
		} else if !got.Equal(want) {
			t.Fatalf("kept TimeEnteredQueue %s, want %s", got, want)
		}
	}
}

func TestPace(t *testing.T) {
	data, _ := sampleCapture(t, true) // changes from 1 s to 6 s after the start
	dst := newBus(t)
	start := time.Now()
	dst.play(t, data, PlayConfig{Speed: 10})
	if d := time.Since(start); d < 550*time.Millisecond || d > 5*time.Second {
		t.Fatalf("6 s of capture at speed 10 took %s", d)
	}
}

func TestLoop(t *testing.T) {
	data, _ := sampleCapture(t, true)
	p, err := NewPlayer(bytes.NewReader(data), int64(len(data)), PlayConfig{Speed: -1, Loop: true})
	if err != nil {
		t.Fatal(err)
	}
	dst := newBus(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- dst.a.Run(ctx, p) }()
	deadline := time.Now().Add(30 * time.Second)
	for p.Progress().Rounds < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("progress %+v", p.Progress())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if pp := p.Progress(); pp.Rejected != 0 || pp.Played < 18 {
		t.Fatalf("progress %+v", pp)
	}
	// Later rounds sync back to the start with the link up: one epoch.
	if st, err := dst.js.KeyValue(testCtx(t), subjects.BucketRouter); err != nil {
		t.Fatal(err)
	} else if e, err := st.Get(testCtx(t), subjects.RouterStatusKey); err != nil {
		t.Fatal(err)
	} else if rs, _ := subjects.DecodeStatus(e.Value()); rs.Epoch != 1 {
		t.Fatalf("router epoch %d after 3 rounds, want 1", rs.Epoch)
	}
}

// damaged flips a bit in the middle of the testdata capture.
func damaged(t *testing.T) ([]byte, int64) {
	data := bytes.Clone(readTestdata(t))
	offs := frameOffsets(t, data)
	at := offs[len(offs)/2]
	data[at+3] ^= 0x04
	return data, at
}

func TestPlaySkipCorrupt(t *testing.T) {
	data, at := damaged(t)
	_, err := NewPlayer(bytes.NewReader(data), int64(len(data)), PlayConfig{Speed: -1})
	var cerr *CorruptError
	if !errors.As(err, &cerr) || cerr.Offset != at || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("damaged capture: %v, want a checksum error at offset %d", err, at)
	}
	dst := newBus(t)
	p := dst.play(t, data, PlayConfig{Speed: -1, SkipCorrupt: true})
	sk := p.Skipped()
	if len(sk) != 1 || sk[0].From != at || p.Progress().Played != 1999 {
		t.Fatalf("skipped %+v, progress %+v", sk, p.Progress())
	}
}

func TestPlayWithoutTrailer(t *testing.T) {
	full := readTestdata(t)
	offs := frameOffsets(t, full)
	data := full[:offs[1000]] // killed: the file ends on a frame boundary
	dst := newBus(t)
	p := dst.play(t, data, PlayConfig{Speed: -1})
	if x := p.Index(); x.Trailer != nil || x.End != int64(len(data)) || p.Progress().Played == 0 {
		t.Fatalf("index %+v, progress %+v", x, p.Progress())
	}
	if got, _ := dst.busHash(t); got != StateHash(finalState(t, data)) {
		t.Fatal("state after playing a capture without trailer differs from its frames")
	}
}

func TestCheckIdle(t *testing.T) {
	b := newBus(t)
	ctx := testCtx(t)
	if err := CheckIdle(ctx, b.js); err != nil {
		t.Fatalf("adapter without a link: %v", err)
	}
	must(t, b.a.LinkUp(ctx, nil))
	if err := CheckIdle(ctx, b.js); !errors.Is(err, ErrRouterLive) || !strings.Contains(err.Error(), `adapter "test"`) {
		t.Fatalf("live router: %v", err)
	}
	must(t, b.a.Close(ctx))
	if err := CheckIdle(ctx, b.js); err != nil {
		t.Fatalf("after the adapter stopped: %v", err)
	}
}

// TestRouterClock: the player's clock is the capture time being played, in
// the frame of the times it plays (shifted to now unless KeepTimes), at
// the playing speed.
func TestRouterClock(t *testing.T) {
	data, _ := sampleCapture(t, true)
	for _, keep := range []bool{false, true} {
		p, err := NewPlayer(bytes.NewReader(data), int64(len(data)), PlayConfig{Speed: 1e6, KeepTimes: keep})
		if err != nil {
			t.Fatal(err)
		}
		start := p.Index().Header.Start
		if now, rate := p.RouterClock(); rate != 1e6 || now.Before(start) {
			t.Fatalf("keep %v, before playing: %s at rate %v, want from %s at 1e6", keep, now, rate, start)
		}
		dst := newBus(t)
		before := time.Now()
		if err := dst.a.Run(testCtx(t), p); err != nil {
			t.Fatal(err)
		}
		now, _ := p.RouterClock()
		if keep && now.Before(start) || !keep && now.Before(before) {
			t.Fatalf("keep %v, after playing: clock %s (capture start %s, play start %s)", keep, now, start, before)
		}
	}
}
