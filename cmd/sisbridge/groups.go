package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sisbridge/sisbridge/bridge"
)

// runGroups prints a gateway's directory (GET /v1/groups): a table of
// tenants and groups, or the gateway's JSON with --json.
func runGroups(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("groups", flag.ContinueOnError)
	fs.SetOutput(stderr)
	gateway := fs.String("gateway", "http://127.0.0.1:8080", "the gateway's base URL")
	logon := fs.String("logon-id", "", "LogonID of a host administrator, when the gateway asks for one (the password from $SIS_PASSWORD)")
	asJSON := fs.Bool("json", false, "print the gateway's JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("groups: unexpected argument %q", fs.Arg(0))
	}
	tenants, raw, err := fetchGroups(ctx, strings.TrimSuffix(*gateway, "/")+"/v1/groups", *logon, os.Getenv("SIS_PASSWORD"))
	if err != nil {
		return fmt.Errorf("groups: %w", err)
	}
	if *asJSON {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	return printGroups(stdout, tenants)
}

// fetchGroups gets the directory, with Basic credentials when a LogonID
// is given.
func fetchGroups(ctx context.Context, url, logon, password string) ([]bridge.Tenant, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	if logon != "" {
		req.SetBasicAuth(logon, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	switch {
	case err != nil:
		return nil, nil, err
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, nil, errors.New("the gateway asks for a host administrator: give --logon-id, and the password in $SIS_PASSWORD")
	case resp.StatusCode != http.StatusOK:
		return nil, nil, fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, strings.TrimSpace(string(raw[:min(len(raw), 300)])))
	}
	var dir struct {
		Tenants []bridge.Tenant `json:"Tenants"`
	}
	if err := json.Unmarshal(raw, &dir); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", url, err)
	}
	return dir.Tenants, raw, nil
}

// printGroups writes the directory as a table, a group a line.
func printGroups(w io.Writer, tenants []bridge.Tenant) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tTENANT NAME\tGROUP\tGROUP NAME")
	n := 0
	for _, t := range tenants {
		for _, g := range t.ServiceGroups {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.TenantID, t.Name, g.ServiceGroupID, g.ServiceGroupName)
			n++
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d groups in %d tenants\n", n, len(tenants))
	return err
}
