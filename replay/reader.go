package replay

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sisbridge/sisbridge/subjects"
)

// ReadOptions tune a Reader.
type ReadOptions struct {
	// SkipCorrupt makes the reader step over a damaged, truncated or
	// undecodable frame: it scans forward to the next frame whose checksum
	// holds and lists what it skipped (Reader.Skipped). Without it the first
	// such frame ends reading with a *CorruptError.
	SkipCorrupt bool
}

// Record is one decoded frame. Exactly one of the pointers is set, as Kind
// says; Event is reused by the next Read.
type Record struct {
	// Kind is the frame kind.
	Kind Kind
	// Offset is the frame's byte offset; Num its 1-based number.
	Offset int64
	Num    int
	// Size is the frame's length in bytes, framing included.
	Size int
	// Directory, Base, Event, Status and Trailer hold the decoded body of
	// a frame of that kind.
	Directory *Directory
	Base      *Base
	Event     *subjects.Event
	Status    *subjects.RouterStatus
	Trailer   *Trailer
}

// Reader reads a capture frame by frame. It is not safe for concurrent use.
type Reader struct {
	fr      frameReader
	opts    ReadOptions
	dec     *decoder
	header  Header
	off     int64
	num     int
	skipped []Span
	trailer *Trailer
	err     error
	event   subjects.Event
}

// NewReader checks the signature and reads the header of the capture held
// by ra (size bytes). A damaged header is an error even with SkipCorrupt.
func NewReader(ra io.ReaderAt, size int64, opts ReadOptions) (*Reader, error) {
	r := &Reader{fr: frameReader{ra: ra, size: size}, opts: opts}
	sig, err := r.fr.window(0, len(Signature)+1)
	if err != nil {
		return nil, err
	}
	if len(sig) < len(Signature) || string(sig[:len(Signature)]) != Signature {
		return nil, fmt.Errorf("%w: the file does not start with the capture signature", ErrNotCapture)
	}
	if len(sig) == len(Signature) {
		return nil, r.corrupt(int64(len(Signature)), 0, fmt.Errorf("%w: the file ends before the format version", ErrTruncated))
	}
	if sig[len(Signature)] != FormatVersion {
		return nil, fmt.Errorf("%w: version %d (this program reads %d)", ErrVersion, sig[len(Signature)], FormatVersion)
	}
	r.off = int64(len(Signature)) + 1
	payload, next, bad, err := r.fr.frameAt(r.off)
	if err != nil {
		return nil, err
	}
	r.num = 1
	if bad == nil && Kind(payload[0]) != KindHeader {
		bad = fmt.Errorf("%w: the first frame is a %s, not the header", ErrCorrupt, Kind(payload[0]))
	}
	if bad == nil {
		r.header, bad = decodeHeader(payload[1:])
		if bad != nil {
			bad = fmt.Errorf("%w: %v", ErrCorrupt, bad)
		}
	}
	if bad != nil {
		return nil, r.corrupt(r.off, 1, bad)
	}
	r.off, r.dec = next, newDecoder(r.header.Start)
	return r, nil
}

func (r *Reader) corrupt(off int64, num int, reason error) *CorruptError {
	kind := ErrCorrupt
	if errors.Is(reason, ErrTruncated) {
		kind = ErrTruncated
	}
	return &CorruptError{Offset: off, Frame: num, Reason: strings.TrimPrefix(reason.Error(), kind.Error()+": "), Err: kind}
}

// Header returns the capture's header.
func (r *Reader) Header() Header { return r.header }

// Offset returns the offset of the next frame: after a clean io.EOF, where
// the file ends.
func (r *Reader) Offset() int64 { return r.off }

// Size returns the size of the file.
func (r *Reader) Size() int64 { return r.fr.size }

// Trailer returns the trailer once Read has reached it, else nil.
func (r *Reader) Trailer() *Trailer { return r.trailer }

// Skipped lists the byte ranges SkipCorrupt stepped over.
func (r *Reader) Skipped() []Span { return r.skipped }

// Read returns the next frame, io.EOF at the end of the file (whether or
// not a trailer came before: see Trailer), or a *CorruptError.
func (r *Reader) Read() (Record, error) {
	for r.err == nil {
		if r.off >= r.fr.size {
			r.err = io.EOF
			break
		}
		rec, bad, err := r.next()
		if err != nil {
			r.err = err
			break
		}
		if bad == nil {
			return rec, nil
		}
		cerr := r.corrupt(r.off, r.num, bad)
		if !r.opts.SkipCorrupt {
			r.err = cerr
			break
		}
		to, err := r.fr.resync(r.off)
		if err != nil {
			r.err = err
			break
		}
		r.skipped = append(r.skipped, Span{From: r.off, To: to, Reason: cerr.Error()})
		r.off = to
	}
	return Record{}, r.err
}

// next reads and decodes the frame at r.off; bad says why it is not one.
func (r *Reader) next() (rec Record, bad, err error) {
	payload, next, bad, err := r.fr.frameAt(r.off)
	if err != nil || bad != nil {
		r.num++
		return rec, bad, err
	}
	r.num++
	rec = Record{Kind: Kind(payload[0]), Offset: r.off, Num: r.num, Size: int(next - r.off)}
	if r.trailer != nil {
		return rec, fmt.Errorf("%w: a %s frame after the trailer", ErrCorrupt, rec.Kind), nil
	}
	if bad = r.decode(&rec, payload[1:]); bad != nil {
		return rec, fmt.Errorf("%w: %v", ErrCorrupt, bad), nil
	}
	r.off = next
	return rec, nil, nil
}

func (r *Reader) decode(rec *Record, body []byte) error {
	switch rec.Kind {
	case KindEvent:
		rec.Event = &r.event
		return r.dec.event(body, &r.event)
	case KindBase:
		b, err := r.dec.base(body)
		rec.Base = b
		return err
	case KindDirectory:
		rec.Directory = &Directory{}
		return decodeTagged(body, rec.Directory, "directory")
	case KindStatus:
		s, err := decodeStatus(body)
		rec.Status = &s
		return err
	case KindTrailer:
		t, err := decodeTrailer(body)
		if err == nil {
			r.trailer = &t
		}
		rec.Trailer = &t
		return err
	}
	return fmt.Errorf("a second header")
}
