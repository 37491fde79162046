package sim_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sisbridge/sisbridge/router/sim"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  sim.Config
		want []string // fields named in the error; none: valid
	}{
		{"zero", sim.Config{}, nil},
		{"max speed negative", sim.Config{Speed: -1}, nil},
		{"max speed inf", sim.Config{Speed: math.Inf(1)}, nil},
		{"no warmup", sim.Config{Warmup: -time.Second}, nil},
		{"limits", sim.Config{Tenants: sim.MaxTenants, GroupsPerTenant: sim.MaxGroupsPerTenant, Rate: sim.MaxRate, Warmup: sim.MaxWarmup}, nil},
		{"speed NaN", sim.Config{Speed: math.NaN()}, []string{"Speed"}},
		{"tenants negative", sim.Config{Tenants: -1}, []string{"Tenants"}},
		{"tenants too many", sim.Config{Tenants: sim.MaxTenants + 1}, []string{"Tenants"}},
		{"groups negative", sim.Config{GroupsPerTenant: -2}, []string{"GroupsPerTenant"}},
		{"groups too many", sim.Config{GroupsPerTenant: sim.MaxGroupsPerTenant + 1}, []string{"GroupsPerTenant"}},
		{"warmup too long", sim.Config{Warmup: sim.MaxWarmup + time.Second}, []string{"Warmup"}},
		{"max changes negative", sim.Config{MaxChanges: -1}, []string{"MaxChanges"}},
		{"rate negative", sim.Config{Rate: -0.5}, []string{"Rate"}},
		{"rate NaN", sim.Config{Rate: math.NaN()}, []string{"Rate"}},
		{"rate inf", sim.Config{Rate: math.Inf(1)}, []string{"Rate"}},
		{"start year", sim.Config{Start: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"Start"}},
		{"all at once", sim.Config{Speed: math.NaN(), Tenants: -1, GroupsPerTenant: 99, Warmup: 30 * 24 * time.Hour, MaxChanges: -5, Rate: -1},
			[]string{"Speed", "Tenants", "GroupsPerTenant", "Warmup", "MaxChanges", "Rate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("valid config rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, sim.ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok || len(joined.Unwrap()) != len(tt.want) {
				t.Fatalf("want %d problems joined, got %v", len(tt.want), err)
			}
			for i, field := range tt.want {
				if msg := joined.Unwrap()[i].Error(); !strings.Contains(msg, field+" ") {
					t.Errorf("problem %d %q does not name %s", i, msg, field)
				}
			}
			if _, err := sim.New(tt.cfg); !errors.Is(err, sim.ErrConfig) {
				t.Fatalf("New accepted it: %v", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	before := time.Now().Add(-time.Second)
	c := sim.Config{}.WithDefaults()
	if c.Speed != 1 || c.Tenants != 3 || c.GroupsPerTenant != 3 || c.Warmup != 10*time.Minute || c.Rate != 1 ||
		c.MaxChanges != 0 || c.LinkDrops || c.Seed != 0 {
		t.Fatalf("defaults %+v", c)
	}
	if c.Start.Before(before) || c.Start.After(time.Now()) || c.Start.Nanosecond() != 0 {
		t.Fatalf("default Start %s: want now, truncated to the second", c.Start)
	}
	if c := (sim.Config{Warmup: -1}).WithDefaults(); c.Warmup != 0 {
		t.Fatalf("negative warmup became %s, want 0", c.Warmup)
	}
	fixed := sim.Config{Speed: 2, Start: start, Tenants: 1, GroupsPerTenant: 5, Warmup: time.Hour, Rate: 0.5}
	if got := fixed.WithDefaults(); !reflect.DeepEqual(got, fixed) {
		t.Fatalf("set fields changed: %+v", got)
	}
}
