package replay

import (
	"errors"
	"fmt"
)

// Errors of replay; each is wrapped with context, test with errors.Is.
var (
	// ErrNotCapture: the file does not start with the capture signature.
	ErrNotCapture = errors.New("not a SIS Bridge capture")
	// ErrVersion: the capture's format version is not one this code reads.
	ErrVersion = errors.New("unsupported capture format version")
	// ErrCorrupt: a frame fails its checksum, declares an impossible length
	// or does not decode. The error is a *CorruptError naming the offset.
	ErrCorrupt = errors.New("corrupt capture")
	// ErrTruncated: the file ends inside a frame. The error is a
	// *CorruptError naming the offset.
	ErrTruncated = errors.New("truncated capture")
	// ErrState: a change does not apply to the state the capture holds for
	// its group (a gap in the sequence, or a base missing).
	ErrState = errors.New("capture state mismatch")
	// ErrRouterLive: another router adapter is live on the bus.
	ErrRouterLive = errors.New("router is live")
	// ErrNoBus: the NATS server holds no SIS Bridge bus to record.
	ErrNoBus = errors.New("no SIS Bridge bus")
	// ErrRange: a history range ends before it starts.
	ErrRange = errors.New("empty range")
	// ErrUnknownFilter: a filter names a tenant or group the directory does
	// not hold: nothing would be recorded for it.
	ErrUnknownFilter = errors.New("filter names what the directory does not hold")
	// ErrClosed: the writer is closed.
	ErrClosed = errors.New("capture writer closed")
)

// CorruptError is a damaged or truncated frame: where it starts and what is
// wrong. It wraps ErrCorrupt or ErrTruncated.
type CorruptError struct {
	// Offset is the byte offset of the frame in the file.
	Offset int64
	// Frame is the 1-based number of the frame (the header is frame 1).
	Frame int
	// Reason says what is wrong.
	Reason string
	// Err is ErrCorrupt or ErrTruncated.
	Err error
}

// Error names the offset, the frame and what is wrong.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("%v at offset %d (frame %d): %s", e.Err, e.Offset, e.Frame, e.Reason)
}

// Unwrap returns ErrCorrupt or ErrTruncated.
func (e *CorruptError) Unwrap() error { return e.Err }

// ErrRunning: Run was called while another Run of the same Player is active.
var ErrRunning = errors.New("player already running")
