package subjects

import "errors"

// Errors of the bus contract. Each is wrapped with context; test with
// errors.Is.
var (
	// ErrMalformedID: an identifier breaks docs/protocol.md §5.
	ErrMalformedID = errors.New("malformed identifier")
	// ErrSchema: a message on the bus does not decode as its schema says.
	ErrSchema = errors.New("malformed bus message")
	// ErrVersion: a message carries a schema version this code does not read.
	ErrVersion = errors.New("unsupported schema version")
	// ErrGap: a group's history misses a sequence number.
	ErrGap = errors.New("gap in group history")
	// ErrNoAnswer: a read of the events stream got no answer in time.
	ErrNoAnswer = errors.New("no answer from the events stream")
)
