package bridge

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/subjects"
)

// directory is the gateway's copy of the tenants and groups, kept current
// by a watch on the directory bucket.
type directory struct {
	mu      sync.RWMutex
	tenants map[string]subjects.Tenant
	groups  map[string]subjects.Group
	names   map[string]subjects.Group // "tenant\x00lower(name)"
	synced  chan struct{}
}

func watchDirectory(ctx context.Context, s *Server) (*directory, error) {
	kv, err := s.js.KeyValue(ctx, subjects.BucketDirectory)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", subjects.BucketDirectory, err)
	}
	w, err := subjects.SteadyWatch(s.ctx, s.js, kv)
	if err != nil {
		return nil, fmt.Errorf("watch directory: %w", err)
	}
	d := &directory{tenants: map[string]subjects.Tenant{}, groups: map[string]subjects.Group{}, names: map[string]subjects.Group{}, synced: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { _ = w.Stop() }()
		d.follow(s, w)
	}()
	return d, nil
}

func (d *directory) follow(s *Server, w jetstream.KeyWatcher) {
	for {
		select {
		case <-s.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				close(d.synced)
				continue
			}
			added, removed, err := d.update(e)
			if err != nil {
				s.log.Warn().Err(err).Str("key", e.Key()).Msg("directory entry skipped")
			}
			if added != nil {
				s.groupAdded(*added)
			}
			if removed != "" {
				s.groupRemoved(removed)
			}
		}
	}
}

// update applies one directory entry; it returns the group it added (nil
// for none) and the group it removed ("" for none).
func (d *directory) update(e jetstream.KeyValueEntry) (added *subjects.Group, removed string, err error) {
	kind, id, ok := subjects.ParseDirectoryKey(e.Key())
	if !ok || kind == "removed" {
		return nil, "", nil
	}
	deleted := e.Operation() != jetstream.KeyValuePut
	d.mu.Lock()
	defer d.mu.Unlock()
	if kind == "tenant" {
		if deleted {
			delete(d.tenants, id)
			return nil, "", nil
		}
		t, err := subjects.DecodeTenant(e.Value())
		if err == nil {
			d.tenants[t.TenantID] = t
		}
		return nil, "", err
	}
	old, existed := d.groups[id]
	if existed {
		delete(d.names, nameKey(old.TenantID, old.Name))
		delete(d.groups, id)
	}
	if deleted {
		if existed {
			removed = id
		}
		return nil, removed, nil
	}
	g, err := subjects.DecodeGroup(e.Value())
	if err != nil {
		return nil, "", err
	}
	d.groups[g.ServiceGroupID] = g
	d.names[nameKey(g.TenantID, g.Name)] = g
	if !existed {
		added = &g
	}
	return added, "", nil
}

// ofTenant returns a tenant's groups in ServiceGroupID order; false when
// the directory knows no such tenant.
func (d *directory) ofTenant(tenant string) ([]subjects.Group, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, known := d.tenants[tenant]
	var out []subjects.Group
	for _, g := range d.groups {
		if g.TenantID == tenant {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b subjects.Group) int { return strings.Compare(a.ServiceGroupID, b.ServiceGroupID) })
	return out, known || len(out) > 0
}

func nameKey(tenant, name string) string {
	return tenant + "\x00" + strings.ToLower(strings.TrimSpace(name))
}

func (d *directory) byID(id string) (subjects.Group, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	g, ok := d.groups[id]
	return g, ok
}

func (d *directory) byName(tenant, name string) (subjects.Group, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	g, ok := d.names[nameKey(tenant, name)]
	return g, ok
}

// Tenant is a tenant with its groups, as GET /v1/groups lists them.
type Tenant struct {
	TenantID      string         `json:"TenantID"`
	Name          string         `json:"Name"`
	ServiceGroups []GroupSummary `json:"ServiceGroups"`
}

// GroupSummary is a group in GET /v1/groups.
type GroupSummary struct {
	ServiceGroupID   string `json:"ServiceGroupID"`
	ServiceGroupName string `json:"ServiceGroupName"`
}

// list returns the directory sorted by tenant and group ID.
func (d *directory) list() []Tenant {
	d.mu.RLock()
	defer d.mu.RUnlock()
	byTenant := map[string]*Tenant{}
	for _, t := range d.tenants {
		byTenant[t.TenantID] = &Tenant{TenantID: t.TenantID, Name: t.Name, ServiceGroups: []GroupSummary{}}
	}
	for _, g := range d.groups {
		t := byTenant[g.TenantID]
		if t == nil {
			t = &Tenant{TenantID: g.TenantID, ServiceGroups: []GroupSummary{}}
			byTenant[g.TenantID] = t
		}
		t.ServiceGroups = append(t.ServiceGroups, GroupSummary{ServiceGroupID: g.ServiceGroupID, ServiceGroupName: g.Name})
	}
	return sortTenants(byTenant)
}
