package access

import (
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Options are the options of a connection as role with secret s: its user
// (none when s has none) and the role's inbox prefix, the only replies its
// permissions let it read. The handshake may take 10 s (nats.go's default
// is 2 s): a busy server checking a bcrypt hash can take longer than that.
func Options(role Role, s Secret) []nats.Option {
	opts := []nats.Option{nats.CustomInboxPrefix(role.Inbox()), nats.Timeout(10 * time.Second)}
	if s.User != "" {
		opts = append(opts, nats.UserInfo(s.User, s.Password))
	}
	return opts
}

// Redact hides the passwords of a NATS URL, or of a comma-separated list
// of them, for a log line or an error.
func Redact(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		parts[i] = redactOne(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// redactOne hides the password of one URL, even of one that does not
// parse (whatever stands between "//" and the last "@" is hidden).
func redactOne(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if u.User == nil {
			return raw
		}
		return u.Redacted()
	}
	start := strings.Index(raw, "//")
	at := strings.LastIndex(raw, "@")
	if start < 0 || at < start {
		return raw
	}
	return raw[:start+2] + "***" + raw[at:]
}
