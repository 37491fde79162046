package replay

import (
	"errors"
	"io"
	"time"
)

// Index is what one pass over a capture finds: enough to check it before
// playing it and to tell how long playing it takes.
type Index struct {
	// Header is the capture's header; Trailer its trailer, nil when the
	// file ends without one (a recording that was killed).
	Header  Header
	Trailer *Trailer
	// Frames counts the valid frames, header included; Events the changes.
	Frames int
	Events uint64
	// Last is the bus time of the last change (zero when there is none).
	Last time.Time
	// End is the offset where the valid frames end; Size the file's size.
	End, Size int64
	// Skipped lists what ReadOptions.SkipCorrupt stepped over.
	Skipped []Span
}

// Span returns the capture's length in bus time: from its Start to its end
// (the trailer's End, else its last change).
func (x *Index) Span() time.Duration {
	end := x.Last
	if x.Trailer != nil && !x.Trailer.End.IsZero() {
		end = x.Trailer.End
	}
	if end.IsZero() || end.Before(x.Header.Start) {
		return 0
	}
	return end.Sub(x.Header.Start)
}

// Scan reads a whole capture, checking every frame. Without
// opts.SkipCorrupt the first damaged frame returns a *CorruptError.
func Scan(ra io.ReaderAt, size int64, opts ReadOptions) (*Index, error) {
	x, err := walk(ra, size, opts, func(*Record) {})
	if err != nil {
		return nil, err
	}
	return x, nil
}

// walk reads every record of a capture, handing each to fn, and indexes
// the capture on the way.
func walk(ra io.ReaderAt, size int64, opts ReadOptions, fn func(*Record)) (*Index, error) {
	r, err := NewReader(ra, size, opts)
	if err != nil {
		return nil, err
	}
	x := &Index{Header: r.Header(), Frames: 1, Size: size}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		x.Frames++
		x.End = rec.Offset + int64(rec.Size)
		if rec.Kind == KindEvent {
			x.Events++
			x.Last = rec.Event.Time
		}
		fn(&rec)
	}
	x.Trailer, x.Skipped = r.Trailer(), r.Skipped()
	if x.Frames == 1 {
		x.End = r.Offset()
	}
	return x, nil
}
