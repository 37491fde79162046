package subjects

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Directory is the content of BucketDirectory.
type Directory struct {
	// Tenants by TenantID.
	Tenants map[string]Tenant
	// Groups by ServiceGroupID.
	Groups map[string]Group
	// Removed are groups removed from the directory, by ServiceGroupID.
	Removed map[string]Group
}

// ReadDirectory loads every tenant and group from the directory bucket.
func ReadDirectory(ctx context.Context, kv jetstream.KeyValue) (Directory, error) {
	d := Directory{Tenants: map[string]Tenant{}, Groups: map[string]Group{}, Removed: map[string]Group{}}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return d, fmt.Errorf("list directory: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	for key := range lister.Keys() {
		entry, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return d, fmt.Errorf("read directory %s: %w", key, err)
		}
		if err := d.add(key, entry.Value()); err != nil {
			return d, fmt.Errorf("read directory %s: %w", key, err)
		}
	}
	return d, nil
}

func (d *Directory) add(key string, value []byte) error {
	kind, _, ok := ParseDirectoryKey(key)
	switch {
	case !ok:
		return nil
	case kind == "tenant":
		t, err := DecodeTenant(value)
		if err == nil {
			d.Tenants[t.TenantID] = t
		}
		return err
	case kind == "removed":
		g, err := DecodeGroup(value)
		if err == nil {
			d.Removed[g.ServiceGroupID] = g
		}
		return err
	default:
		g, err := DecodeGroup(value)
		if err == nil {
			d.Groups[g.ServiceGroupID] = g
		}
		return err
	}
}

// StatusLiveWithin is how recently the router status must have been written
// for its writer to count as alive: an adapter rewrites it every second, and
// a reader that hears nothing for as long treats the router as gone.
const StatusLiveWithin = 3 * time.Second

// ReadRouterStatus reads the router status from BucketRouter; entry is nil
// when there is none.
func ReadRouterStatus(ctx context.Context, kv jetstream.KeyValue) (entry jetstream.KeyValueEntry, st RouterStatus, err error) {
	entry, err = kv.Get(ctx, RouterStatusKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, st, nil
	}
	if err != nil {
		return nil, st, fmt.Errorf("read router status: %w", err)
	}
	if st, err = DecodeStatus(entry.Value()); err != nil {
		return nil, st, fmt.Errorf("read router status: %w", err)
	}
	return entry, st, nil
}
