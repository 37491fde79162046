package main

import (
	"fmt"

	"github.com/sisbridge/sisbridge/internal/oracle"
	"github.com/sisbridge/sisbridge/protocol"
)

// soakView is what a soak client holds of one subscribed group: each
// session's position (0 without position updates) and their fingerprint.
type soakView struct {
	id       string
	pos      map[string]int
	print    uint64
	complete bool   // InitialDataComplete came
	initSeq  uint64 // the Seq of the initial-data events
	hasInit  bool
	seq      uint64 // the Seq the view is at, once complete
	broken   bool   // an update did not fit: nothing more is checked
}

func newSoakView(id string) *soakView { return &soakView{id: id, pos: map[string]int{}} }

// event applies a SessionsUpdated or InitialDataComplete; it returns what
// broke a promise of the protocol, if anything did.
func (v *soakView) event(ev *protocol.Message, positions bool) error {
	if ev.Event == protocol.EventInitialDataComplete {
		return v.initialDataComplete(ev, positions)
	}
	if err := v.checkSeq(ev.Seq); err != nil {
		return err
	}
	for i := range ev.SessionUpdates {
		if err := v.update(&ev.SessionUpdates[i], positions); err != nil {
			return fmt.Errorf("at Seq %d, update %d of %d: %w", ev.Seq, i+1, len(ev.SessionUpdates), err)
		}
	}
	if !v.complete {
		return nil
	}
	v.seq = ev.Seq
	return v.checkPositions(positions)
}

// checkSeq: the events of initial data share one Seq; live ones increase.
func (v *soakView) checkSeq(seq uint64) error {
	switch {
	case v.complete && seq <= v.seq:
		return fmt.Errorf("live event of Seq %d after Seq %d", seq, v.seq)
	case v.complete:
	case v.hasInit && seq != v.initSeq:
		return fmt.Errorf("initial-data events of Seq %d and then %d", v.initSeq, seq)
	default:
		v.initSeq, v.hasInit = seq, true
	}
	return nil
}

// initialDataComplete completes the view at its Seq.
func (v *soakView) initialDataComplete(ev *protocol.Message, positions bool) error {
	switch {
	case v.complete:
		return fmt.Errorf("a second InitialDataComplete (Seq %d)", ev.Seq)
	case v.hasInit && ev.Seq != v.initSeq:
		return fmt.Errorf("initial data of Seq %d, InitialDataComplete of Seq %d", v.initSeq, ev.Seq)
	}
	v.complete, v.seq = true, ev.Seq
	return v.checkPositions(positions)
}

// update applies one session update.
func (v *soakView) update(u *protocol.SessionUpdate, positions bool) error {
	id := u.Session.CallID
	old, there := v.pos[id]
	p := 0
	if positions {
		p = u.Session.QueuePosition
	}
	switch u.UpdateType {
	case "Add":
		if there {
			return fmt.Errorf("an Add of %s, already there", id)
		}
	case "Remove", "Modify":
		if !there {
			return fmt.Errorf("%s of %s, not there", u.UpdateType, id)
		}
		v.print -= oracle.SessionPrint(id, old)
	default:
		return fmt.Errorf("UpdateType %q", u.UpdateType)
	}
	if u.UpdateType == "Remove" {
		delete(v.pos, id)
		return nil
	}
	v.pos[id] = p
	v.print += oracle.SessionPrint(id, p)
	return nil
}

// checkPositions checks that the positions a client with position
// updates holds run 1..n.
func (v *soakView) checkPositions(positions bool) error {
	if !positions {
		return nil
	}
	seen := make([]bool, len(v.pos)+1)
	for id, p := range v.pos {
		if p < 1 || p > len(v.pos) || seen[p] {
			return fmt.Errorf("after Seq %d, %s holds position %d of %d (missing or twice)", v.seq, id, p, len(v.pos))
		}
		seen[p] = true
	}
	return nil
}
