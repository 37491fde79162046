package replay

import (
	"bytes"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/router/sim"
)

// testdataCapture is the small capture the tests and docs/replay.md use.
// Regenerate it with:
//
//	go test ./replay -run TestTestdataCapture -update
const testdataCapture = "testdata/sim-seed1.sisrec"

var update = flag.Bool("update", false, "regenerate "+testdataCapture+" from the simulator")

// TestTestdataCapture plays the committed capture into a fresh bus and
// checks the state it ends in against its trailer. With -update it first
// records it again (about a minute): the simulator with seed 1, starting
// now, at real pace with 20 times the arrival rate (so that bus time and
// TimeEnteredQueue agree, and the capture spans about a minute), 200
// changes before the recording starts, then 2,000 recorded ones.
func TestTestdataCapture(t *testing.T) {
	if *update {
		s := newSimConfig(t, sim.Config{Seed: 1, Speed: 1, Rate: 20, Start: time.Now().Truncate(time.Second)})
		data, _ := recordSimConfig(t, s, 200, 2000, false)
		must(t, os.WriteFile(testdataCapture, data, 0o644))
	}
	data, err := os.ReadFile(testdataCapture)
	if err != nil {
		t.Fatal(err)
	}
	tr := trailerOf(t, data)
	if tr.Counts.Events != 2000 {
		t.Fatalf("trailer %+v", tr.Counts)
	}
	dst := newBus(t)
	dst.play(t, data, PlayConfig{Speed: -1})
	if got, _ := dst.busHash(t); got != tr.Hash {
		t.Fatalf("state after playing %s, trailer %s", got, tr.Hash)
	}
	s, err := Inspect(bytes.NewReader(data), int64(len(data)), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Hash != tr.Hash || len(s.Groups) != 9 || s.Counts != tr.Counts {
		t.Fatalf("inspect: hash %s, %d groups, counts %+v", s.Hash, len(s.Groups), s.Counts)
	}
}
