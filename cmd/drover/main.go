// Command drover is the operator's tool and the control-plane server:
// `drover server` runs a server; every other command talks to a cluster
// through its HTTPS API with an operator certificate.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
