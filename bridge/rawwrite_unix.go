//go:build unix

package bridge

import (
	"errors"
	"net"
	"syscall"
)

// rawConn returns nc's descriptor for writes that must not block, or nil
// when nc has none (a TLS connection).
func rawConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// writeNow writes as much of p as the socket takes at once, without
// waiting: n < len(p) means the socket is full. The descriptor is in
// non-blocking mode, as every socket of the Go runtime.
func writeNow(rc syscall.RawConn, p []byte) (n int, err error) {
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, e := syscall.Write(int(fd), p[n:])
			switch {
			case errors.Is(e, syscall.EINTR):
				continue
			case errors.Is(e, syscall.EAGAIN):
				return true
			case e != nil:
				werr = e
				return true
			}
			n += m
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}
