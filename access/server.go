package access

import (
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// ServerUsers returns the users a NATS server needs for c, each with its
// role's permissions. With hash, passwords are bcrypt hashes (for a
// configuration file); without, they are given as they are (an embedded
// server's memory).
func (c Credentials) ServerUsers(hash bool) ([]*server.User, error) {
	var users []*server.User
	for _, r := range c.Sorted() {
		if r == Route {
			continue // no client: the cluster's routes use it
		}
		s := c[r]
		pass := s.Password
		if hash {
			h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
			if err != nil {
				return nil, fmt.Errorf("hash the password of %s: %w", r, err)
			}
			pass = string(h)
		}
		p := Of(r)
		users = append(users, &server.User{Username: s.User, Password: pass, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: p.Publish},
			Subscribe: &server.SubjectPermission{Allow: p.Subscribe},
		}})
	}
	return users, nil
}
