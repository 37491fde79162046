//go:build !unix

package bridge

import (
	"net"
	"syscall"
)

// rawConn returns nil: writes go through a writer goroutine of the
// connection's own.
func rawConn(net.Conn) syscall.RawConn { return nil }

// writeNow is never called without a raw connection.
func writeNow(syscall.RawConn, []byte) (int, error) { return 0, nil }
