package principal

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/rest"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// logBuffer collects a logger's lines; handlers write from several
// goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// A stream that never says Hello is closed after the timeout, and the log
// says whose it was.
func TestStreamWithoutHelloIsClosedAndLogged(t *testing.T) {
	p, _ := testPrincipal(t)
	var logs logBuffer
	p.log = logs.logger()
	p.opts.HelloTimeout = 200 * time.Millisecond
	s := newAgentStream(t, "spoke-9")
	done := make(chan error, 1)
	go func() { done <- p.serve(s) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a stream without hello ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a stream that never said hello is still served")
	}
	if l := logs.String(); !strings.Contains(l, "agent=spoke-9") || !strings.Contains(l, "10.0.0.7") {
		t.Errorf("the log does not name the agent and its address:\n%s", l)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.sessions) != 0 {
		t.Errorf("a stream without hello left a session: %v", p.sessions)
	}
}

// refusingHub is a hub address where nothing listens: every request is
// refused, as while the hub's API server restarts.
func refusingHub(t *testing.T) *rest.Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &rest.Config{Host: "http://" + addr, Timeout: 2 * time.Second}
}

// A principal started while the hub is down keeps trying instead of
// exiting.
func TestPrincipalStaysUpWhileTheHubRefuses(t *testing.T) {
	var logs logBuffer
	p, err := New(Options{Hub: refusingHub(t), TLS: &tls.Config{}, Listen: "127.0.0.1:0", Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("the principal exited while the hub was down: %v", err)
	case <-time.After(2 * time.Second):
	}
	if l := logs.String(); !strings.Contains(l, "hub not ready; retrying") {
		t.Errorf("no retry logged:\n%s", l)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after its context ended: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// Once the hub answers, the principal goes on to serve agents.
func TestPrincipalServesOnceTheHubAnswers(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.ApplicationsResource: "ApplicationList"})
	p, err := newPrincipal(Options{Logger: slog.New(slog.DiscardHandler), Namespace: "tether-system", TLS: &tls.Config{}, Listen: "127.0.0.1:0"}, dyn)
	if err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	p.prepareHub = func(context.Context) error {
		if attempts.Add(1) == 1 {
			return errors.New("connection refused")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-p.ready:
	case err := <-done:
		t.Fatalf("the principal exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the principal does not serve after the hub came back")
	}
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatalf("agents cannot reach the principal: %v", err)
	}
	c.Close()
	if n := attempts.Load(); n != 2 {
		t.Errorf("hub prepared %d times, want 2 (one refused, one answered)", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
