package replay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A frame is [uvarint n][n bytes: kind byte, body][CRC-32C of the n bytes,
// 4 bytes big-endian]. The checksum covers the kind and the body; a damaged
// length shows as a checksum that fails at the wrong place.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends a whole frame whose payload (kind byte and body) is p.
func appendFrame(dst, p []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(p)))
	dst = append(dst, p...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(p, castagnoli))
}

// readChunk is how much a frameReader reads from the file at once.
const readChunk = 256 << 10

// frameReader reads frames from an io.ReaderAt of known size through a
// window of the file, so that each frame costs no system call. It never
// allocates for a length the file cannot hold.
type frameReader struct {
	ra     io.ReaderAt
	size   int64
	win    []byte // the file's bytes from winOff on
	winOff int64
}

// window returns the file's bytes off..off+n, n clipped to the file.
func (r *frameReader) window(off int64, n int) ([]byte, error) {
	n = int(min(int64(n), r.size-off))
	if off >= r.winOff && off+int64(n) <= r.winOff+int64(len(r.win)) {
		return r.win[off-r.winOff : off-r.winOff+int64(n)], nil
	}
	want := int(min(int64(max(n, readChunk)), r.size-off))
	if cap(r.win) < want {
		r.win = make([]byte, want)
	}
	r.win, r.winOff = r.win[:want], off
	if _, err := r.ra.ReadAt(r.win, off); err != nil && !errors.Is(err, io.EOF) {
		r.win = r.win[:0]
		return nil, fmt.Errorf("read capture at offset %d: %w", off, err)
	}
	return r.win[:n], nil
}

// frameAt reads the frame at off: its payload (valid until the next read),
// the offset after it, and a reason when there is no valid frame there.
func (r *frameReader) frameAt(off int64) (payload []byte, next int64, bad error, err error) {
	return r.frameAtStrict(off, false)
}

// frameAtStrict is frameAt; strict refuses a frame whose kind or first body
// byte is implausible before it computes the checksum, so that scanning
// garbage for the next frame costs little per byte.
func (r *frameReader) frameAtStrict(off int64, strict bool) (payload []byte, next int64, bad error, err error) {
	head, err := r.window(off, binary.MaxVarintLen64)
	if err != nil {
		return nil, 0, nil, err
	}
	n, w := binary.Uvarint(head)
	switch {
	case w == 0:
		return nil, 0, fmt.Errorf("%w: the file ends inside a frame's length", ErrTruncated), nil
	case w < 0 || n == 0 || n > MaxFrameSize:
		return nil, 0, fmt.Errorf("%w: impossible frame length", ErrCorrupt), nil
	}
	total := int64(w) + int64(n) + 4
	if left := r.size - off; total > left {
		return nil, 0, fmt.Errorf("%w: the frame declares %d bytes, the file has %d left", ErrTruncated, total, left), nil
	}
	frame, err := r.window(off, int(total))
	if err != nil {
		return nil, 0, nil, err
	}
	payload = frame[w : w+int(n)]
	if strict && !plausible(payload) {
		return nil, 0, fmt.Errorf("%w: not a frame", ErrCorrupt), nil
	}
	if got, want := crc32.Checksum(payload, castagnoli), binary.BigEndian.Uint32(frame[w+int(n):]); got != want {
		return nil, 0, fmt.Errorf("%w: checksum mismatch (stored %08x, computed %08x)", ErrCorrupt, want, got), nil
	}
	if !Kind(payload[0]).valid() {
		return nil, 0, fmt.Errorf("%w: unknown frame kind 0x%02x", ErrCorrupt, payload[0]), nil
	}
	return payload, off + total, nil, nil
}

// resync finds the first offset after off where a valid frame starts, or
// the file's size when there is none.
func (r *frameReader) resync(off int64) (int64, error) {
	for p := off + 1; p < r.size; p++ {
		_, _, bad, err := r.frameAtStrict(p, true)
		if err != nil {
			return 0, err
		}
		if bad == nil {
			return p, nil
		}
	}
	return r.size, nil
}

// plausible reports whether a payload starts as its kind's body does: an
// array of 9 (event) or 5 (base), a map for the other kinds.
func plausible(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch b := p[1]; Kind(p[0]) {
	case KindEvent:
		return b == 0x99
	case KindBase:
		return b == 0x95
	case KindHeader, KindDirectory, KindStatus, KindTrailer:
		return b&0xf0 == 0x80 || b == 0xde || b == 0xdf
	}
	return false
}
