package access

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Secret is one role's NATS user name and password.
type Secret struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// Credentials are the secrets of roles, by role.
type Credentials map[Role]Secret

// Generate returns fresh credentials for roles: the user is the role's
// name, the password 32 random bytes (base64url).
func Generate(roles ...Role) (Credentials, error) {
	c := Credentials{}
	for _, r := range roles {
		if err := r.Check(); err != nil {
			return nil, err
		}
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("generate a password: %w", err)
		}
		c[r] = Secret{User: string(r), Password: base64.RawURLEncoding.EncodeToString(b[:])}
	}
	return c, nil
}

// Sorted returns the roles of c in a stable order.
func (c Credentials) Sorted() []Role {
	roles := make([]Role, 0, len(c))
	for r := range c {
		roles = append(roles, r)
	}
	sort.Slice(roles, func(i, j int) bool { return roles[i] < roles[j] })
	return roles
}

// Save writes c to path, readable by its owner only (0600).
func (c Credentials) Save(path string) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	return nil
}

// Load reads credentials saved by Save. A file others may read is
// refused: it holds passwords.
func Load(path string) (Credentials, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load credentials: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("load credentials: %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load credentials: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load credentials %s: %w", path, err)
	}
	return c, nil
}

// Parse reads credentials as Save writes them; every role must be one
// and every secret complete.
func Parse(data []byte) (Credentials, error) {
	var c Credentials
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	for r, s := range c {
		if err := r.Check(); err != nil {
			return nil, err
		}
		if s.User == "" || s.Password == "" {
			return nil, fmt.Errorf("role %s: user and password required", r)
		}
	}
	return c, nil
}

// LoadOrCreate loads the credentials in dir/name, or creates them for
// roles when the file does not exist; roles missing from an existing file
// are added to it.
func LoadOrCreate(dir, name string, roles ...Role) (Credentials, error) {
	path := filepath.Join(dir, name)
	c, err := Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		c, err = Credentials{}, nil
	}
	if err != nil {
		return nil, err
	}
	var missing []Role
	for _, r := range roles {
		if _, ok := c[r]; !ok {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return c, nil
	}
	fresh, err := Generate(missing...)
	if err != nil {
		return nil, err
	}
	for r, s := range fresh {
		c[r] = s
	}
	return c, c.Save(path)
}
