package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/access"
	"github.com/sisbridge/sisbridge/subjects"
	"github.com/sisbridge/sisbridge/users"
	"golang.org/x/term"
)

const usersUsage = `usage: sisbridge users COMMAND [flags] [LOGONID]

commands:
  add LOGONID      add a user (--role, default HostAdministrator)
  passwd LOGONID   change a user's password
  remove LOGONID   remove a user
  list             list the users: LogonID, roles, created

A password is never a flag: add and passwd prompt for it without echo on a
terminal, or read the first line of standard input:

  printf '%s\n' "$PW" | sisbridge users add alice

Every command takes --nats URL (default nats://127.0.0.1:4222) and
--timeout; "sisbridge users COMMAND -h" lists them.
`

// runUsers is "sisbridge users": the gateway's users in the SIS_USERS bucket.
func runUsers(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		io.WriteString(stderr, usersUsage)
		return errors.New("users: no command given")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "add", "passwd", "remove", "list":
	case "-h", "-help", "--help", "help":
		io.WriteString(stderr, usersUsage)
		return flag.ErrHelp
	default:
		io.WriteString(stderr, usersUsage)
		return fmt.Errorf("users: unknown command %q", cmd)
	}
	fs := flag.NewFlagSet("sisbridge users "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		nf       natsFlags
		timeout  = fs.Duration("timeout", 30*time.Second, "give up after this long")
		replicas = fs.Int("replicas", 1, "JetStream replicas of the SIS_USERS bucket, if it has to be created: 1, 3 or 5")
		role     *string
	)
	nf.register(fs, access.Admin)
	if cmd == "add" {
		role = fs.String("role", users.RoleHostAdministrator, `the user's roles, comma-separated; "" for none`)
	}
	fs.Usage = func() {
		arg := " LOGONID"
		if cmd == "list" {
			arg = ""
		}
		fmt.Fprintf(stderr, "usage: sisbridge users %s [flags]%s\n\nflags:\n", cmd, arg)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	want := 1
	if cmd == "list" {
		want = 0
	}
	if len(pos) != want {
		fs.Usage()
		if want == 0 {
			return fmt.Errorf("users %s: unexpected argument %q", cmd, pos[0])
		}
		return fmt.Errorf("users %s: want exactly one LogonID, got %d arguments", cmd, len(pos))
	}

	// Read the password before connecting: a prompt should not wait on NATS.
	var logonID, password string
	if want == 1 {
		logonID = pos[0]
		if cmd != "remove" {
			if password, err = readPassword(stdin, stderr, logonID); err != nil {
				return fmt.Errorf("users %s: %w", cmd, err)
			}
		}
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	st, closeStore, err := openUsers(ctx, &nf, *replicas)
	if err != nil {
		return fmt.Errorf("users %s: %w", cmd, err)
	}
	defer closeStore()

	switch cmd {
	case "add":
		roles := splitRoles(*role)
		if err := st.Add(ctx, logonID, password, roles); err != nil {
			return fmt.Errorf("users add: %w", explain(err, logonID))
		}
		fmt.Fprintf(stdout, "added user %s with roles %s\n", logonID, showRoles(roles))
	case "passwd":
		if err := st.SetPassword(ctx, logonID, password); err != nil {
			return fmt.Errorf("users passwd: %w", explain(err, logonID))
		}
		fmt.Fprintf(stdout, "changed the password of %s\n", logonID)
	case "remove":
		if err := st.Remove(ctx, logonID); err != nil {
			return fmt.Errorf("users remove: %w", explain(err, logonID))
		}
		fmt.Fprintf(stdout, "removed user %s\n", logonID)
	case "list":
		list, err := st.List(ctx)
		if list == nil && err != nil {
			return fmt.Errorf("users list: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LOGONID\tROLES\tCREATED")
		for _, u := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.LogonID, showRoles(u.Roles), u.Created.UTC().Format(time.RFC3339))
		}
		if ferr := tw.Flush(); ferr != nil {
			return ferr
		}
		if err != nil { // corrupt records, listed after the good ones
			return fmt.Errorf("users list: %w", err)
		}
	}
	return nil
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("add alice --role X" as well as "add --role X
// alice"); "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// openUsers connects to NATS and opens the user store; the returned
// function closes the connection.
func openUsers(ctx context.Context, nf *natsFlags, replicas int) (*users.Store, func(), error) {
	opts, err := nf.connectOptions(nats.Name("sisbridge-users"), nats.Timeout(5*time.Second)) // checks the URLs
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(nf.url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach NATS at %s (is the server running? --nats sets the URL): %w", access.Redact(nf.url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	kv, err := users.OpenBucket(ctx, js, subjects.Config{Replicas: replicas})
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("NATS at %s: %w", access.Redact(nf.url), err)
	}
	st, err := users.New(kv, users.Config{})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return st, nc.Close, nil
}

// readPassword reads a password: with a prompt and without echo, twice,
// when stdin is a terminal; otherwise the first line of stdin, without its
// line ending.
func readPassword(stdin io.Reader, stderr io.Writer, logonID string) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		fmt.Fprintf(stderr, "Password for %s: ", logonID)
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(stderr, "Again: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(pw) != string(again) {
			return "", errors.New("the passwords differ")
		}
		return string(pw), nil
	}
	// One byte more than a line may hold, to tell a long line from a full one.
	r := bufio.NewReader(io.LimitReader(stdin, users.MaxPasswordBytes+3))
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	if errors.Is(err, io.EOF) && len(line) > users.MaxPasswordBytes+1 {
		return "", fmt.Errorf("%w: the first line of standard input is longer than %d bytes", users.ErrWeakPassword, users.MaxPasswordBytes)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New(`no password: give it on the first line of standard input (printf '%s\n' "$PW" | sisbridge users add NAME)`)
	}
	return line, nil
}

// explain turns the store's errors into what an operator should do.
func explain(err error, logonID string) error {
	switch {
	case errors.Is(err, users.ErrExists):
		return fmt.Errorf(`%w (to change the password: sisbridge users passwd %s)`, err, logonID)
	case errors.Is(err, users.ErrNotFound):
		return fmt.Errorf(`%w ("sisbridge users list" shows the users)`, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w (is JetStream enabled on the server? --timeout sets the limit)", err)
	}
	return err
}

func splitRoles(s string) []string {
	var roles []string
	for r := range strings.SplitSeq(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	return roles
}

func showRoles(roles []string) string {
	if len(roles) == 0 {
		return "-"
	}
	return strings.Join(roles, ",")
}
