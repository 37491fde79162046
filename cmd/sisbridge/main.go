// Command sisbridge runs SIS Bridge: one binary, one subcommand per role.
//
//	sisbridge run      everything in one process on an embedded NATS server
//	sisbridge router   the router adapter alone, on a NATS server of your own
//	sisbridge gateway  a gateway alone, on a NATS server of your own
//	sisbridge users    the gateway's users
//	sisbridge replay   record, play and inspect captures of router traffic
//
// Run "sisbridge COMMAND -h" for a command's flags.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		os.Exit(0) // told to stop while still starting: a clean stop
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sisbridge:", err)
		os.Exit(1)
	}
}

const usage = `usage: sisbridge COMMAND [flags]

commands:
  run      everything on one machine: embedded NATS, the router adapter on the
           simulator, a gateway and the wallboard (what "make run" starts)
  router   the router adapter alone: --nats URL --source sim|feed
  gateway  a gateway alone: --nats URL --listen ADDR
  users    add|remove|list|passwd the gateway's users (host administrators)
  replay   record|play|inspect captures of router traffic
  nats-config  the users, permissions and credentials of every role, for a
           NATS server or cluster of your own (docs/security.md)
  groups   a gateway's tenants and service groups, as a table (or --json)
  watch    groups live in the terminal (--group ID, --tenant T --name N,
           --tenant T --all), or their events as JSON lines (--json)
  healthcheck URL  exit 0 if URL answers 200 within 3 s (a container's health
           check: the image has no shell or curl)
  version  print the version

"sisbridge COMMAND -h" lists a command's flags.
`

// version may be set at build time with -ldflags "-X main.version=...";
// otherwise versionLine reads the build's module and VCS information.
var version = ""

// versionLine says which build this is: the version set at build time, or
// the main module's version with the VCS revision, its time and whether
// the tree had changes, and the Go version.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "sisbridge " + cmp.Or(version, "(no build information)")
	}
	v := cmp.Or(version, info.Main.Version)
	var rev, at, dirty string
	for _, kv := range info.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value[:min(12, len(kv.Value))]
		case "vcs.time":
			at = kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				dirty = ", with changes"
			}
		}
	}
	vcs := "no VCS information (built with -buildvcs=false or outside a checkout)"
	if rev != "" {
		vcs = "revision " + rev + " of " + at + dirty
	}
	return fmt.Sprintf("sisbridge %s, %s, %s", v, vcs, info.GoVersion)
}

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "run":
		return runAll(ctx, args[1:], stdin, stderr)
	case "router":
		return runRouter(ctx, args[1:], stdin, stderr)
	case "gateway":
		return runGateway(ctx, args[1:], stderr)
	case "users":
		return runUsers(ctx, args[1:], stdin, os.Stdout, stderr)
	case "replay":
		return runReplay(ctx, args[1:], stdin, os.Stdout, stderr)
	case "nats-config":
		return runNATSConfig(args[1:], os.Stdout, stderr)
	case "groups":
		return runGroups(ctx, args[1:], os.Stdout, stderr)
	case "watch":
		return runWatch(ctx, args[1:], os.Stdin, os.Stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args[1:])
	case "version":
		fmt.Fprintln(os.Stdout, versionLine())
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
