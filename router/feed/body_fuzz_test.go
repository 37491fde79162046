package feed

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"
	"github.com/sisbridge/sisbridge/queue"
	"github.com/sisbridge/sisbridge/router"
	"github.com/sisbridge/sisbridge/subjects"
)

// countingHandler takes every report; it refuses changes of the group
// "refused", as an adapter refuses some.
type countingHandler struct{ calls int }

func (c *countingHandler) LinkUp(context.Context, *router.State) error { c.calls++; return nil }
func (c *countingHandler) LinkDown(context.Context, string)            { c.calls++ }
func (c *countingHandler) PutTenant(context.Context, subjects.Tenant) error {
	c.calls++
	return nil
}
func (c *countingHandler) PutGroup(context.Context, subjects.Group) error { c.calls++; return nil }
func (c *countingHandler) RemoveGroup(context.Context, string) error      { c.calls++; return nil }
func (c *countingHandler) Apply(_ context.Context, g string, _ queue.Change) error {
	c.calls++
	if g == "refused" {
		return errors.New("refused")
	}
	return nil
}
func (c *countingHandler) Sync(context.Context, string, []queue.Session) error { c.calls++; return nil }

// FuzzBody: any HTTP request body is answered, line by line: every line
// that is not blank is accepted or rejected (with its line number, in
// order, within the body), nothing panics, and a line longer than MaxLine
// is rejected, not applied.
func FuzzBody(f *testing.F) {
	const (
		tenant  = `{"op":"tenant","TenantID":"acme","Name":"Acme"}`
		group   = `{"op":"group","ServiceGroupID":"acme-sales","TenantID":"acme","ServiceGroupName":"Sales"}`
		enqueue = `{"op":"enqueue","ServiceGroupID":"acme-sales","CallID":"c1","MediaType":"Voice"}`
		refused = `{"op":"enqueue","ServiceGroupID":"refused","CallID":"c2","MediaType":"Chat"}`
		sync    = `{"op":"sync","ServiceGroupID":"acme-sales","Sessions":[{"CallID":"c7","MediaType":"Chat"}]}`
	)
	for _, b := range []string{tenant + "\n" + group + "\n" + enqueue + "\n", "\n\n\n", "not json\n{}\n", sync, "\r\n" + refused + "\r\n",
		enqueue + "\n" + string(bytes.Repeat([]byte("x"), 300)) + "\n" + enqueue} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fd, err := New(Config{Input: bytes.NewReader(nil), MaxLine: 256}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		h := &countingHandler{}
		a := fd.applyBody(context.Background(), h, body)
		lines := bytes.Count(body, []byte("\n")) + 1
		if a.Accepted+a.Rejected > lines || len(a.Errors) > a.Rejected {
			t.Fatalf("%d lines answered %+v", lines, a)
		}
		last := 0
		for _, e := range a.Errors {
			if e.Line <= last || e.Line > lines {
				t.Fatalf("error lines out of order or range: %+v", a.Errors)
			}
			last = e.Line
		}
	})
}
