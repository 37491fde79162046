package subjects_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/subjects"
)

// TestSnapshotReadDuringReplacement reads a group's snapshot while it is
// being replaced over and over: every read returns a whole snapshot.
func TestSnapshotReadDuringReplacement(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := subjects.Ensure(ctx, js, subjects.Config{}); err != nil {
		t.Fatal(err)
	}
	h, err := subjects.OpenHistory(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	sessions := make([]queue.Session, 3000)
	for i := range sessions {
		sessions[i] = queue.Session{CallID: fmt.Sprintf("c%d", i), MediaType: queue.MediaVoice, CustomerInformation: "+442079460000"}
	}
	done := make(chan error, 1)
	go func() {
		for seq := uint64(1); seq <= 60; seq++ {
			if err := h.PutSnapshot(ctx, &subjects.Snapshot{Tenant: "t", Group: "g", Seq: seq, Sessions: sessions}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	reads := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d reads during 60 replacements", reads)
			return
		default:
		}
		snap, _, err := h.Snapshot(ctx, "t", "g")
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		if snap.Seq > 0 && len(snap.Sessions) != len(sessions) {
			t.Fatalf("read %d: %d sessions", reads, len(snap.Sessions))
		}
		reads++
	}
}
