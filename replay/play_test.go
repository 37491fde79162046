package replay

import (
	"testing"
)

// TestDeterminism records 20,000 simulated changes live, plays the capture into a fresh NATS server
// through a fresh adapter at maximum speed, and compares the state every
// group ends in with the trailer's hash.
func TestDeterminism(t *testing.T) {
	data, src := recordSim(t, 7, 2000, 20000, false)
	tr := trailerOf(t, data)
	if want := src.adapterHash(t); tr.Hash != want {
		t.Fatalf("trailer hash %s, source adapter's state %s", tr.Hash, want)
	}
	if tr.Counts.Events != 20000 || tr.Counts.Bases != 9 || tr.Sessions == 0 {
		t.Fatalf("trailer %+v", tr)
	}
	t.Logf("capture: %d bytes, %+v", len(data), tr.Counts)

	dst := newBus(t)
	p := dst.play(t, data, PlayConfig{Speed: -1})
	if pp := p.Progress(); pp.Played != tr.Counts.Events || pp.Rejected != 0 {
		t.Fatalf("progress %+v", pp)
	}
	if got, _ := dst.busHash(t); got != tr.Hash {
		t.Fatalf("state on the bus after playing: %s, trailer %s", got, tr.Hash)
	}
	if got := dst.adapterHash(t); got != tr.Hash {
		t.Fatalf("adapter state after playing: %s, trailer %s", got, tr.Hash)
	}
}

// TestRecordWhileTrafficFlows starts recording while the simulator runs at
// full speed: bases are loaded mid-traffic, and the changes they already
// hold are left out. Playing still ends in the recorded state.
func TestRecordWhileTrafficFlows(t *testing.T) {
	data, src := recordSim(t, 8, 500, 20000, true)
	tr := trailerOf(t, data)
	if want := src.adapterHash(t); tr.Hash != want {
		t.Fatalf("trailer hash %s, source adapter's state %s", tr.Hash, want)
	}
	dst := newBus(t)
	dst.play(t, data, PlayConfig{Speed: -1})
	if got, _ := dst.busHash(t); got != tr.Hash {
		t.Fatalf("state after playing %s, trailer %s", got, tr.Hash)
	}
	t.Logf("%d of 20000 changes recorded as events, the rest in bases", tr.Counts.Events)
}
