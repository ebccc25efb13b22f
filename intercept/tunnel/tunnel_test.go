package tunnel

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/yamux"

	"github.com/tether-dev/tether/cluster/netpipe/netpipetest"
)

func TestSessionDialAndIntercept(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	a, b := net.Pipe()
	type res struct {
		s   *yamux.Session
		err error
	}
	srvc := make(chan res, 1)
	go func() {
		s, name, err := Server(b, "secret", nil, log)
		if err == nil && name != "web-80" {
			err = fmt.Errorf("server saw intercept %q, want web-80", name)
		}
		srvc <- res{s, err}
	}()
	cli, err := Client(a, "secret", "web-80", log)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	r := <-srvc
	if r.err != nil {
		t.Fatal(r.err)
	}

	// An upstream the agent side dials for the workbench.
	upstream := netpipetest.Serve(t, func(c net.Conn) { netpipetest.ShoutAfterEOF(c) })
	go func() {
		sess := r.s
		for {
			st, err := sess.AcceptStream()
			if err != nil {
				return
			}
			go ServeDial(context.Background(), st, func(ctx context.Context, addr string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", addr)
			}, log)
		}
	}()
	c, err := Dial(context.Background(), cli, upstream)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("hello"))
	_ = c.Close() // a yamux stream's Close is a half-close
	got, _ := io.ReadAll(c)
	if string(got) != "HELLO" {
		t.Fatalf("got %q", got)
	}
	if _, err := Dial(context.Background(), cli, "127.0.0.1:1"); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
}

func TestBadToken(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	a, b := net.Pipe()
	go func() { _, _, _ = Server(b, "secret", nil, log) }()
	if _, err := Client(a, "wrong", "web-80", log); err == nil || !strings.Contains(err.Error(), "bad token") {
		t.Fatalf("err = %v", err)
	}
}

// A connection closed before any byte (a readiness probe) is io.EOF, which
// the agent logs at debug level; one cut inside the handshake line is not.
func TestServerTellsProbeFromCutHandshake(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		send string
		want error
	}{
		{"", io.EOF},
		{"TETHER sec", io.ErrUnexpectedEOF},
	} {
		a, b := net.Pipe()
		go func() {
			_, _ = io.WriteString(a, tc.send)
			a.Close()
		}()
		_, _, err := Server(b, "secret", nil, log)
		if err != tc.want {
			t.Errorf("after %q: err = %v, want %v", tc.send, err, tc.want)
		}
	}
}

func TestServerRefusesWhatReadyRefuses(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	a, b := net.Pipe()
	errc := make(chan error, 1)
	go func() {
		_, _, err := Server(b, "secret", func(name, _ string) error {
			return fmt.Errorf("no intercept %s", name)
		}, log)
		errc <- err
	}()
	if _, err := Client(a, "secret", "ghost", log); err == nil || !strings.Contains(err.Error(), "no intercept ghost") {
		t.Fatalf("client err = %v, want the agent's refusal", err)
	}
	if err := <-errc; err == nil {
		t.Fatal("server accepted a session its ready hook refused")
	}
}

func TestServerSeesTheHolder(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	a, b := net.Pipe()
	got := make(chan string, 1)
	go func() {
		s, _, err := Server(b, "secret", func(_, holder string) error {
			got <- holder
			return nil
		}, log)
		if err == nil {
			s.Close()
		}
	}()
	s, err := ClientAs(a, "secret", "web-80", "laptop one/42", log)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if h := <-got; h != "laptop one/42" {
		t.Fatalf("holder %q", h)
	}
}
