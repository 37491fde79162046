package access_test

import (
	"testing"

	"github.com/sisbridge/sisbridge/access"
)

// FuzzParse: a credentials file, however damaged, is read or refused; what
// is read has only roles, each with a user and a password, and gives a
// server configuration.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"adapter":{"user":"adapter","password":"x"}}`, `{"reader-acme":{"user":"reader-acme","password":"p"}}`,
		`{"nosuch":{"user":"u","password":"p"}}`, `{"reader-a b":{}}`, `[]`, `null`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := access.Parse(data)
		if err != nil {
			return
		}
		for r, s := range c {
			if r.Check() != nil || s.User == "" || s.Password == "" {
				t.Fatalf("read %q: %+v", r, s)
			}
		}
		if _, err := c.ServerUsers(false); err != nil {
			t.Fatal(err)
		}
	})
}
