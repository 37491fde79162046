package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/subjects"
)

// fast are hash parameters that keep the tests quick; the defaults are
// exercised by TestDefaultParameters and the benchmarks.
var fast = Config{Memory: 64, Iterations: 1}

const (
	pwAlice = "correct horse battery"
	pwBob   = "bob's secret pw"
	pwCarol = "carol-password-1"
)

// bucket starts a server and opens the users bucket on a fresh connection.
func bucket(tb testing.TB) (*server.Server, jetstream.KeyValue) {
	tb.Helper()
	s := natstest.Server(tb)
	return s, openKV(tb, s)
}

// openKV opens the users bucket of s on a new connection.
func openKV(tb testing.TB, s *server.Server) jetstream.KeyValue {
	tb.Helper()
	_, js := natstest.Connect(tb, s)
	kv, err := OpenBucket(context.Background(), js, subjects.Config{Memory: true})
	if err != nil {
		tb.Fatal(err)
	}
	return kv
}

func newStore(tb testing.TB, kv jetstream.KeyValue, cfg Config) *Store {
	tb.Helper()
	st, err := New(kv, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// seeded returns a store holding alice (host administrator), bob (no role)
// and carol@example.com (host administrator and another role).
func seeded(t *testing.T) (*Store, *server.Server) {
	t.Helper()
	srv, kv := bucket(t)
	st := newStore(t, kv, fast)
	ctx := context.Background()
	for _, u := range []struct {
		id, pw string
		roles  []string
	}{
		{"alice", pwAlice, []string{RoleHostAdministrator}},
		{"bob", pwBob, nil},
		{"carol@example.com", pwCarol, []string{"Auditor", RoleHostAdministrator}},
	} {
		if err := st.Add(ctx, u.id, u.pw, u.roles); err != nil {
			t.Fatalf("add %s: %v", u.id, err)
		}
	}
	return st, srv
}

// noSecrets fails if err's message shows any of the secrets.
func noSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q shows a secret", err)
		}
	}
}

// storedHash reads the hash of a user straight from the bucket.
func storedHash(t *testing.T, st *Store, logonID string) string {
	t.Helper()
	r, _, err := st.load(context.Background(), logonID)
	if err != nil {
		t.Fatal(err)
	}
	return string(r.Hash)
}

func TestAuthenticate(t *testing.T) {
	st, _ := seeded(t)
	hashes := []string{storedHash(t, st, "alice"), storedHash(t, st, "bob"), storedHash(t, st, "carol@example.com")}
	tests := []struct {
		name, id, pw string
		reason       string // "" for success
	}{
		{"host administrator", "alice", pwAlice, ""},
		{"with an at sign and more roles", "carol@example.com", pwCarol, ""},
		{"wrong password", "alice", pwBob, "wrong password"},
		{"password of another user", "carol@example.com", pwAlice, "wrong password"},
		{"empty password", "alice", "", "wrong password"},
		{"password with a newline", "alice", pwAlice + "\n", "wrong password"},
		{"unknown user", "mallory", pwAlice, "unknown user"},
		{"case matters", "Alice", pwAlice, "unknown user"},
		{"no role", "bob", pwBob, "lacks the HostAdministrator role"},
		{"no role, wrong password", "bob", pwAlice, "wrong password"},
		{"malformed logon ID", "al ice", pwAlice, "malformed logon ID"},
		{"password typed as logon ID", pwAlice, pwAlice, "malformed logon ID"},
		{"empty logon ID", "", pwAlice, "malformed logon ID"},
		{"password too long", "alice", strings.Repeat("x", MaxPasswordBytes+1), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.Authenticate(context.Background(), tt.id, tt.pw)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("Authenticate = %v, want ErrInvalidCredentials", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Authenticate = %q, want it to say %q", err, tt.reason)
			}
			noSecrets(t, err, append(hashes, pwAlice, pwBob, pwCarol)...)
		})
	}
}

func TestDefaultParameters(t *testing.T) {
	_, kv := bucket(t)
	st := newStore(t, kv, Config{})
	ctx := context.Background()
	if err := st.Add(ctx, "alice", pwAlice, []string{RoleHostAdministrator}); err != nil {
		t.Fatal(err)
	}
	h := storedHash(t, st, "alice")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q: want OWASP's argon2id m=19456,t=2,p=1", h)
	}
	p, err := parsePHC(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.salt) != 16 || len(p.key) != 32 {
		t.Errorf("salt %d, key %d bytes: want 16, 32", len(p.salt), len(p.key))
	}
	if err := st.Authenticate(ctx, "alice", pwAlice); err != nil {
		t.Fatal(err)
	}
}

func TestAddDuplicate(t *testing.T) {
	st, _ := seeded(t)
	ctx := context.Background()
	err := st.Add(ctx, "alice", "another password", []string{RoleHostAdministrator})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Add = %v, want ErrExists", err)
	}
	noSecrets(t, err, "another password")
	// The first password still holds.
	if err := st.Authenticate(ctx, "alice", pwAlice); err != nil {
		t.Fatal(err)
	}
	if err := st.Authenticate(ctx, "alice", "another password"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("Authenticate with the refused password = %v", err)
	}
}

func TestAddRejects(t *testing.T) {
	_, kv := bucket(t)
	st := newStore(t, kv, fast)
	tests := []struct {
		name, id, pw string
		roles        []string
		want         error
	}{
		{"empty password", "dave", "", nil, ErrWeakPassword},
		{"seven characters", "dave", "1234567", nil, ErrWeakPassword},
		{"seven characters, multibyte", "dave", "ééééééé", nil, ErrWeakPassword},
		{"password too long", "dave", strings.Repeat("p", MaxPasswordBytes+1), nil, ErrWeakPassword},
		{"empty logon ID", "", "long enough", nil, ErrInvalidLogonID},
		{"space", "da ve", "long enough", nil, ErrInvalidLogonID},
		{"tab", "da\tve", "long enough", nil, ErrInvalidLogonID},
		{"no-break space", "da\u00a0ve", "long enough", nil, ErrInvalidLogonID},
		{"control character", "dave\x00", "long enough", nil, ErrInvalidLogonID},
		{"invalid UTF-8", "dave\xff", "long enough", nil, ErrInvalidLogonID},
		{"129 characters", strings.Repeat("d", 129), "long enough", nil, ErrInvalidLogonID},
		{"empty role", "dave", "long enough", []string{""}, ErrInvalidRole},
		{"role with a space", "dave", "long enough", []string{"Host Administrator"}, ErrInvalidRole},
		{"role with a comma", "dave", "long enough", []string{"a,b"}, ErrInvalidRole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.Add(context.Background(), tt.id, tt.pw, tt.roles)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Add = %v, want %v", err, tt.want)
			}
			noSecrets(t, err, tt.pw)
		})
	}
	if users, err := st.List(context.Background()); err != nil || len(users) != 0 {
		t.Fatalf("List = %v, %v: want nothing stored", users, err)
	}
	// The limits themselves are fine.
	ok := []struct{ id, pw string }{
		{strings.Repeat("d", 128), "12345678"},
		{strings.Repeat("é", 128), strings.Repeat("p", MaxPasswordBytes)},
		{"ünïcödé", "ééééééé1"},
	}
	for _, u := range ok {
		if err := st.Add(context.Background(), u.id, u.pw, []string{RoleHostAdministrator}); err != nil {
			t.Errorf("Add(%q): %v", u.id, err)
		}
		if err := st.Authenticate(context.Background(), u.id, u.pw); err != nil {
			t.Errorf("Authenticate(%q): %v", u.id, err)
		}
	}
}

func TestLogonIDCharacters(t *testing.T) {
	_, kv := bucket(t)
	st := newStore(t, kv, fast)
	ctx := context.Background()
	ids := []string{"alice@example.com", "a.b.c", ".leading.dot.", "a*b>c", "$JS.API", "x/y=z", "a+b", "ユーザー", "-dash", "_"}
	for _, id := range ids {
		if err := st.Add(ctx, id, "password-of-"+id, []string{RoleHostAdministrator}); err != nil {
			t.Fatalf("Add(%q): %v", id, err)
		}
	}
	for _, id := range ids {
		if err := st.Authenticate(ctx, id, "password-of-"+id); err != nil {
			t.Errorf("Authenticate(%q): %v", id, err)
		}
		if u, err := st.Get(ctx, id); err != nil || u.LogonID != id {
			t.Errorf("Get(%q) = %v, %v", id, u, err)
		}
	}
	if err := st.Remove(ctx, "a.b.c"); err != nil {
		t.Fatal(err)
	}
	if err := st.Authenticate(ctx, "a.b.c", "password-of-a.b.c"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("Authenticate after Remove = %v", err)
	}
	users, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != len(ids)-1 {
		t.Fatalf("List: %d users, want %d", len(users), len(ids)-1)
	}
}

func TestSetPassword(t *testing.T) {
	st, _ := seeded(t)
	ctx := context.Background()
	if err := st.Authenticate(ctx, "alice", pwAlice); err != nil { // cached now
		t.Fatal(err)
	}
	before, err := st.Get(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	const newPW = "a brand new password"
	if err := st.SetPassword(ctx, "alice", newPW); err != nil {
		t.Fatal(err)
	}
	if err := st.Authenticate(ctx, "alice", pwAlice); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("old password after SetPassword: %v", err)
	}
	if err := st.Authenticate(ctx, "alice", newPW); err != nil {
		t.Errorf("new password: %v", err)
	}
	after, err := st.Get(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !after.Created.Equal(before.Created) || !after.Updated.After(before.Updated) || !after.HasRole(RoleHostAdministrator) {
		t.Errorf("after SetPassword: %+v, before %+v", after, before)
	}

	tests := []struct {
		name, id, pw string
		want         error
	}{
		{"unknown user", "mallory", "long enough", ErrNotFound},
		{"weak", "alice", "s3cr3t", ErrWeakPassword},
		{"bad logon ID", "a b", "long enough", ErrInvalidLogonID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.SetPassword(ctx, tt.id, tt.pw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("SetPassword = %v, want %v", err, tt.want)
			}
			noSecrets(t, err, tt.pw)
		})
	}
	if err := st.Authenticate(ctx, "alice", newPW); err != nil {
		t.Errorf("refused SetPassword changed the password: %v", err)
	}
}

// TestChangedElsewhere: a password changed or a user removed through
// another Store, on another connection, takes effect on this Store's next
// Authenticate even though the old password is in its cache.
func TestChangedElsewhere(t *testing.T) {
	st, srv := seeded(t)
	other := newStore(t, openKV(t, srv), fast)
	ctx := context.Background()
	for range 3 {
		if err := st.Authenticate(ctx, "alice", pwAlice); err != nil {
			t.Fatal(err)
		}
	}
	if st.cache.size() == 0 {
		t.Fatal("the verification was not cached")
	}
	const newPW = "changed elsewhere"
	if err := other.SetPassword(ctx, "alice", newPW); err != nil {
		t.Fatal(err)
	}
	if err := st.Authenticate(ctx, "alice", pwAlice); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("old password after a change through another store = %v", err)
	}
	if err := st.Authenticate(ctx, "alice", newPW); err != nil {
		t.Fatalf("new password: %v", err)
	}

	// Changing back to the old password makes a new hash: the old entry
	// stays unreachable and the password verifies afresh.
	if err := other.SetPassword(ctx, "alice", pwAlice); err != nil {
		t.Fatal(err)
	}
	n := st.hashes.Load()
	if err := st.Authenticate(ctx, "alice", pwAlice); err != nil {
		t.Fatal(err)
	}
	if st.hashes.Load() != n+1 {
		t.Errorf("the password set back verified from the cache")
	}

	if err := st.Authenticate(ctx, "carol@example.com", pwCarol); err != nil {
		t.Fatal(err)
	}
	if err := other.Remove(ctx, "carol@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := st.Authenticate(ctx, "carol@example.com", pwCarol); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("removed user = %v", err)
	}
	// Added again with the same password: a new salt, so a new hash.
	if err := other.Add(ctx, "carol@example.com", pwCarol, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Authenticate(ctx, "carol@example.com", pwCarol); !errors.Is(err, ErrInvalidCredentials) || !strings.Contains(err.Error(), "role") {
		t.Fatalf("re-added without the role = %v", err)
	}
}

func TestRemove(t *testing.T) {
	st, _ := seeded(t)
	ctx := context.Background()
	if err := st.Authenticate(ctx, "alice", pwAlice); err != nil {
		t.Fatal(err)
	}
	if err := st.Remove(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if st.cache.size() != 0 {
		t.Errorf("cache holds %d entries after Remove", st.cache.size())
	}
	if err := st.Authenticate(ctx, "alice", pwAlice); !errors.Is(err, ErrInvalidCredentials) || !strings.Contains(err.Error(), "unknown user") {
		t.Fatalf("Authenticate after Remove = %v", err)
	}
	for _, id := range []string{"alice", "mallory"} {
		if err := st.Remove(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Remove(%q) = %v, want ErrNotFound", id, err)
		}
		if _, err := st.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
		if err := st.SetPassword(ctx, id, "long enough"); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetPassword(%q) = %v, want ErrNotFound", id, err)
		}
	}
	// The hash is gone from the bucket, not only hidden.
	if _, err := st.kv.Get(ctx, key("alice")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("bucket Get after Remove = %v", err)
	}
	if err := st.Add(ctx, "alice", "alice again!", []string{RoleHostAdministrator}); err != nil {
		t.Fatalf("Add after Remove: %v", err)
	}
	if err := st.Authenticate(ctx, "alice", "alice again!"); err != nil {
		t.Fatal(err)
	}
}

func TestList(t *testing.T) {
	st, _ := seeded(t)
	ctx := context.Background()
	if err := st.Add(ctx, "Zed", "zed password", []string{RoleHostAdministrator, RoleHostAdministrator, "B", "A"}); err != nil {
		t.Fatal(err)
	}
	users, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range users {
		ids = append(ids, u.LogonID)
		if u.Created.IsZero() || u.Created.Location() != time.UTC || !u.Updated.Equal(u.Created) {
			t.Errorf("%s: created %v updated %v", u.LogonID, u.Created, u.Updated)
		}
	}
	if got, want := strings.Join(ids, " "), "Zed alice bob carol@example.com"; got != want {
		t.Errorf("List order %q, want %q", got, want)
	}
	if got := fmt.Sprint(users[0].Roles); got != "[A B HostAdministrator]" {
		t.Errorf("Zed's roles %s: want sorted, without repeats", got)
	}
	// No form of a listed user shows a hash or a password.
	js, _ := json.Marshal(users)
	shown := fmt.Sprintf("%v %+v %#v %s %s", users, users, users, users, js)
	for _, id := range []string{"alice", "bob", "carol@example.com", "Zed"} {
		h := storedHash(t, st, id)
		p, _ := parsePHC(h)
		for _, part := range []string{h, b64.EncodeToString(p.key), b64.EncodeToString(p.salt), "argon2"} {
			if strings.Contains(shown, part) {
				t.Fatalf("listed users show %q:\n%s", part, shown)
			}
		}
	}
	for _, pw := range []string{pwAlice, pwBob, pwCarol, "zed password"} {
		if strings.Contains(shown, pw) {
			t.Fatalf("listed users show a password")
		}
	}

	_, kv := bucket(t)
	if users, err := newStore(t, kv, fast).List(ctx); err != nil || len(users) != 0 {
		t.Fatalf("List of an empty bucket = %v, %v", users, err)
	}
}

func TestRecordNeverShowsHash(t *testing.T) {
	h := fast.WithDefaults().newHash(pwAlice)
	r := record{LogonID: "alice", Hash: secret(h), Roles: []string{RoleHostAdministrator}}
	js, _ := json.Marshal(r)
	for _, shown := range []string{fmt.Sprint(r), fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r), fmt.Sprintf("%s", &r), fmt.Sprintf("%v", r.Hash), string(js)} {
		if strings.Contains(shown, "argon2id") || !strings.Contains(shown, redacted) {
			t.Errorf("record shows as %s", shown)
		}
	}
}

func TestCorruptRecord(t *testing.T) {
	st, _ := seeded(t)
	ctx := context.Background()
	// A record that does not decode, and a valid record under another
	// LogonID's key.
	if _, err := st.kv.Put(ctx, key("alice"), []byte("not msgpack")); err != nil {
		t.Fatal(err)
	}
	bob, err := st.kv.Get(ctx, key("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.kv.Put(ctx, key("eve"), bob.Value()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"alice", "eve"} {
		err := st.Authenticate(ctx, id, pwBob)
		if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("Authenticate(%s) on a corrupt record = %v, want ErrCorrupt", id, err)
		}
	}
	users, err := st.List(ctx)
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("List error %v, want ErrCorrupt", err)
	}
	if len(users) != 2 {
		t.Errorf("List returned %v, want bob and carol", users)
	}
	if err := st.SetPassword(ctx, "alice", "long enough"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("SetPassword on a corrupt record = %v", err)
	}
	for _, id := range []string{"alice", "eve"} {
		if err := st.Remove(ctx, id); err != nil {
			t.Errorf("Remove(%s) of a corrupt record: %v", id, err)
		}
	}
	if _, err := st.List(ctx); err != nil {
		t.Errorf("List after removing the corrupt records: %v", err)
	}
}

func TestAuthenticateConcurrent(t *testing.T) {
	st, _ := seeded(t)
	ctx := context.Background()
	const clients = 200
	var wg sync.WaitGroup
	errs := make(chan error, clients+1)
	for i := range clients {
		wg.Go(func() {
			var err error
			switch i % 4 {
			case 0, 1: // most clients share one set of credentials
				err = st.Authenticate(ctx, "alice", pwAlice)
			case 2:
				if err = st.Authenticate(ctx, "alice", "wrong password"); errors.Is(err, ErrInvalidCredentials) {
					err = nil
				}
			case 3:
				err = st.Authenticate(ctx, "carol@example.com", pwCarol)
			}
			errs <- err
		})
	}
	// A password change racing the logins.
	wg.Go(func() { errs <- st.SetPassword(ctx, "bob", "bob's next password") })
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// 100 logins of alice and 50 of carol, all at once: one hash each
	// (coalesced while in flight, then cached), plus one per wrong-password
	// attempt at most.
	if n := st.hashes.Load(); n > 2+clients/4 {
		t.Errorf("%d hashes computed for %d logins", n, clients)
	}
}

func TestConcurrentLoginsShareOneHash(t *testing.T) {
	_, kv := bucket(t)
	// Real parameters, so the hash is slow enough for the clients to pile up.
	st := newStore(t, kv, Config{})
	ctx := context.Background()
	if err := st.Add(ctx, "alice", pwAlice, []string{RoleHostAdministrator}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 500 {
		wg.Go(func() {
			if err := st.Authenticate(ctx, "alice", pwAlice); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := st.hashes.Load(); n != 1 {
		t.Errorf("500 concurrent logins computed %d hashes, want 1", n)
	}
}

func TestCacheExpires(t *testing.T) {
	_, kv := bucket(t)
	st := newStore(t, kv, Config{Memory: 64, Iterations: 1, CacheTTL: time.Minute})
	now := time.Now()
	st.cache.now = func() time.Time { return now }
	ctx := context.Background()
	if err := st.Add(ctx, "alice", pwAlice, []string{RoleHostAdministrator}); err != nil {
		t.Fatal(err)
	}
	login := func(want int64) {
		t.Helper()
		if err := st.Authenticate(ctx, "alice", pwAlice); err != nil {
			t.Fatal(err)
		}
		if got := st.hashes.Load(); got != want {
			t.Fatalf("%d hashes so far, want %d", got, want)
		}
	}
	login(1)
	login(1)
	now = now.Add(59 * time.Second)
	login(1)
	now = now.Add(time.Second)
	login(2)
	login(2)
	// Failures are never cached.
	for range 3 {
		if err := st.Authenticate(ctx, "alice", "wrong password"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatal(err)
		}
	}
	login(5)
}

func TestCacheOff(t *testing.T) {
	_, kv := bucket(t)
	st := newStore(t, kv, Config{Memory: 64, Iterations: 1, CacheTTL: -1})
	ctx := context.Background()
	if err := st.Add(ctx, "alice", pwAlice, []string{RoleHostAdministrator}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := st.Authenticate(ctx, "alice", pwAlice); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.hashes.Load(); n != 3 {
		t.Errorf("%d hashes for 3 logins without a cache", n)
	}
}

func TestCacheBounded(t *testing.T) {
	now := time.Now()
	c := newVerifyCache(time.Minute, 10, func() time.Time { return now })
	var fps []fingerprint
	for i := range 1000 {
		fp := c.fingerprint(fmt.Sprint("user", i%7), fmt.Sprint("pw", i), "hash")
		fps = append(fps, fp)
		c.add(fp, fmt.Sprint("user", i%7))
		if c.size() > 10 || len(c.order)-c.head > 20 {
			t.Fatalf("after %d adds: %d entries, %d in order", i+1, c.size(), len(c.order)-c.head)
		}
		now = now.Add(time.Millisecond)
	}
	for i, fp := range fps {
		if got, want := c.hit(fp), i >= len(fps)-10; got != want {
			t.Errorf("entry %d: hit %v, want %v (the newest 10 stay)", i, got, want)
		}
	}
	c.forget("user3")
	for i := len(fps) - 10; i < len(fps); i++ {
		if c.hit(fps[i]) == (i%7 == 3) {
			t.Errorf("entry %d after forget(user3): hit %v", i, c.hit(fps[i]))
		}
	}
	// Fingerprints depend on every field and on the process key.
	a := c.fingerprint("ab", "c", "h")
	for _, b := range []fingerprint{c.fingerprint("a", "bc", "h"), c.fingerprint("ab", "c", "h2"), newVerifyCache(time.Minute, 1, time.Now).fingerprint("ab", "c", "h")} {
		if a == b {
			t.Error("two verifications share a fingerprint")
		}
	}
}

func TestAuthenticateContext(t *testing.T) {
	st, _ := seeded(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := st.Authenticate(ctx, "alice", pwAlice)
	if err == nil || errors.Is(err, ErrInvalidCredentials) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Authenticate with a cancelled context = %v", err)
	}
	// A login waiting for a hashing slot gives up with its context.
	st.hashing = make(chan struct{}, 1)
	st.hashing <- struct{}{}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := st.Authenticate(ctx, "alice", pwAlice); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Authenticate while every slot is busy = %v", err)
	}
}

func TestStoreUnreachable(t *testing.T) {
	srv, kv := bucket(t)
	st := newStore(t, kv, fast)
	srv.Shutdown()
	srv.WaitForShutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := st.Authenticate(ctx, "alice", pwAlice)
	if err == nil || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("Authenticate without NATS = %v, want an error other than ErrInvalidCredentials", err)
	}
}

func TestOpenBucket(t *testing.T) {
	srv := natstest.Server(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	// An operator's bucket is left as it is.
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: subjects.BucketUsers, History: 3, Description: "mine"}); err != nil {
		t.Fatal(err)
	}
	kv, err := OpenBucket(ctx, js, subjects.Config{})
	if err != nil {
		t.Fatal(err)
	}
	status, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status.History() != 3 {
		t.Errorf("history %d: OpenBucket changed an existing bucket", status.History())
	}
	// A missing bucket is created as the bus contract says, and nothing else.
	if err := js.DeleteKeyValue(ctx, subjects.BucketUsers); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBucket(ctx, js, subjects.Config{Replicas: 2}); err == nil {
		t.Error("OpenBucket took a bad bus config")
	}
	kv, err = OpenBucket(ctx, js, subjects.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	status, err = kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := subjects.Config{Memory: true}.WithDefaults().UsersBucket()
	if status.History() != int64(want.History) || status.Bucket() != subjects.BucketUsers {
		t.Errorf("created bucket %s history %d", status.Bucket(), status.History())
	}
	if _, err := js.Stream(ctx, subjects.StreamEvents); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("OpenBucket touched the events stream: %v", err)
	}
}

func TestConfig(t *testing.T) {
	d := Config{}.WithDefaults()
	if d.Memory != 19456 || d.Iterations != 2 || d.Parallelism != 1 || d.SaltLength != 16 || d.KeyLength != 32 ||
		d.CacheTTL != 5*time.Minute || d.CacheSize != 4096 || d.MaxConcurrentHashes < 1 {
		t.Errorf("defaults %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	bad := Config{Memory: 4, Iterations: 100, Parallelism: 1, SaltLength: 4, KeyLength: 8, CacheTTL: time.Minute, CacheSize: -1, MaxConcurrentHashes: -1}
	err := bad.Validate()
	for _, want := range []string{"memory", "iterations", "salt", "key length", "cache size", "concurrent"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v: want it to name %s", err, want)
		}
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Error("New took a nil bucket")
	}
	_, kv := bucket(t)
	if _, err := New(kv, Config{Iterations: 1000}); err == nil {
		t.Error("New took a bad config")
	}
}
