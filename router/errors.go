package router

import "errors"

// Errors of the adapter; test with errors.Is.
var (
	// ErrUnknownGroup: a change or group names a group or tenant that the
	// directory does not hold.
	ErrUnknownGroup = errors.New("unknown service group or tenant")
	// ErrClosed: the adapter is closed.
	ErrClosed = errors.New("adapter closed")
)
