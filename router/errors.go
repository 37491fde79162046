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
	// ErrAdapterLive: another adapter holds the lease of the bus (Open
	// waits one lease time for it to lapse first; a Standby waits for ever).
	ErrAdapterLive = errors.New("another router adapter is live on the bus")
	// ErrLeaseLost: the adapter lost its lease (it could not renew it in
	// time, or another adapter took it): it stands down and writes nothing
	// more; Run returns it.
	ErrLeaseLost = errors.New("adapter lease lost")
	// ErrClosed: the adapter is closed.
	ErrClosed = errors.New("adapter closed")
	// ErrAborted: Close gave up waiting (its context ended); changes not
	// stored by then are counted in Stats.Lost.
	ErrAborted = errors.New("adapter aborted")
	// ErrStoreRefuses: JetStream refuses the adapter's writes (its store is
	// full, or it lost a disk); accepted changes wait and are retried.
	ErrStoreRefuses = errors.New("event store refuses writes")
	// ErrForeignWrite: a group's events subject holds a message the adapter
	// did not write where its own belongs (another writer on the bus). The
	// adapter stops rather than store a history that no longer replays.
	ErrForeignWrite = errors.New("a write of another's on a group's events subject")
	// ErrRouterDown: the router link is down.
	ErrRouterDown = errors.New("router link down")
)
