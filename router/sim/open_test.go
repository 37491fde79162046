package sim

import (
	"testing"
	"time"
)

// TestDefaultStartIsOpen: whatever the hour, the default start is the
// wall-clock instant at a business hour of its zone.
func TestDefaultStartIsOpen(t *testing.T) {
	for h := range 24 {
		now := time.Date(2026, 11, 30, h, 17, 5, 0, time.UTC)
		got := openNow(now)
		if !got.Equal(now) {
			t.Fatalf("%02d:17 UTC: start %s is another instant", h, got)
		}
		if lh := got.Hour(); lh < 9 || lh >= 17 {
			t.Fatalf("%02d:17 UTC: starts at local hour %d (%s)", h, lh, got)
		}
	}
}
