package users

import (
	"strings"
	"testing"
)

func TestPHC(t *testing.T) {
	c := fast.WithDefaults()
	h := c.newHash("password")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if h2 := c.newHash("password"); h2 == h {
		t.Error("two hashes of one password share a salt")
	}
	p, err := parsePHC(h)
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != h {
		t.Errorf("round trip %q, want %q", p.String(), h)
	}
	if !p.verify("password") || p.verify("Password") || p.verify("") {
		t.Error("verify")
	}
	// A hash from the reference implementation (argon2 CLI, RFC 9106 style):
	//   echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 32 -e
	ref := "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"
	if p, err := parsePHC(ref); err != nil || !p.verify("password") {
		t.Errorf("reference hash: %v", err)
	}

	salt, key := "c29tZXNhbHQ", "GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"
	bad := []string{
		"",
		"argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=65,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=9$" + salt + "$" + key,
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "=$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$c29tZQ$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:20],
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.ReplaceAll(key, "/", "_"),
	}
	for _, s := range bad {
		_, err := parsePHC(s)
		if err == nil {
			t.Errorf("parsePHC(%q) accepted", s)
			continue
		}
		if strings.Contains(err.Error(), salt) || strings.Contains(err.Error(), key[:10]) {
			t.Errorf("parse error %q quotes the hash", err)
		}
	}
}
