package sim

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rs/zerolog"
)

// Limits of Config.
const (
	// MaxTenants is the largest Tenants accepted.
	MaxTenants = 100
	// MaxGroupsPerTenant is the largest GroupsPerTenant accepted.
	MaxGroupsPerTenant = 20
	// MaxWarmup is the longest Warmup accepted: New simulates it at once.
	MaxWarmup = 7 * 24 * time.Hour
	// MaxRate is the largest Rate accepted.
	MaxRate = 100
)

// ErrConfig is wrapped by every problem Config.Validate reports.
var ErrConfig = errors.New("invalid simulator config")

// Config configures a Sim. The zero value of each field means its default.
type Config struct {
	// Seed seeds the simulation: the same Seed and Start give exactly the
	// same sequence of Handler calls. Default 0 (a seed like any other).
	Seed uint64
	// Speed is how many simulated seconds pass per wall-clock second.
	// Default 1 (real time). A negative value or +Inf runs at maximum
	// speed: no pacing at all. NaN is invalid.
	Speed float64
	// Start is the simulated time of the first LinkUp; the warmup runs from
	// Start-Warmup up to it. Its location is the contact centre's time zone
	// (opening hours, the daily traffic profile). Default: the wall-clock
	// time New is called, truncated to the second, in the local time zone
	// if it is business hours there (9:00 to 17:00), else in a zone where
	// it is 11:00 now: the contact centre is busy at any hour, and its
	// times are the wall clock's.
	Start time.Time
	// Tenants is how many tenants to simulate, 1 to MaxTenants. Default 3.
	Tenants int
	// GroupsPerTenant is how many service groups each tenant has, 1 to
	// MaxGroupsPerTenant. Default 3.
	GroupsPerTenant int
	// Warmup is simulated at once by New, before the first LinkUp, so that
	// queues are busy from the start; 0 to MaxWarmup. Default 10 minutes; a
	// negative value means none.
	Warmup time.Duration
	// LinkDrops makes the router link drop now and then for a few simulated
	// seconds: LinkDown, the simulation keeps running unreported, then
	// LinkUp with the full state. Default false.
	LinkDrops bool
	// GroupChurn makes a service group close down for good now and then:
	// its waiting sessions leave with ServiceGroupClosed and it is removed
	// from the directory (Handler.RemoveGroup); a few simulated minutes
	// later it is set up again, empty (Handler.PutGroup). Default false.
	GroupChurn bool
	// MaxChanges, when positive, makes Run return nil once it has reported
	// that many changes in this call (finishing the simulated event that
	// reached the count, so that the Handler's queues match State). Default
	// 0: unlimited.
	MaxChanges int
	// Rate multiplies every arrival rate, 0 (exclusive) to MaxRate; the
	// agents are staffed to the load, so it changes the traffic more than
	// the depth of the queues. Default 1.
	Rate float64
	// Log receives what Run cannot report to the Handler (rejected changes,
	// a failed LinkUp). Default: the zero Logger, which discards.
	Log zerolog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.setDefaults()
	return c
}

// openNow returns now in the local zone if it is business hours there,
// else in a fixed zone where the hour is 11.
func openNow(now time.Time) time.Time {
	if h := now.Hour(); h >= 9 && h < 17 {
		return now
	}
	utc := now.UTC()
	offset := (11 - utc.Hour()) * 3600
	if offset < -12*3600 {
		offset += 24 * 3600
	}
	return now.In(time.FixedZone(fmt.Sprintf("UTC%+03d", offset/3600), offset))
}

func (c *Config) setDefaults() {
	if c.Speed == 0 {
		c.Speed = 1
	}
	if c.Start.IsZero() {
		c.Start = openNow(time.Now().Truncate(time.Second))
	}
	if c.Tenants == 0 {
		c.Tenants = 3
	}
	if c.GroupsPerTenant == 0 {
		c.GroupsPerTenant = 3
	}
	switch {
	case c.Warmup == 0:
		c.Warmup = 10 * time.Minute
	case c.Warmup < 0:
		c.Warmup = 0
	}
	if c.Rate == 0 {
		c.Rate = 1
	}
}

// Validate reports every problem of c at once, each wrapping ErrConfig. Zero
// fields are valid: they take their defaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if math.IsNaN(c.Speed) {
		bad("Speed is NaN: want a positive number, or <= 0 or +Inf for maximum speed")
	}
	if c.Tenants < 0 || c.Tenants > MaxTenants {
		bad("Tenants %d: want 1 to %d (0 for the default 3)", c.Tenants, MaxTenants)
	}
	if c.GroupsPerTenant < 0 || c.GroupsPerTenant > MaxGroupsPerTenant {
		bad("GroupsPerTenant %d: want 1 to %d (0 for the default 3)", c.GroupsPerTenant, MaxGroupsPerTenant)
	}
	if c.Warmup > MaxWarmup {
		bad("Warmup %s: want at most %s", c.Warmup, MaxWarmup)
	}
	if c.MaxChanges < 0 {
		bad("MaxChanges %d: want 0 (unlimited) or more", c.MaxChanges)
	}
	if math.IsNaN(c.Rate) || c.Rate < 0 || c.Rate > MaxRate {
		bad("Rate %g: want more than 0 and at most %d (0 for the default 1)", c.Rate, MaxRate)
	}
	if y := c.Start.Year(); !c.Start.IsZero() && (y < 1970 || y > 9999) {
		bad("Start %s: want a year from 1970 to 9999", c.Start)
	}
	return errors.Join(errs...)
}

// paced reports whether Run sleeps to follow Speed.
func (c Config) paced() bool { return c.Speed > 0 && !math.IsInf(c.Speed, 1) }
