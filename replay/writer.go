package replay

import (
	"fmt"
	"io"
	"time"

	"github.com/sisbridge/sisbridge/subjects"
)

// flushAt is how many buffered bytes make the writer write them out.
const flushAt = 64 << 10

// Writer writes a capture: the signature and header at once, then frames,
// and the trailer on Close. It checks every event against the queues the
// capture describes so far, so that what it writes always plays. Frames
// reach the underlying writer only whole, in Flush or once 64 KiB are
// buffered: a process killed between two writes leaves a file that ends on
// a frame boundary. It is not safe for concurrent use.
type Writer struct {
	w      io.Writer
	origin time.Time
	buf    []byte
	body   []byte
	state  *tracker
	n      int64 // bytes written to w
	closed bool
	err    error
}

// NewWriter writes the signature and h to w. Times in the capture are
// relative to h.Start; a zero Start becomes now.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if h.Created.IsZero() {
		h.Created = time.Now().UTC()
	}
	if h.Start.IsZero() {
		h.Start = h.Created
	}
	h.Created, h.Start = h.Created.UTC(), h.Start.UTC()
	cw := &Writer{w: w, origin: h.Start, state: newTracker()}
	cw.buf = append(append(cw.buf, Signature...), FormatVersion)
	if err := cw.tagged(KindHeader, h); err != nil {
		return nil, err
	}
	return cw, cw.Flush()
}

// Origin returns the header's Start.
func (w *Writer) Origin() time.Time { return w.origin }

// Directory writes the tenants and groups.
func (w *Writer) Directory(d Directory) error {
	w.state.counts.Directories++
	return w.tagged(KindDirectory, d)
}

// Base writes a group's whole queue; the group's next event must carry
// b.Seq+1.
func (w *Writer) Base(b *Base) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.state.base(b); err != nil {
		return err
	}
	return w.frame(appendBase(w.start(KindBase), b, w.origin))
}

// Event writes one change. It fails with ErrState, writing nothing, when
// the change does not follow the group's base and events.
func (w *Writer) Event(e *subjects.Event) error {
	if err := w.usable(); err != nil {
		return err
	}
	if _, err := w.state.event(e); err != nil {
		return err
	}
	return w.frame(appendEvent(w.start(KindEvent), e, w.origin))
}

// Status writes a router status.
func (w *Writer) Status(s subjects.RouterStatus) error {
	w.state.counts.Statuses++
	return w.tagged(KindStatus, s)
}

// Seq returns the sequence number the capture holds for a group, and
// whether it holds the group at all.
func (w *Writer) Seq(group string) (uint64, bool) {
	g, ok := w.state.groups[group]
	if !ok {
		return 0, false
	}
	return g.seq, true
}

// Counts returns what has been written so far.
func (w *Writer) Counts() Counts { return w.state.counts }

// Bytes returns how many bytes the capture holds, buffered ones included.
func (w *Writer) Bytes() int64 { return w.n + int64(len(w.buf)) }

// Flush writes the buffered frames out.
func (w *Writer) Flush() error {
	if w.err != nil || len(w.buf) == 0 {
		return w.err
	}
	n, err := w.w.Write(w.buf)
	w.n += int64(n)
	if err != nil {
		w.err = fmt.Errorf("write capture: %w", err)
		return w.err
	}
	w.buf = w.buf[:0]
	return nil
}

// Close writes the trailer, with end as the capture's end time and ended
// saying why, and flushes. It does not close the underlying writer. A
// second Close returns ErrClosed.
func (w *Writer) Close(end time.Time, ended string) (Trailer, error) {
	if err := w.usable(); err != nil {
		return Trailer{}, err
	}
	tr := w.state.trailer(end.UTC(), ended)
	err := w.tagged(KindTrailer, tr)
	w.closed = true
	if err == nil {
		err = w.Flush()
	}
	return tr, err
}

func (w *Writer) usable() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

func (w *Writer) tagged(k Kind, v any) error {
	if err := w.usable(); err != nil {
		return err
	}
	body, err := encodeTagged(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", k, err)
	}
	return w.frame(append(w.start(k), body...))
}

// start returns the scratch payload with the kind byte in place.
func (w *Writer) start(k Kind) []byte { return append(w.body[:0], byte(k)) }

func (w *Writer) frame(payload []byte) error {
	if len(payload) > MaxFrameSize {
		return fmt.Errorf("%s frame of %d bytes: the format's limit is %d", Kind(payload[0]), len(payload), MaxFrameSize)
	}
	w.body = payload
	w.buf = appendFrame(w.buf, payload)
	if len(w.buf) >= flushAt {
		return w.Flush()
	}
	return nil
}
