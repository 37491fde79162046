package users

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"sync"
	"time"
)

// fingerprint identifies one verification: HMAC-SHA256, under a key drawn
// at random when the Store is made and never stored, of the LogonID, the
// password and the stored hash. The cache keeps fingerprints, never
// passwords; without the key a fingerprint says nothing about the password.
type fingerprint [sha256.Size]byte

// verifyCache remembers verifications that succeeded. An entry states "this
// password matches this stored hash", which stays true for as long as that
// hash is the user's: a new password gives a new hash (fresh salt), so an
// entry made against the old one is never found again. Entries expire after
// the TTL; the oldest go first when the cache is full. Safe for concurrent
// use.
type verifyCache struct {
	macs sync.Pool // of hash.Hash: HMAC-SHA256 under the process key
	ttl  time.Duration
	max  int
	now  func() time.Time

	mu      sync.Mutex
	entries map[fingerprint]cacheEntry
	order   []orderEntry // insertion order, so oldest first: every entry has the same TTL
	head    int          // order[:head] are gone
}

type cacheEntry struct {
	expires time.Time
	logonID string // for forget
}

type orderEntry struct {
	fp      fingerprint
	expires time.Time
}

func newVerifyCache(ttl time.Duration, size int, now func() time.Time) *verifyCache {
	var k [32]byte
	_, _ = rand.Read(k[:])
	c := &verifyCache{ttl: ttl, max: size, now: now, entries: map[fingerprint]cacheEntry{}}
	c.macs.New = func() any { return hmac.New(sha256.New, k[:]) }
	return c
}

func (c *verifyCache) enabled() bool { return c.ttl > 0 }

// fingerprint of a verification. Each field is length-prefixed, so no two
// different triples give the same input.
func (c *verifyCache) fingerprint(logonID, password, storedHash string) fingerprint {
	m := c.macs.Get().(hash.Hash)
	defer c.macs.Put(m)
	m.Reset()
	var n [binary.MaxVarintLen64]byte
	for _, s := range [...]string{logonID, password, storedHash} {
		m.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		m.Write([]byte(s))
	}
	var fp fingerprint
	m.Sum(fp[:0])
	return fp
}

// hit reports whether fp verified successfully less than the TTL ago.
func (c *verifyCache) hit(fp fingerprint) bool {
	if !c.enabled() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[fp]
	if ok && !c.now().Before(e.expires) {
		delete(c.entries, fp)
		return false
	}
	return ok
}

// add remembers a successful verification.
func (c *verifyCache) add(fp fingerprint, logonID string) {
	if !c.enabled() {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Drop from the front what expired, and beyond that what no longer fits.
	for c.head < len(c.order) {
		o := c.order[c.head]
		expired := !now.Before(o.expires)
		if !expired && len(c.entries) < c.max && len(c.order)-c.head < 2*c.max {
			break
		}
		if e, ok := c.entries[o.fp]; ok && e.expires.Equal(o.expires) {
			delete(c.entries, o.fp)
		}
		c.order[c.head] = orderEntry{}
		c.head++
	}
	if c.head > len(c.order)/2 {
		c.order = append(c.order[:0], c.order[c.head:]...)
		c.head = 0
	}
	e := cacheEntry{expires: now.Add(c.ttl), logonID: logonID}
	c.entries[fp] = e
	c.order = append(c.order, orderEntry{fp: fp, expires: e.expires})
}

// forget drops every entry of one user: SetPassword and Remove call it, so
// that this process stops accepting the old password at once. (The stored
// hash in the fingerprint already guarantees it; this frees the memory.)
func (c *verifyCache) forget(logonID string) {
	if !c.enabled() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for fp, e := range c.entries {
		if e.logonID == logonID {
			delete(c.entries, fp)
		}
	}
}

// size is the number of live entries, for tests.
func (c *verifyCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// flights runs one verification per fingerprint at a time: when a thousand
// clients reconnect at once with the same credentials, the first computes
// the hash and the rest wait for its answer instead of each computing it.
type flights struct {
	mu sync.Mutex
	m  map[fingerprint]*flight
}

type flight struct {
	done chan struct{}
	ok   bool
	err  error
}

// do runs fn for fp, or waits for the run already in progress. shared
// reports that the answer came from another caller's run.
func (f *flights) do(ctx context.Context, fp fingerprint, fn func() (bool, error)) (ok bool, err error, shared bool) {
	f.mu.Lock()
	if fl, found := f.m[fp]; found {
		f.mu.Unlock()
		select {
		case <-fl.done:
			return fl.ok, fl.err, true
		case <-ctx.Done():
			return false, ctx.Err(), false
		}
	}
	if f.m == nil {
		f.m = map[fingerprint]*flight{}
	}
	fl := &flight{done: make(chan struct{})}
	f.m[fp] = fl
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.m, fp)
		f.mu.Unlock()
		close(fl.done)
	}()
	fl.ok, fl.err = fn()
	return fl.ok, fl.err, false
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
