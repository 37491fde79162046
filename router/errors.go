package router

import "errors"

// Errors of the adapter; test with errors.Is.
var (
	// ErrUnknownGroup: a change or group names a group or tenant that the
	// directory does not hold.
	ErrUnknownGroup = errors.New("unknown service group or tenant")
	// ErrDuplicateName: a group's name is already another group's in the
	// same tenant, ignoring case (Subscribe by name could not tell them
	// apart).
	ErrDuplicateName = errors.New("service group name already taken in the tenant")
	// ErrAdapterLive: another adapter feeds the bus (it keeps the router
	// status current).
	ErrAdapterLive = errors.New("another router adapter is live on the bus")
	// ErrClosed: the adapter is closed.
	ErrClosed = errors.New("adapter closed")
)
