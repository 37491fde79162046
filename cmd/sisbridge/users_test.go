package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/internal/natstest"
	"github.com/sisbridge/sisbridge/subjects"
	"github.com/sisbridge/sisbridge/users"
)

// The gateway's check is users.Store.Authenticate.
var _ bridge.Authenticator = (*users.Store)(nil)

// usersCLI runs "sisbridge users ARGS" with stdin.
func usersCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = runUsers(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

// authenticate checks a pair through a Store of its own connection, as the
// gateway would.
func authenticate(t *testing.T, srv *server.Server, logonID, password string) error {
	t.Helper()
	_, js := natstest.Connect(t, srv)
	kv, err := users.OpenBucket(context.Background(), js, subjects.Config{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := users.New(kv, users.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return st.Authenticate(context.Background(), logonID, password)
}

func TestUsersCLI(t *testing.T) {
	srv := natstest.Server(t)
	nats := "--nats=" + srv.ClientURL()
	secrets := []string{"s3cr3t", "alice's password", "bob's password", "carol's password", "alice's new password", "argon2"}
	steps := []struct {
		name    string
		stdin   string
		args    []string
		fail    bool   // the command fails
		wantErr error  // what the error wraps, if anything in particular
		want    string // in stdout on success, in the error otherwise
	}{
		{"add", "alice's password\n", []string{"add", nats, "alice"}, false, nil, "added user alice with roles HostAdministrator"},
		{"add without roles, flags after the LogonID", "bob's password\r\n", []string{"add", "bob", nats, "--role="}, false, nil, "added user bob with roles -"},
		{"add with two roles, no newline", "carol's password", []string{"add", nats, "--role", "Auditor, HostAdministrator", "carol@example.com"}, false, nil, "roles Auditor,HostAdministrator"},
		{"add again", "another password\n", []string{"add", nats, "alice"}, true, users.ErrExists, `user already exists: "alice" (to change the password: sisbridge users passwd alice)`},
		{"weak password", "s3cr3t\n", []string{"add", nats, "dave"}, true, users.ErrWeakPassword, "at least 8 characters"},
		{"bad LogonID", "long enough\n", []string{"add", nats, "da ve"}, true, users.ErrInvalidLogonID, "without spaces"},
		{"bad role", "long enough\n", []string{"add", nats, "--role", "Host Administrator", "dave"}, true, users.ErrInvalidRole, "invalid role"},
		{"no password", "", []string{"add", nats, "dave"}, true, nil, "no password"},
		{"empty first line", "\nlong enough\n", []string{"add", nats, "dave"}, true, nil, "no password"},
		{"password too long", strings.Repeat("p", 5000), []string{"add", nats, "dave"}, true, users.ErrWeakPassword, "longer than 1024"},
		{"list", "", []string{"list", nats}, false, nil, "LOGONID            ROLES                      CREATED\n" +
			"alice              HostAdministrator          20"},
		{"passwd", "alice's new password\n", []string{"passwd", nats, "alice"}, false, nil, "changed the password of alice"},
		{"passwd of nobody", "long enough\n", []string{"passwd", nats, "mallory"}, true, users.ErrNotFound, `user not found: "mallory"`},
		{"passwd weak", "s3cr3t\n", []string{"passwd", nats, "alice"}, true, users.ErrWeakPassword, "at least 8"},
		{"remove", "", []string{"remove", nats, "bob"}, false, nil, "removed user bob"},
		{"remove again", "", []string{"remove", nats, "bob"}, true, users.ErrNotFound, `user not found: "bob"`},
		{"LogonID after --", "", []string{"remove", nats, "--", "-x"}, true, users.ErrNotFound, `"-x"`},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			out, errOut, err := usersCLI(t, s.stdin, s.args...)
			shown := out + errOut
			if err != nil {
				shown += err.Error()
			}
			for _, secret := range secrets {
				if strings.Contains(shown, secret) {
					t.Errorf("output shows %q:\n%s", secret, shown)
				}
			}
			if !s.fail {
				if err != nil {
					t.Fatalf("error: %v", err)
				}
				if !strings.Contains(out, s.want) {
					t.Fatalf("stdout %q, want %q", out, s.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; stdout %q", out)
			}
			if s.wantErr != nil && !errors.Is(err, s.wantErr) {
				t.Errorf("error %v, want %v", err, s.wantErr)
			}
			if !strings.Contains(err.Error(), s.want) {
				t.Errorf("error %q, want it to say %q", err, s.want)
			}
		})
	}

	out, _, err := usersCLI(t, "", "list", nats)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "alice ") || !strings.HasPrefix(lines[2], "carol@example.com ") ||
		!strings.Contains(lines[2], "Auditor,HostAdministrator") {
		t.Errorf("list after removing bob:\n%s", out)
	}
	if err := authenticate(t, srv, "alice", "alice's password"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Errorf("old password after passwd: %v", err)
	}
	for id, pw := range map[string]string{"alice": "alice's new password", "carol@example.com": "carol's password"} {
		if err := authenticate(t, srv, id, pw); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	if err := authenticate(t, srv, "bob", "bob's password"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Errorf("removed bob: %v", err)
	}
}

func TestUsersCLIErrors(t *testing.T) {
	srv := natstest.Server(t)
	nats := "--nats=" + srv.ClientURL()
	tests := []struct {
		name  string
		args  []string
		want  string // in the error
		usage bool   // usage printed
	}{
		{"no command", nil, "no command given", true},
		{"unknown command", []string{"delete", "alice"}, `unknown command "delete"`, true},
		{"add without LogonID", []string{"add", nats}, "want exactly one LogonID, got 0", true},
		{"add with two", []string{"add", nats, "alice", "bob"}, "want exactly one LogonID, got 2", true},
		{"list with an argument", []string{"list", nats, "alice"}, `unexpected argument "alice"`, true},
		{"password as a flag", []string{"add", nats, "--password", "hunter22", "alice"}, "flag provided but not defined: -password", true},
		{"role on passwd", []string{"passwd", nats, "--role", "x", "alice"}, "flag provided but not defined: -role", true},
		{"NATS unreachable", []string{"list", "--nats", "nats://admin:s3cret@127.0.0.1:1"}, "cannot reach NATS at nats://admin:xxxxx@127.0.0.1:1", false},
		{"NATS unreachable, URL list", []string{"remove", "--nats", "nats://u:s3cret@127.0.0.1:1, nats://127.0.0.1:2", "alice"}, "nats://u:xxxxx@127.0.0.1:1,nats://127.0.0.1:2", false},
		{"malformed URL", []string{"list", "--nats", "nats://admin:s3cret@host name:4222"}, "URL 1 of 1 is malformed", false},
		{"bad replicas", []string{"list", nats, "--replicas", "2"}, "replicas 2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := usersCLI(t, "long enough\n", tt.args...)
			if err == nil {
				t.Fatalf("no error; stdout %q", out)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
			if strings.Contains(err.Error()+errOut+out, "s3cret") || strings.Contains(err.Error()+errOut, "hunter22") {
				t.Errorf("a secret shows: %v\n%s", err, errOut)
			}
			if tt.usage != strings.Contains(errOut, "usage:") {
				t.Errorf("usage printed %v, want %v:\n%s", !tt.usage, tt.usage, errOut)
			}
		})
	}
	for _, args := range [][]string{{"-h"}, {"help"}, {"add", "-h"}, {"list", "--help"}} {
		_, errOut, err := usersCLI(t, "", args...)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "usage: sisbridge users") {
			t.Errorf("%v: %v\n%s", args, err, errOut)
		}
	}
}
