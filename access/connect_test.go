package access

import "testing"

func TestRedact(t *testing.T) {
	for raw, want := range map[string]string{
		"nats://127.0.0.1:4222":                    "nats://127.0.0.1:4222",
		"nats://ann:s3cret@127.0.0.1:4222":         "nats://ann:xxxxx@127.0.0.1:4222",
		"nats://a:p1@h1:4222, nats://b:p2@h2:4222": "nats://a:xxxxx@h1:4222,nats://b:xxxxx@h2:4222",
		"nats://ann:s3c ret%zz@127.0.0.1:4222":     "nats://***@127.0.0.1:4222",
		"not a url":                                "not a url",
	} {
		if got := Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}
