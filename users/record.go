package users

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// RoleHostAdministrator is the role Authenticate requires (docs/protocol.md §3,
// Initialize check 1).
const RoleHostAdministrator = "HostAdministrator"

// Limits of what a user record holds.
const (
	// MaxLogonIDLength is the longest LogonID, in characters.
	MaxLogonIDLength = 128
	// MinPasswordLength is the shortest password Add and SetPassword
	// accept, in characters.
	MinPasswordLength = 8
	// MaxPasswordBytes is the longest password accepted, in bytes.
	MaxPasswordBytes = 1024
	// MaxRoles is the most roles one user holds.
	MaxRoles = 32
	// MaxRoleLength is the longest role name, in characters.
	MaxRoleLength = 64

	recordVersion = 1
	maxRecordSize = 16 << 10
)

// User is a user as List and Get show it. It holds no password hash, so
// nothing that prints or logs a User can leak one.
type User struct {
	LogonID string
	// Roles, sorted, without duplicates.
	Roles []string
	// Created and Updated are in UTC; Updated changes with the password.
	Created, Updated time.Time
}

// HasRole reports whether u holds role (names are case-sensitive).
func (u User) HasRole(role string) bool { return slices.Contains(u.Roles, role) }

// String is "LogonID [role ...]".
func (u User) String() string { return u.LogonID + " [" + strings.Join(u.Roles, " ") + "]" }

// secret is a password hash: it prints as a placeholder however it is
// formatted, so a record that reaches a log by mistake shows no hash.
type secret string

const redacted = "[REDACTED]"

func (secret) String() string   { return redacted }
func (secret) GoString() string { return redacted }

// MarshalText keeps the hash out of JSON and other text encodings too.
func (secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// record is a user as stored in the bucket: a msgpack map with the version
// key "v", like every message of the bus (docs/bus.md).
//
//	v   uint       record version, 1
//	id  string     LogonID
//	h   string     argon2id PHC string
//	r   [string]   roles
//	c   timestamp  created
//	u   timestamp  updated
type record struct {
	LogonID          string
	Hash             secret
	Roles            []string
	Created, Updated time.Time
}

func (r *record) user() User {
	return User{LogonID: r.LogonID, Roles: slices.Clone(r.Roles), Created: r.Created, Updated: r.Updated}
}

// key is the bucket key of a LogonID: its unpadded base64url form, since a
// LogonID may hold characters ('@', '*', '>', ...) that a NATS key may not.
func key(logonID string) string { return base64.RawURLEncoding.EncodeToString([]byte(logonID)) }

// checkLogonID enforces 1 to MaxLogonIDLength printable characters, none of
// them a space. The message never quotes the value: a password typed into
// the LogonID field must not reach a log.
func checkLogonID(id string) error {
	n := utf8.RuneCountInString(id)
	switch {
	case n == 0:
		return fmt.Errorf("%w: empty", ErrInvalidLogonID)
	case n > MaxLogonIDLength:
		return fmt.Errorf("%w: %d characters, want at most %d", ErrInvalidLogonID, n, MaxLogonIDLength)
	case !printable(id):
		return fmt.Errorf("%w: want 1 to %d printable characters without spaces", ErrInvalidLogonID, MaxLogonIDLength)
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// checkPassword enforces the password policy of Add and SetPassword. The
// message does not even give the password's length.
func checkPassword(pw string) error {
	if utf8.RuneCountInString(pw) < MinPasswordLength {
		return fmt.Errorf("%w: too short, want at least %d characters", ErrWeakPassword, MinPasswordLength)
	}
	if len(pw) > MaxPasswordBytes {
		return fmt.Errorf("%w: too long, want at most %d bytes", ErrWeakPassword, MaxPasswordBytes)
	}
	return nil
}

// normalizeRoles checks role names and returns them sorted without
// duplicates.
func normalizeRoles(roles []string) ([]string, error) {
	out := slices.Clone(roles)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxRoles {
		return nil, fmt.Errorf("%w: %d roles, want at most %d", ErrInvalidRole, len(out), MaxRoles)
	}
	for _, r := range out {
		if n := utf8.RuneCountInString(r); n == 0 || n > MaxRoleLength || !printable(r) || strings.Contains(r, ",") {
			return nil, fmt.Errorf("%w: %q: want 1 to %d printable characters without spaces or commas", ErrInvalidRole, r, MaxRoleLength)
		}
	}
	return out, nil
}

// encodeRecord returns the msgpack form of r.
func encodeRecord(r *record) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	err := errors.Join(
		enc.EncodeMapLen(6),
		enc.EncodeString("v"), enc.EncodeUint(recordVersion),
		enc.EncodeString("id"), enc.EncodeString(r.LogonID),
		enc.EncodeString("h"), enc.EncodeString(string(r.Hash)),
		enc.EncodeString("r"), enc.EncodeArrayLen(len(r.Roles)),
	)
	for _, role := range r.Roles {
		err = errors.Join(err, enc.EncodeString(role))
	}
	err = errors.Join(err,
		enc.EncodeString("c"), enc.EncodeTime(r.Created.UTC()),
		enc.EncodeString("u"), enc.EncodeTime(r.Updated.UTC()),
	)
	if err != nil {
		return nil, fmt.Errorf("encode user record: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeRecord decodes and checks a stored record: its version, its
// LogonID, its roles and the form of its hash. It ignores keys it does not
// know and refuses everything malformed with an error wrapping ErrCorrupt
// that quotes nothing of the data.
func decodeRecord(data []byte) (record, error) {
	var r record
	if len(data) > maxRecordSize {
		return r, fmt.Errorf("%w: %d bytes, want at most %d", ErrCorrupt, len(data), maxRecordSize)
	}
	rd := bytes.NewReader(data)
	d := msgpack.NewDecoder(rd)
	n, err := d.DecodeMapLen()
	if err != nil || n < 0 || n > len(data) {
		return r, fmt.Errorf("%w: not a map", ErrCorrupt)
	}
	version, seen := -1, map[string]bool{}
	for range n {
		k, err := d.DecodeString()
		if err != nil {
			return r, fmt.Errorf("%w: key: %v", ErrCorrupt, err)
		}
		name := "an unknown key"
		if knownKeys[k] {
			name = strconv.Quote(k)
		}
		if seen[k] {
			return r, fmt.Errorf("%w: %s twice", ErrCorrupt, name)
		}
		seen[k] = true
		if err := decodeField(d, k, &r, &version); err != nil {
			return r, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
		}
	}
	if rd.Len() != 0 {
		return r, fmt.Errorf("%w: %d bytes after the record", ErrCorrupt, rd.Len())
	}
	if version != recordVersion {
		return r, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, version, recordVersion)
	}
	return r, r.check()
}

var knownKeys = map[string]bool{"v": true, "id": true, "h": true, "r": true, "c": true, "u": true}

func decodeField(d *msgpack.Decoder, k string, r *record, version *int) error {
	var err error
	switch k {
	case "v":
		*version, err = d.DecodeInt()
	case "id":
		r.LogonID, err = d.DecodeString()
	case "h":
		var h string
		h, err = d.DecodeString()
		r.Hash = secret(h)
	case "r":
		var n int
		if n, err = d.DecodeArrayLen(); err != nil {
			return err
		}
		if n < 0 || n > MaxRoles {
			return fmt.Errorf("%d roles, want 0 to %d", n, MaxRoles)
		}
		r.Roles = make([]string, n)
		for i := range r.Roles {
			if r.Roles[i], err = d.DecodeString(); err != nil {
				return err
			}
		}
	case "c":
		r.Created, err = d.DecodeTime()
		r.Created = r.Created.UTC()
	case "u":
		r.Updated, err = d.DecodeTime()
		r.Updated = r.Updated.UTC()
	default:
		err = d.Skip()
	}
	return err
}

// check validates a decoded record.
func (r *record) check() error {
	if err := checkLogonID(r.LogonID); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if _, err := parsePHC(string(r.Hash)); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	roles, err := normalizeRoles(r.Roles)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if !slices.Equal(roles, r.Roles) {
		return fmt.Errorf("%w: roles not sorted or repeated", ErrCorrupt)
	}
	return nil
}
