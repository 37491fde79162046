package main

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sisbridge/sisbridge/bridge"
)

// gatewayUsers opens the user store when authentication is on.
func gatewayUsers(ctx context.Context, js jetstream.JetStream, auth bool) (bridge.Authenticator, error) {
	if !auth {
		return nil, nil
	}
	return nil, errors.New("--auth: the user store is not available in this build")
}
