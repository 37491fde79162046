package feed

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Defaults of Config.
const (
	// DefaultPath is the HTTP path the feed is posted to.
	DefaultPath = "/v1/feed"
	// DefaultMaxLine is the longest line accepted, in bytes: 1 MiB.
	DefaultMaxLine = 1 << 20
	// DefaultMaxBody is the largest HTTP request body accepted, in bytes: 64 MiB.
	DefaultMaxBody = 64 << 20
	// DefaultInputName names Input in messages when InputName is empty.
	DefaultInputName = "input"
)

// Config configures a Feed. The zero value of each field means its default;
// see docs/feed.md for the format and the HTTP answers.
type Config struct {
	// Listen is the TCP address the HTTP endpoint listens on, e.g. ":8470".
	// Default "": no HTTP endpoint (unless Listener is set).
	Listen string
	// Listener, when set, is used for the HTTP endpoint instead of Listen
	// (which is then ignored); Run closes it when it returns. Default nil.
	Listener net.Listener
	// Token is the bearer token every HTTP request must carry. Required when
	// Listen or Listener is set; compared in constant time and never logged.
	// Default "".
	Token string
	// Path is the HTTP path changes are posted to. Default "/v1/feed".
	Path string
	// Input, when set, is read line by line as a feed, e.g. os.Stdin or a
	// file the caller opened (and closes). Default nil: no reader input.
	Input io.Reader
	// InputName names Input in log messages, e.g. "stdin". Default "input".
	InputName string
	// MaxLine is the longest line accepted, in bytes, not counting the line
	// end. Default 1 MiB.
	MaxLine int
	// MaxBody is the largest HTTP request body accepted, in bytes. Default
	// 64 MiB.
	MaxBody int64
	// StartUp says whether Run reports the router link up (h.LinkUp(ctx,
	// nil)) as it starts; a link line changes the state later. nil means
	// true (the default); point it at false to wait for a link line.
	StartUp *bool
	// IdleTimeout, when positive, reports the link down ("feed idle") after
	// that long without any line, and up again before the next line is
	// applied. Default 0: off.
	IdleTimeout time.Duration
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.InputName == "" {
		c.InputName = DefaultInputName
	}
	if c.MaxLine == 0 {
		c.MaxLine = DefaultMaxLine
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.StartUp == nil {
		up := true
		c.StartUp = &up
	}
	return c
}

// Validate reports every problem of c, joined with errors.Join; nil when c
// is usable. Zero fields are taken as their defaults.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	httpOn := c.Listen != "" || c.Listener != nil
	if !httpOn && c.Input == nil {
		add("feed: nothing to read: set Listen, Listener or Input")
	}
	if c.Listen != "" && c.Listener == nil {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			add("feed: Listen %q: %v", c.Listen, err)
		}
	}
	if httpOn && c.Token == "" {
		add("feed: Token is required with an HTTP endpoint")
	}
	if c.Token != strings.TrimSpace(c.Token) {
		add("feed: Token has leading or trailing white space")
	}
	if c.Path != "" && !strings.HasPrefix(c.Path, "/") {
		add("feed: Path %q must start with /", c.Path)
	}
	if c.MaxLine < 0 {
		add("feed: MaxLine %d is negative", c.MaxLine)
	}
	if c.MaxBody < 0 {
		add("feed: MaxBody %d is negative", c.MaxBody)
	}
	if c.IdleTimeout < 0 {
		add("feed: IdleTimeout %v is negative", c.IdleTimeout)
	}
	return errors.Join(errs...)
}

// startUp reports the StartUp setting, nil meaning true.
func (c Config) startUp() bool { return c.StartUp == nil || *c.StartUp }
