package fleet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tether-dev/tether/cluster"
)

// waitPrincipalService waits until a TLS handshake through the principal's
// Service address reaches the principal: the service proxy listens, the
// pod is Ready, its EndpointSlice is written and the proxy has seen it.
// Starting the agents earlier would only cost them a backoff.
func waitPrincipalService(ctx context.Context, wb *cluster.Workbench, addr string, spokes []cluster.Cluster, exited <-chan error, logs string) error {
	cfg, err := probeTLS(wb, spokes)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: cfg}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the principal's Service at %s does not reach the principal after 60s (%v); see %s", addr, err, logs)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the service proxy exited during start-up (%v); see %s", err, logs)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitHTTP(ctx context.Context, what, url string, exited <-chan error, logs string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("answered %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 60s (%v); see %s", what, err, logs)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("%s exited during start-up (%v); see %s", what, err, logs)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
	}
}
