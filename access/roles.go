// Package access is who may do what on the bus: the NATS users of the
// project's roles and the subjects each may publish and subscribe to, least
// privilege first (docs/security.md). A role's connection must use the
// role's inbox prefix (Inbox): replies to it are the only ones it may read.
package access

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sisbridge/sisbridge/subjects"
)

// Role is a kind of bus client.
type Role string

// The roles of the project. A downstream reader of one tenant is
// TenantReader(tenant).
const (
	// Adapter writes events, snapshots, the directory and the router
	// status, and creates the bus (replay play plays as it).
	Adapter Role = "adapter"
	// Gateway reads all of that and the users, and reads and writes seats.
	Gateway Role = "gateway"
	// Recorder reads what replay record captures.
	Recorder Role = "recorder"
	// Admin manages the host administrators (sisbridge users).
	Admin Role = "admin"
	// Route is no client: its secret lets the nodes of a cluster of
	// embedded servers (sisbridge run --nats-cluster) route to each other.
	Route Role = "route"
)

// readerPrefix starts the name of a tenant reader's role.
const readerPrefix = "reader-"

// TenantReader is the role of a downstream service that reads the events
// of one tenant through a JetStream consumer of its own (named
// ReaderConsumer(tenant)) and its live subjects.
func TenantReader(tenant string) Role { return Role(readerPrefix + tenant) }

// ReaderConsumer is the name of a tenant reader's consumer on the events
// stream: the only one it may create and read.
func ReaderConsumer(tenant string) string { return "sis-reader-" + tenant }

// Tenant returns the tenant of a reader's role; ok is false for the other
// roles.
func (r Role) Tenant() (string, bool) {
	return strings.CutPrefix(string(r), readerPrefix)
}

// Inbox is the prefix of the role's reply subjects (nats.CustomInboxPrefix).
func (r Role) Inbox() string { return "_INBOX_" + strings.ReplaceAll(string(r), "-", "_") }

// ErrRole: a role that does not exist.
var ErrRole = errors.New("unknown role")

// Roles are the fixed roles, in the order credentials list them.
var Roles = []Role{Adapter, Gateway, Recorder, Admin}

// Check says whether r is a role: a fixed one, or a reader of a tenant
// with a well-formed ID.
func (r Role) Check() error {
	for _, f := range Roles {
		if r == f {
			return nil
		}
	}
	if r == Route {
		return nil
	}
	if t, ok := r.Tenant(); ok {
		if err := subjects.CheckID("TenantID", t); err != nil {
			return fmt.Errorf("%w %q: %w", ErrRole, r, err)
		}
		return nil
	}
	return fmt.Errorf("%w %q: want adapter, gateway, recorder, admin, route or reader-<tenant>", ErrRole, r)
}
