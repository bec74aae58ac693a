package app

import (
	"io"
	"log/slog"

	"github.com/switchyard/switchyard/internal/auth"
)

// buildAuth builds the authenticator cfg describes and returns it with the function that stops
// its background work (JWKS refreshes); call that once the servers have stopped.
func buildAuth(cfg auth.Config, log *slog.Logger) (auth.Authenticator, func(), error) {
	a, err := auth.New(cfg, auth.WithLogger(log))
	if err != nil {
		return nil, nil, err
	}
	stop := func() {}
	if c, ok := a.(io.Closer); ok {
		stop = func() { _ = c.Close() }
	}
	return a, stop, nil
}
