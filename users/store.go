// Package users keeps SIS Bridge's gateway users in the SIS_USERS
// key-value bucket and authenticates them: docs/protocol.md §3, Initialize
// check 1 ("the LogonID/Password pair is not a valid user with the host
// administrator role → InvalidUserFault").
//
// Passwords are stored as argon2id hashes in PHC form; see Config for the
// parameters and docs/users.md for the whole design. A Store is safe for
// concurrent use, and several Stores in several processes may share the
// bucket: every call reads the current record, and writes use the record's
// revision, so a change made anywhere takes effect everywhere at once.
package users

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/subjects"
)

// Store is the user directory over the SIS_USERS bucket.
type Store struct {
	kv      jetstream.KeyValue
	cfg     Config
	cache   *verifyCache
	flights flights
	hashing chan struct{} // semaphore of running argon2id hashes
	decoy   func() string // a hash to verify against for unknown users
	now     func() time.Time
	hashes  atomic.Int64 // argon2id verifications computed, for tests
}

// attempts bounds the optimistic-concurrency retries of a write that lost a
// race with another writer of the same user.
const attempts = 5

// New returns a Store over kv, the SIS_USERS bucket (see OpenBucket).
func New(kv jetstream.KeyValue, cfg Config) (*Store, error) {
	if kv == nil {
		return nil, errors.New("users: nil bucket")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("users config: %w", err)
	}
	s := &Store{
		kv:      kv,
		cfg:     cfg,
		cache:   newVerifyCache(cfg.CacheTTL, cfg.CacheSize, time.Now),
		hashing: make(chan struct{}, cfg.MaxConcurrentHashes),
		now:     func() time.Time { return time.Now().UTC() },
	}
	s.decoy = sync.OnceValue(func() string { return cfg.newHash(rand.Text()) })
	return s, nil
}

// OpenBucket returns the SIS_USERS bucket, creating it with bus's settings
// (subjects.Config.UsersBucket) if it does not exist yet. It leaves an
// existing bucket, and every other stream and bucket of the bus, as they
// are: unlike subjects.Ensure, it never rewrites the settings an operator
// gave the deployment.
func OpenBucket(ctx context.Context, js jetstream.JetStream, bus subjects.Config) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, subjects.BucketUsers)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		if err != nil {
			return nil, fmt.Errorf("open bucket %s: %w", subjects.BucketUsers, err)
		}
		return kv, nil
	}
	bus = bus.WithDefaults()
	if err := bus.Validate(); err != nil {
		return nil, fmt.Errorf("bus config: %w", err)
	}
	kv, err = js.CreateKeyValue(ctx, bus.UsersBucket())
	if errors.Is(err, jetstream.ErrBucketExists) { // created meanwhile, with other settings
		kv, err = js.KeyValue(ctx, subjects.BucketUsers)
	}
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", subjects.BucketUsers, err)
	}
	return kv, nil
}

// Add creates a user. It fails with ErrExists if the LogonID has one,
// ErrInvalidLogonID, ErrWeakPassword or ErrInvalidRole. roles may be empty:
// such a user exists but cannot log in to the gateway.
func (s *Store) Add(ctx context.Context, logonID, password string, roles []string) error {
	if err := checkLogonID(logonID); err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	roles, err := normalizeRoles(roles)
	if err != nil {
		return err
	}
	h, err := s.hash(ctx, password)
	if err != nil {
		return err
	}
	now := s.now()
	data, err := encodeRecord(&record{LogonID: logonID, Hash: secret(h), Roles: roles, Created: now, Updated: now})
	if err != nil {
		return err
	}
	if _, err := s.kv.Create(ctx, key(logonID), data); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("%w: %q", ErrExists, logonID)
		}
		return fmt.Errorf("add user %q: %w", logonID, err)
	}
	return nil
}

// SetPassword replaces a user's password: ErrNotFound if there is no such
// user, ErrWeakPassword if the new password breaks the policy. The new hash
// uses the Store's current parameters. From the moment it returns, the old
// password fails in every process sharing the bucket.
func (s *Store) SetPassword(ctx context.Context, logonID, password string) error {
	if err := checkLogonID(logonID); err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	h, err := s.hash(ctx, password)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		r, rev, err := s.load(ctx, logonID)
		if err != nil {
			return describe(err, logonID, "set password of")
		}
		r.Hash, r.Updated = secret(h), s.now()
		data, err := encodeRecord(&r)
		if err != nil {
			return err
		}
		_, err = s.kv.Update(ctx, key(logonID), data, rev)
		if err == nil {
			s.cache.forget(logonID)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) || attempt == attempts {
			return fmt.Errorf("set password of %q: %w", logonID, err)
		}
	}
}

// Remove deletes a user, ErrNotFound if there is none. The record is purged
// from the bucket, hash included. Remove works on a corrupt record too.
func (s *Store) Remove(ctx context.Context, logonID string) error {
	if err := checkLogonID(logonID); err != nil {
		return err
	}
	k := key(logonID)
	for attempt := 1; ; attempt++ {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%w: %q", ErrNotFound, logonID)
		}
		if err != nil {
			return fmt.Errorf("remove user %q: %w", logonID, err)
		}
		err = s.kv.Purge(ctx, k, jetstream.LastRevision(e.Revision()))
		if err == nil {
			s.cache.forget(logonID)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) || attempt == attempts {
			return fmt.Errorf("remove user %q: %w", logonID, err)
		}
	}
}

// Get returns one user: ErrNotFound if there is none.
func (s *Store) Get(ctx context.Context, logonID string) (User, error) {
	if err := checkLogonID(logonID); err != nil {
		return User{}, err
	}
	r, _, err := s.load(ctx, logonID)
	if err != nil {
		return User{}, describe(err, logonID, "get user")
	}
	return r.user(), nil
}

// List returns every user, sorted by LogonID. A record that does not decode
// is left out and named in the returned error (wrapping ErrCorrupt), next to
// the users that did decode.
func (s *Store) List(ctx context.Context) ([]User, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var (
		users []User
		errs  []error
	)
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list users: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("list users: watch ended early")
			}
			if e == nil { // every current record delivered
				slices.SortFunc(users, func(a, b User) int { return strings.Compare(a.LogonID, b.LogonID) })
				return users, errors.Join(errs...)
			}
			r, err := decodeRecord(e.Value())
			if err == nil && key(r.LogonID) != e.Key() {
				err = fmt.Errorf("%w: stored under the key of another LogonID", ErrCorrupt)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("key %s: %w", e.Key(), err))
				continue
			}
			users = append(users, r.user())
		}
	}
}

// Authenticate checks a LogonID/Password pair for the gateway's Initialize:
// nil if the user exists, the password is theirs and they hold the
// HostAdministrator role. Otherwise an error wrapping ErrInvalidCredentials
// whose message says which check failed (for the server log; tell the
// client only InvalidUserFault), or, when the pair could not be judged
// (bucket unreachable, ctx done, corrupt record), another error. Either
// way a non-nil error refuses the login.
//
// Every call reads the user's current record, and the verification cache
// is keyed on the hash in that record, so a password changed or a user
// removed by any process is refused at once. The password is checked
// before the role and an unknown user costs a full hash too, so neither
// the answer nor its timing tells an unknown user from a wrong password,
// nor a user without the role from one who has it, to anyone without the
// password.
func (s *Store) Authenticate(ctx context.Context, logonID, password string) error {
	if checkLogonID(logonID) != nil {
		return fmt.Errorf("%w: malformed logon ID", ErrInvalidCredentials)
	}
	if len(password) > MaxPasswordBytes {
		return fmt.Errorf("%w: password longer than %d bytes", ErrInvalidCredentials, MaxPasswordBytes)
	}
	r, _, err := s.load(ctx, logonID)
	if errors.Is(err, ErrNotFound) {
		_, _ = s.verify(ctx, logonID, password, s.decoy())
		return fmt.Errorf("%w: unknown user", ErrInvalidCredentials)
	}
	if err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	ok, err := s.verify(ctx, logonID, password, string(r.Hash))
	switch {
	case err != nil:
		return fmt.Errorf("authenticate: %w", err)
	case !ok:
		return fmt.Errorf("%w: wrong password", ErrInvalidCredentials)
	case !slices.Contains(r.Roles, RoleHostAdministrator):
		return fmt.Errorf("%w: user lacks the %s role", ErrInvalidCredentials, RoleHostAdministrator)
	}
	return nil
}

// describe puts the LogonID into an error of load: `user not found:
// "alice"`, or `what "alice": cause`.
func describe(err error, logonID, what string) error {
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %q", ErrNotFound, logonID)
	}
	return fmt.Errorf("%s %q: %w", what, logonID, err)
}

// load reads and decodes a user's current record.
func (s *Store) load(ctx context.Context, logonID string) (record, uint64, error) {
	e, err := s.kv.Get(ctx, key(logonID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, 0, ErrNotFound
	}
	if err != nil {
		return record{}, 0, fmt.Errorf("read user: %w", err)
	}
	r, err := decodeRecord(e.Value())
	if err == nil && r.LogonID != logonID {
		err = fmt.Errorf("%w: stored under the key of another LogonID", ErrCorrupt)
	}
	if err != nil {
		return record{}, 0, err
	}
	return r, e.Revision(), nil
}

// verify reports whether password matches storedHash: from the cache if
// this very pair verified lately, else by computing the hash, at most once
// at a time per pair and at most MaxConcurrentHashes at a time in all.
func (s *Store) verify(ctx context.Context, logonID, password, storedHash string) (bool, error) {
	h, err := parsePHC(storedHash)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	fp := s.cache.fingerprint(logonID, password, storedHash)
	if s.cache.hit(fp) {
		return true, nil
	}
	for {
		ok, err, shared := s.flights.do(ctx, fp, func() (bool, error) {
			if s.cache.hit(fp) { // a flight that just ended verified it
				return true, nil
			}
			if err := s.acquire(ctx); err != nil {
				return false, err
			}
			defer s.release()
			s.hashes.Add(1)
			ok := h.verify(password)
			if ok {
				s.cache.add(fp, logonID)
			}
			return ok, nil
		})
		// The run we waited for gave up on its caller's context, not ours:
		// run it again ourselves.
		if shared && err != nil && isContextErr(err) && ctx.Err() == nil {
			continue
		}
		return ok, err
	}
}

// hash makes a new PHC string for password, within the hashing bound.
func (s *Store) hash(ctx context.Context, password string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	return s.cfg.newHash(password), nil
}

func (s *Store) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) release() { <-s.hashing }
