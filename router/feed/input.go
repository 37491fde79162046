package feed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/sisbridge/sisbridge/router"
)

// rawLine is one line as read, before decoding.
type rawLine struct {
	// num is the 1-based line number within its input or request body.
	num int
	// text is the line without its end ("\n" or "\r\n"); nil when long.
	text []byte
	// long says the line is longer than MaxLine; its text was dropped.
	long bool
}

// lineReader splits a stream into lines, holding at most about MaxLine
// bytes of a line: the rest of a longer line is read and dropped, and the
// lines after it are read as usual.
type lineReader struct {
	r   *bufio.Reader
	max int
	num int
	buf []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line, or io.EOF after the last one. The text is
// valid until the next call. A read error other than io.EOF drops the
// partial line and is returned as is.
func (lr *lineReader) next() (rawLine, error) {
	lr.buf = lr.buf[:0]
	size := 0
	for {
		chunk, err := lr.r.ReadSlice('\n')
		size += len(chunk)
		if len(lr.buf) <= lr.max+1 {
			lr.buf = append(lr.buf, chunk...)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && size == 0:
			return rawLine{}, io.EOF
		case err != nil && !errors.Is(err, io.EOF):
			return rawLine{}, err
		}
		lr.num++
		return lr.cut(size), nil
	}
}

// cut makes the line just read (size bytes, end included) into a rawLine.
// When the buffer holds less than size, the line is longer than max.
func (lr *lineReader) cut(size int) rawLine {
	l := rawLine{num: lr.num}
	if len(lr.buf) < size {
		l.long = true
		return l
	}
	text := bytes.TrimSuffix(lr.buf, []byte("\n"))
	text = bytes.TrimSuffix(text, []byte("\r"))
	if len(text) > lr.max {
		l.long = true
		return l
	}
	l.text = text
	return l
}

// readInput applies Input line by line until its end or until ctx is done,
// then logs a summary. Bad lines are logged and counted; reading goes on.
func (f *Feed) readInput(ctx context.Context, h router.Handler) {
	name := f.cfg.InputName
	lr := newLineReader(f.cfg.Input, f.cfg.MaxLine)
	var acc, rej int
	why := "end of input"
	for {
		raw, err := lr.next()
		if err != nil {
			switch {
			case ctx.Err() != nil: // the read was interrupted to stop
				why = "feed stopping"
			case !errors.Is(err, io.EOF):
				why = "read error: " + err.Error()
				f.log.Error().Str("input", name).Int("line", lr.num+1).Err(err).Msg("reading input")
			}
			break
		}
		res, err := f.handle(ctx, h, raw)
		if res == stopped {
			why = "feed stopping"
			break
		}
		switch res {
		case accepted:
			acc++
		case rejected:
			rej++
			f.log.Warn().Str("input", name).Int("line", raw.num).Err(err).Msg("line rejected")
		}
	}
	f.log.Info().Str("input", name).Int("lines", lr.num).Int("accepted", acc).
		Int("rejected", rej).Str("why", why).Msg("input finished")
}

// deadliner is an input whose blocked Read can be interrupted: *os.File
// (when pollable) and net.Conn.
type deadliner interface {
	SetReadDeadline(t time.Time) error
}

// stopInput waits for readInput to end, interrupting a blocked Read of
// Input if Input allows. It gives up after shutdownTimeout: a Read that
// cannot be interrupted (os.Stdin on a terminal or a blocking pipe) may
// go on, but the goroutine applies no line once Run has returned.
func (f *Feed) stopInput(done <-chan struct{}) {
	if d, ok := f.cfg.Input.(deadliner); ok {
		_ = d.SetReadDeadline(time.Now())
	}
	t := time.NewTimer(shutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		f.log.Warn().Str("input", f.cfg.InputName).Msg("input read still blocked at shutdown; leaving it")
	}
}
