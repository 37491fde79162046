package subjects

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Directory is the content of BucketDirectory.
type Directory struct {
	// Tenants by TenantID.
	Tenants map[string]Tenant
	// Groups by ServiceGroupID.
	Groups map[string]Group
}

// ReadDirectory loads every tenant and group from the directory bucket.
func ReadDirectory(ctx context.Context, kv jetstream.KeyValue) (Directory, error) {
	d := Directory{Tenants: map[string]Tenant{}, Groups: map[string]Group{}}
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
	default:
		g, err := DecodeGroup(value)
		if err == nil {
			d.Groups[g.ServiceGroupID] = g
		}
		return err
	}
}
