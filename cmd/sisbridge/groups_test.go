package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/internal/stacktest"
)

type noSeats struct{}

func (noSeats) Acquire(context.Context, string) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}

type oneAdmin struct{}

func (oneAdmin) Authenticate(_ context.Context, logon, password string) error {
	if logon == "ann" && password == "pw" {
		return nil
	}
	return errors.New("no")
}

func TestGroupsCommand(t *testing.T) {
	e := stacktest.New(t)
	open := httptest.NewServer(e.Gateway(bridge.Config{}, noSeats{}, nil))
	t.Cleanup(open.Close)
	locked := httptest.NewServer(e.Gateway(bridge.Config{Auth: true}, noSeats{}, oneAdmin{}))
	t.Cleanup(locked.Close)
	ctx := context.Background()

	var out, errb bytes.Buffer
	if err := runGroups(ctx, []string{"--gateway", open.URL}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	for _, want := range []string{"TENANT", "GROUP NAME", "acme", "Acme", "acme-sales", "Sales", "globex-chat", "3 groups in 2 tenants"} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
	out.Reset()
	if err := runGroups(ctx, []string{"--gateway", open.URL, "--json"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var dir struct{ Tenants []bridge.Tenant }
	if err := json.Unmarshal(out.Bytes(), &dir); err != nil || len(dir.Tenants) != 2 {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}

	// a gateway that asks for a host administrator
	err := runGroups(ctx, []string{"--gateway", locked.URL}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "--logon-id") {
		t.Fatalf("without credentials: %v", err)
	}
	t.Setenv("SIS_PASSWORD", "pw")
	out.Reset()
	if err := runGroups(ctx, []string{"--gateway", locked.URL, "--logon-id", "ann"}, &out, &errb); err != nil || !strings.Contains(out.String(), "acme-support") {
		t.Fatalf("with credentials: %v\n%s", err, out.String())
	}
	if err := runGroups(ctx, []string{"--gateway", "http://127.0.0.1:1"}, &out, &errb); err == nil {
		t.Fatal("no error from a gateway that is not there")
	}
}
