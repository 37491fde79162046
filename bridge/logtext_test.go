package bridge

import (
	"strings"
	"testing"
)

func TestLoggedClientText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"admin", "admin"},
		{"évé", "évé"},
		{"a\nb\x1b[31m", `a\nb\x1b[31m`},
		{"bad\xffbyte", `bad\xffbyte`},
		{strings.Repeat("x", 100), strings.Repeat("x", 64) + "… (100 bytes)"},
		{strings.Repeat("x", 63) + "é", strings.Repeat("x", 63) + "… (65 bytes)"},
	} {
		if got := logged(tc.in); got != tc.want {
			t.Errorf("logged(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
