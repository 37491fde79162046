package client

import "github.com/sisbridge/sisbridge/protocol"

// Lose makes a session configuration discard the events for which lose
// returns true, as if the network had lost them.
func Lose(cfg *SessionConfig, lose func(protocol.Message) bool) { cfg.lose = lose }
