package access

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteServerConfig writes the authorization block of a nats-server
// configuration for c: every role's user with a bcrypt hash of its
// password and its permissions. Include it in the server's configuration
// (`include sisbridge-auth.conf`); the clear passwords stay in the
// credentials files.
func (c Credentials) WriteServerConfig(w io.Writer) error {
	users, err := c.ServerUsers(true)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# SIS Bridge: one user per role, least privilege (docs/security.md).\n")
	b.WriteString("# Made by `sisbridge nats-config`; passwords are bcrypt hashes.\n")
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range users {
		fmt.Fprintf(&b, "    {\n      user: %s\n      password: %s\n      permissions: {\n", strconv.Quote(u.Username), strconv.Quote(u.Password))
		fmt.Fprintf(&b, "        publish: { allow: %s }\n", quoteList(u.Permissions.Publish.Allow))
		fmt.Fprintf(&b, "        subscribe: { allow: %s }\n", quoteList(u.Permissions.Subscribe.Allow))
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	_, err = io.WriteString(w, b.String())
	return err
}

func quoteList(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
