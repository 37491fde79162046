package bridge

import (
	"strconv"
	"unicode/utf8"
)

// maxLogged is how many bytes of a client's text a log line carries.
const maxLogged = 64

// logged returns a client's text fit for a log line: at most maxLogged
// bytes of it (cut on a rune boundary, with how long it was), control
// characters and bytes that are not UTF-8 escaped as Go does, so that a
// client cannot forge log lines or flood them.
func logged(s string) string {
	n := len(s)
	if n > maxLogged {
		cut := maxLogged
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	q := strconv.Quote(s)
	q = q[1 : len(q)-1]
	if n > maxLogged {
		q += "… (" + strconv.Itoa(n) + " bytes)"
	}
	return q
}
