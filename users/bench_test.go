package users

import (
	"context"
	"testing"
)

// benchStore holds alice with the default (OWASP) hash parameters.
func benchStore(b *testing.B, cfg Config) *Store {
	b.Helper()
	_, kv := bucket(b)
	st := newStore(b, kv, cfg)
	if err := st.Add(context.Background(), "alice", pwAlice, []string{RoleHostAdministrator}); err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkAuthenticateCached: the same credentials again and again, what
// a reconnect storm looks like after the first login: a bucket read and an
// HMAC per login.
func BenchmarkAuthenticateCached(b *testing.B) {
	st := benchStore(b, Config{})
	ctx := context.Background()
	if err := st.Authenticate(ctx, "alice", pwAlice); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := st.Authenticate(ctx, "alice", pwAlice); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(st.hashes.Load()), "hashes")
}

// BenchmarkAuthenticateUncached: the cache off, so every login computes
// argon2id m=19 MiB, t=2, p=1.
func BenchmarkAuthenticateUncached(b *testing.B) {
	st := benchStore(b, Config{CacheTTL: -1})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := st.Authenticate(ctx, "alice", pwAlice); err != nil {
			b.Fatal(err)
		}
	}
}
