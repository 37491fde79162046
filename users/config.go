package users

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Config tunes a Store. The zero value, after WithDefaults, is the
// recommended setting.
//
// The hash defaults are OWASP's recommended argon2id configuration
// (Password Storage Cheat Sheet): m = 19 MiB, t = 2, p = 1, with a 16-byte
// salt and a 32-byte key. They apply to hashes made from now on; a stored
// hash is verified with the parameters written in it, so changing them never
// locks anyone out (a user's hash picks them up at the next password change).
type Config struct {
	// Memory is argon2id's memory cost m in KiB. Default 19456 (19 MiB).
	Memory uint32
	// Iterations is argon2id's time cost t. Default 2.
	Iterations uint32
	// Parallelism is argon2id's lanes p. Default 1.
	Parallelism uint8
	// SaltLength is the length of the random salt in bytes. Default 16.
	SaltLength uint32
	// KeyLength is the length of the derived key in bytes. Default 32.
	KeyLength uint32

	// CacheTTL is how long a successful verification is remembered, so that
	// many clients logging in with the same credentials pay for one argon2id
	// hash, not one each. An entry never outlives the stored hash it was
	// made against (see Store.Authenticate). Default 5 min; negative turns
	// the cache off.
	CacheTTL time.Duration
	// CacheSize bounds the number of remembered verifications; the oldest
	// goes first. Default 4096.
	CacheSize int
	// MaxConcurrentHashes bounds how many argon2id hashes run at once, and so
	// the memory they take (MaxConcurrentHashes × Memory). Logins beyond it
	// wait their turn. Default GOMAXPROCS.
	MaxConcurrentHashes int
}

// Bounds of the hash parameters, for Config and for hashes read from the
// bucket: a damaged or hostile record must not make a verification take
// gigabytes or minutes.
const (
	maxMemory     = 2 << 20 // KiB: 2 GiB, RFC 9106's first recommendation
	maxIterations = 64
	minSaltLength = 8
	maxSaltLength = 64
	minKeyLength  = 16
	maxKeyLength  = 64
)

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Memory == 0 {
		c.Memory = 19 * 1024
	}
	if c.Iterations == 0 {
		c.Iterations = 2
	}
	if c.Parallelism == 0 {
		c.Parallelism = 1
	}
	if c.SaltLength == 0 {
		c.SaltLength = 16
	}
	if c.KeyLength == 0 {
		c.KeyLength = 32
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = 5 * time.Minute
	}
	if c.CacheSize == 0 {
		c.CacheSize = 4096
	}
	if c.MaxConcurrentHashes == 0 {
		c.MaxConcurrentHashes = runtime.GOMAXPROCS(0)
	}
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Parallelism == 0 {
		errs = append(errs, errors.New("parallelism 0: want at least 1"))
	}
	if c.Memory < 8*uint32(c.Parallelism) || c.Memory > maxMemory {
		errs = append(errs, fmt.Errorf("memory %d KiB: want 8 × parallelism (%d) to %d", c.Memory, 8*uint32(c.Parallelism), maxMemory))
	}
	if c.Iterations < 1 || c.Iterations > maxIterations {
		errs = append(errs, fmt.Errorf("iterations %d: want 1 to %d", c.Iterations, maxIterations))
	}
	if c.SaltLength < minSaltLength || c.SaltLength > maxSaltLength {
		errs = append(errs, fmt.Errorf("salt length %d: want %d to %d bytes", c.SaltLength, minSaltLength, maxSaltLength))
	}
	if c.KeyLength < minKeyLength || c.KeyLength > maxKeyLength {
		errs = append(errs, fmt.Errorf("key length %d: want %d to %d bytes", c.KeyLength, minKeyLength, maxKeyLength))
	}
	if c.CacheTTL > 0 && c.CacheSize < 1 {
		errs = append(errs, fmt.Errorf("cache size %d: want at least 1 while the cache is on", c.CacheSize))
	}
	if c.MaxConcurrentHashes < 1 {
		errs = append(errs, fmt.Errorf("max concurrent hashes %d: want at least 1", c.MaxConcurrentHashes))
	}
	return errors.Join(errs...)
}
