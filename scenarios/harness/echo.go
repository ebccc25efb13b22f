package harness

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// EchoServer serves HTTP on a free loopback port: every request gets name
// back, and /stream gets a line every 100 ms for 3 s, flushed one by one,
// so a scenario can tell which process answered and whether a path buffers.
func EchoServer(name string) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("echo server %q: %w", name, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		for i := range 30 {
			if _, err := fmt.Fprintf(w, "%s tick %d\n", name, i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), func() { _ = srv.Close() }, nil
}
