package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sisbridge/sisbridge/access"
)

// Files nats-config writes in its --out directory.
const (
	configCredentials = "sisbridge.json"      // the fixed roles' credentials
	configServer      = "sisbridge-auth.conf" // the server's authorization block
	readerCredentials = "reader-%s.json"      // one tenant reader's
)

// multiFlag is a flag given any number of times.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// natsConfigCmd is the nats-config command's flags.
type natsConfigCmd struct {
	out             string
	readers, rotate *multiFlag
}

// newNATSConfigCmd declares the nats-config command's flags.
func newNATSConfigCmd(stderr io.Writer) (*flag.FlagSet, *natsConfigCmd) {
	fs := flag.NewFlagSet("sisbridge nats-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &natsConfigCmd{readers: &multiFlag{}, rotate: &multiFlag{}}
	fs.StringVar(&c.out, "out", "", "directory to write the credentials and the server configuration to (required)")
	fs.Var(c.readers, "reader", "also make a downstream reader of this tenant's events (repeatable)")
	fs.Var(c.rotate, "rotate", "make a new password for this role: adapter, gateway, recorder, admin, route or reader-<tenant> (repeatable)")
	return fs, c
}

// runNATSConfig writes what an operator needs to run the bus on a NATS
// server or cluster of their own: the server's authorization block and
// the credentials of every role, a tenant reader's in a file of its own.
// Credentials already in --out are kept, unless --rotate names the role.
func runNATSConfig(args []string, stdout, stderr io.Writer) error {
	fs, c := newNATSConfigCmd(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	out, readers, rotate := &c.out, *c.readers, *c.rotate
	if *out == "" {
		fs.Usage()
		return errors.New("nats-config: --out DIR is required")
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return fmt.Errorf("nats-config: %w", err)
	}
	all, err := natsConfigCredentials(*out, readers, rotate)
	if err != nil {
		return fmt.Errorf("nats-config: %w", err)
	}
	if err := writeServerConfig(filepath.Join(*out, configServer), all); err != nil {
		return fmt.Errorf("nats-config: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (include it in the NATS server's configuration, then reload the server)\n", filepath.Join(*out, configServer))
	fmt.Fprintf(stdout, "wrote %s (mode 0600): give it to the router adapter, gateways, replay and users commands with --nats-credentials\n", filepath.Join(*out, configCredentials))
	for _, t := range readers {
		fmt.Fprintf(stdout, "wrote %s (mode 0600): the reader of tenant %s, user %s, consumer %s\n",
			filepath.Join(*out, fmt.Sprintf(readerCredentials, t)), t, access.TenantReader(t), access.ReaderConsumer(t))
	}
	return nil
}

// natsConfigCredentials loads or makes the fixed roles' credentials and
// each reader's, rotating those asked for, and saves them; it returns all
// of them together.
func natsConfigCredentials(dir string, readers, rotate []string) (access.Credentials, error) {
	for _, r := range rotate {
		if err := access.Role(r).Check(); err != nil {
			return nil, fmt.Errorf("--rotate: %w", err)
		}
	}
	all, err := credentialsIn(dir, configCredentials, rotate, append(access.Roles, access.Route)...)
	if err != nil {
		return nil, err
	}
	for _, t := range readers {
		role := access.TenantReader(t)
		if err := role.Check(); err != nil {
			return nil, fmt.Errorf("--reader: %w", err)
		}
		one, err := credentialsIn(dir, fmt.Sprintf(readerCredentials, t), rotate, role)
		if err != nil {
			return nil, err
		}
		all[role] = one[role]
	}
	return all, nil
}

// credentialsIn loads dir/name (or makes it) for roles, with the roles
// listed in rotate given new passwords.
func credentialsIn(dir, name string, rotate []string, roles ...access.Role) (access.Credentials, error) {
	c, err := access.LoadOrCreate(dir, name, roles...)
	if err != nil {
		return nil, err
	}
	changed := false
	for _, r := range rotate {
		if _, ok := c[access.Role(r)]; ok {
			fresh, err := access.Generate(access.Role(r))
			if err != nil {
				return nil, err
			}
			c[access.Role(r)], changed = fresh[access.Role(r)], true
		}
	}
	if changed {
		return c, c.Save(filepath.Join(dir, name))
	}
	return c, nil
}

func writeServerConfig(path string, c access.Credentials) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := c.WriteServerConfig(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
