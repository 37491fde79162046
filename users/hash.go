package users

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// A password hash is stored as a PHC string:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// salt and key in unpadded standard base64, the form of the reference
// implementation and of most other libraries, so a record can be checked
// with other tools.

// b64 is the PHC base64: standard alphabet, no padding, canonical only.
var b64 = base64.RawStdEncoding.Strict()

// phc is a parsed argon2id PHC string.
type phc struct {
	memory, iterations uint32
	parallelism        uint8
	salt, key          []byte
}

// errHash is what every parse failure wraps. Messages never quote the hash.
var errHash = errors.New("malformed argon2id hash")

// newHash hashes password with c's parameters and a fresh salt.
func (c Config) newHash(password string) string {
	salt := make([]byte, c.SaltLength)
	_, _ = rand.Read(salt) // never fails (crypto/rand crashes the program instead)
	h := phc{memory: c.Memory, iterations: c.Iterations, parallelism: c.Parallelism, salt: salt}
	h.key = h.derive(password, c.KeyLength)
	return h.String()
}

// String is the PHC form of h.
func (h phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.memory, h.iterations, h.parallelism, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

func (h phc) derive(password string, keyLen uint32) []byte {
	return argon2.IDKey([]byte(password), h.salt, h.iterations, h.memory, h.parallelism, keyLen)
}

// verify reports whether password derives h's key, comparing in constant
// time.
func (h phc) verify(password string) bool {
	return subtle.ConstantTimeCompare(h.derive(password, uint32(len(h.key))), h.key) == 1
}

// parsePHC parses an argon2id PHC string, refusing parameters outside the
// bounds of Config so that a damaged record cannot make a verification
// arbitrarily expensive.
func parsePHC(s string) (phc, error) {
	var h phc
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return h, fmt.Errorf("%w: want 5 fields", errHash)
	}
	if parts[1] != "argon2id" {
		return h, fmt.Errorf("%w: algorithm is not argon2id", errHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, fmt.Errorf("%w: version is not %d", errHash, argon2.Version)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return h, fmt.Errorf("%w: want parameters m, t, p", errHash)
	}
	m, err1 := param(params[0], "m", 1, maxMemory)
	t, err2 := param(params[1], "t", 1, maxIterations)
	p, err3 := param(params[2], "p", 1, 255)
	if err := errors.Join(err1, err2, err3); err != nil {
		return h, err
	}
	if m < 8*p {
		return h, fmt.Errorf("%w: m below 8 × p", errHash)
	}
	h.memory, h.iterations, h.parallelism = uint32(m), uint32(t), uint8(p)
	var err error
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < minSaltLength || len(h.salt) > maxSaltLength {
		return phc{}, fmt.Errorf("%w: salt is not %d to %d bytes of base64", errHash, minSaltLength, maxSaltLength)
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) < minKeyLength || len(h.key) > maxKeyLength {
		return phc{}, fmt.Errorf("%w: key is not %d to %d bytes of base64", errHash, minKeyLength, maxKeyLength)
	}
	return h, nil
}

// param parses "name=N" with lo <= N <= hi, decimal digits only.
func param(s, name string, lo, hi uint64) (uint64, error) {
	v, ok := strings.CutPrefix(s, name+"=")
	if !ok || v == "" || v[0] < '0' || v[0] > '9' || (len(v) > 1 && v[0] == '0') {
		return 0, fmt.Errorf("%w: parameter %s", errHash, name)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: parameter %s out of %d..%d", errHash, name, lo, hi)
	}
	return n, nil
}
