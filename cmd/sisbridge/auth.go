package main

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/bridge"
	"github.com/sisbridge/sisbridge/subjects"
	"github.com/sisbridge/sisbridge/users"
)

// gatewayUsers opens the user store when authentication is on.
func gatewayUsers(ctx context.Context, js jetstream.JetStream, auth bool) (bridge.Authenticator, error) {
	if !auth {
		return nil, nil
	}
	kv, err := users.OpenBucket(ctx, js, subjects.Config{})
	if err != nil {
		return nil, err
	}
	return users.New(kv, users.Config{})
}
