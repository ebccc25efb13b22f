package tunnel

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/tether-dev/tether/cluster/netpipe"
)

const maxLine = 1024

// config is yamux's defaults with a keepalive short enough that a dead
// peer is noticed well inside the intercept's 15 s fail-open budget.
func config(log *slog.Logger) *yamux.Config {
	c := yamux.DefaultConfig()
	c.KeepAliveInterval = 3 * time.Second
	c.ConnectionWriteTimeout = 10 * time.Second
	c.StreamOpenTimeout = 10 * time.Second
	c.LogOutput = nil
	c.Logger = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	return c
}

// Client authenticates on conn with token as the workbench of intercept
// name (one agent serves every intercept of a Service, each over its own
// session) and returns the workbench's end of the session.
func Client(conn net.Conn, token, name string, log *slog.Logger) (*yamux.Session, error) {
	return ClientAs(conn, token, name, "", log)
}

// ClientAs is Client presenting holder, the holder of the intercept's
// Lease: the agent refuses a session for an intercept whose Lease names
// another holder.
func ClientAs(conn net.Conn, token, name, holder string, log *slog.Logger) (*yamux.Session, error) {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	line := fmt.Sprintf("TETHER %s %s", token, name)
	if holder != "" {
		line += " " + url.QueryEscape(holder)
	}
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		conn.Close()
		return nil, err
	}
	line, err := readLine(conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("traffic-agent handshake: %w", err)
	}
	if line != "OK" {
		conn.Close()
		return nil, fmt.Errorf("traffic-agent refused the session: %s", line)
	}
	_ = conn.SetDeadline(time.Time{})
	return yamux.Client(conn, config(log))
}

// Server checks the token a workbench presents on conn and returns the
// agent's end of the session and the intercept it serves. ready, if not
// nil, runs before the workbench is told OK with the intercept's name and
// the holder the workbench presented ("" from a workbench that presents
// none); the agent refreshes its routes there, so a workbench whose
// handshake succeeded is routed. An error from ready refuses the session,
// its text sent as the ERR reply.
func Server(conn net.Conn, token string, ready func(name, holder string) error, log *slog.Logger) (*yamux.Session, string, error) {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := readLine(conn)
	if err != nil {
		conn.Close()
		return nil, "", err
	}
	got, rest, _ := strings.Cut(strings.TrimPrefix(line, "TETHER "), " ")
	name, holder, _ := strings.Cut(rest, " ")
	if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
		fmt.Fprintf(conn, "ERR bad token\n")
		conn.Close()
		return nil, "", errors.New("workbench presented a bad token")
	}
	if name == "" {
		fmt.Fprintf(conn, "ERR no intercept name\n")
		conn.Close()
		return nil, "", errors.New("workbench named no intercept")
	}
	if h, err := url.QueryUnescape(holder); err == nil {
		holder = h
	}
	if ready != nil {
		if err := ready(name, holder); err != nil {
			fmt.Fprintf(conn, "ERR %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			conn.Close()
			return nil, "", fmt.Errorf("workbench session for intercept %q refused: %w", name, err)
		}
	}
	if _, err := io.WriteString(conn, "OK\n"); err != nil {
		conn.Close()
		return nil, "", err
	}
	_ = conn.SetDeadline(time.Time{})
	s, err := yamux.Server(conn, config(log))
	return s, name, err
}

// readLine reads one \n-terminated line byte by byte: no buffering, so
// nothing after the line is swallowed before yamux takes over the conn.
func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < maxLine {
		if _, err := io.ReadFull(r, one); err != nil {
			switch {
			case errors.Is(err, io.EOF) && len(b) > 0:
				// io.EOF means nothing was sent (a readiness probe
				// connecting and closing); a cut line is another thing.
				return "", io.ErrUnexpectedEOF
			case errors.Is(err, syscall.ECONNRESET) && len(b) == 0:
				// A probe that closes with a reset sent nothing either.
				return "", io.EOF
			}
			return "", err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
	return "", errors.New("line too long")
}

// Dial asks the agent at the other end of sess to dial addr from inside
// the cluster and returns the stream carrying that connection.
func Dial(ctx context.Context, sess *yamux.Session, addr string) (net.Conn, error) {
	s, err := sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("open stream to traffic-agent: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.SetDeadline(time.Now()) })
	defer stop()
	if _, err := fmt.Fprintf(s, "DIAL %s\n", addr); err != nil {
		s.Close()
		return nil, err
	}
	line, err := readLine(s)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("dial %s through traffic-agent: %w", addr, err)
	}
	if line != "OK" {
		s.Close()
		return nil, fmt.Errorf("dial %s through traffic-agent: %s", addr, strings.TrimPrefix(line, "ERR "))
	}
	_ = s.SetDeadline(time.Time{})
	return s, nil
}

// ServeDial answers one dial request on stream s (agent side) with dial.
func ServeDial(ctx context.Context, s net.Conn, dial func(ctx context.Context, addr string) (net.Conn, error), log *slog.Logger) {
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := readLine(s)
	if err != nil || !strings.HasPrefix(line, "DIAL ") {
		s.Close()
		return
	}
	addr := strings.TrimPrefix(line, "DIAL ")
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	up, err := dial(dctx, addr)
	cancel()
	if err != nil {
		log.Info("outbound dial failed", "address", addr, "err", err)
		fmt.Fprintf(s, "ERR %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		s.Close()
		return
	}
	if _, err := io.WriteString(s, "OK\n"); err != nil {
		s.Close()
		up.Close()
		return
	}
	_ = s.SetDeadline(time.Time{})
	netpipe.Splice(s, up)
}
