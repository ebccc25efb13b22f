package sample

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Info is what the sample server says about where it runs.
type Info struct {
	// Cluster is the cluster's name (a spoke's overlay sets ClusterEnv in
	// web-config); empty when the variant does not say, as in plain/.
	Cluster string
	// Pod and Node come from the downward API (POD_NAME, NODE_NAME).
	Pod, Node string
}

// InfoFromEnv reads Info from the variables the sample's Deployment sets.
func InfoFromEnv(getenv func(string) string) Info {
	return Info{Cluster: getenv(ClusterEnv), Pod: getenv("POD_NAME"), Node: getenv("NODE_NAME")}
}

// Answer is the body of GET /: one line naming who answered.
func (i Info) Answer() string {
	where := "an unnamed cluster"
	if i.Cluster != "" {
		where = "cluster " + i.Cluster
	}
	var detail []string
	if i.Pod != "" {
		detail = append(detail, "pod "+i.Pod)
	}
	if i.Node != "" {
		detail = append(detail, "node "+i.Node)
	}
	s := "hello from tether's sample on " + where
	if len(detail) > 0 {
		s += " (" + strings.Join(detail, ", ") + ")"
	}
	return s + "\n"
}

// Handler is the sample's web server: GET / answers Info.Answer, GET
// /healthz answers "ok" (the readiness probe), anything else is 404 (405
// for another method).
func Handler(info Info) http.Handler {
	answer := info.Answer()
	mux := http.NewServeMux()
	text := func(w http.ResponseWriter, body string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(body))
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { text(w, answer) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { text(w, "ok\n") })
	return mux
}

// Serve serves Handler(info) on addr until ctx ends, then shuts down,
// giving requests in flight five seconds. ready, when not nil, is called
// with the bound address once the listener is open (addr may say port 0).
func Serve(ctx context.Context, addr string, info Info, logger *slog.Logger, ready func(bound string)) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sample server: %w", err)
	}
	srv := &http.Server{Handler: Handler(info), ReadHeaderTimeout: 5 * time.Second}
	logger.Info("sample server listening", "addr", l.Addr().String(), "cluster", info.Cluster, "pod", info.Pod, "node", info.Node)
	if ready != nil {
		ready(l.Addr().String())
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("sample server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
