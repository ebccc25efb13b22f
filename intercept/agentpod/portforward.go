package agentpod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	pfconst "k8s.io/apimachinery/pkg/util/portforward"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/transport/websocket"
	streamhttp "k8s.io/streaming/pkg/httpstream"
	streamspdy "k8s.io/streaming/pkg/httpstream/spdy"
)

// PortForward opens connections to a pod's port through the API server's
// port-forward subresource: the path `kubectl port-forward` takes, without
// its local listener. Dial returns the forwarded stream itself as a
// net.Conn.
type PortForward struct {
	cfg *rest.Config
	url func(ns, pod string) *url.URL
	// Port is the container port to reach; 0 means the pod's port named
	// ControlPortName.
	Port int32
	// SPDYOnly skips the websocket attempt (SPDY tunnelled over a
	// websocket, the default since Kubernetes 1.31) and upgrades to SPDY
	// directly. Without it, SPDY is the fallback when the API server or a
	// proxy refuses the websocket upgrade, as kubectl does.
	SPDYOnly bool
	Logger   *slog.Logger
}

// NewPortForward returns a dialer through the API server cfg points at.
func NewPortForward(cfg *rest.Config) (*PortForward, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("port-forward client for %s: %w", cfg.Host, err)
	}
	rc := cs.CoreV1().RESTClient()
	return &PortForward{
		cfg: cfg,
		url: func(ns, pod string) *url.URL {
			return rc.Post().Resource("pods").Namespace(ns).Name(pod).SubResource("portforward").URL()
		},
	}, nil
}

// Dial opens one forwarded connection to pod's port. It is the shape of
// the agent dialer the workbench needs: called once per intercept, since
// the connection carries the whole yamux session.
func (p *PortForward) Dial(ctx context.Context, pod *corev1.Pod) (net.Conn, error) {
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	port := p.Port
	if port == 0 {
		port = namedPort(pod, ControlPortName)
		if port == 0 {
			return nil, fmt.Errorf("pod %s/%s declares no port named %q: is it a traffic-agent pod tether made (package agentpod)?", pod.Namespace, pod.Name, ControlPortName)
		}
	}
	target := fmt.Sprintf("pod %s/%s port %d", pod.Namespace, pod.Name, port)
	u := p.url(pod.Namespace, pod.Name)

	var conn streamhttp.Connection
	var err error
	if !p.SPDYOnly {
		conn, err = p.websocket(ctx, u, log)
		if err != nil && (streamhttp.IsUpgradeFailure(err) || streamhttp.IsHTTPSProxyError(err)) {
			log.Info("port-forward over websocket refused, falling back to SPDY", "target", target, "err", err)
			conn, err = p.spdy(ctx, u)
		}
	} else {
		conn, err = p.spdy(ctx, u)
	}
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s: %w", target, err)
	}
	c, err := openStreams(ctx, conn, port, target)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("port-forward to %s: %w", target, err)
	}
	log.Debug("port-forward open", "target", target)
	return c, nil
}

func namedPort(pod *corev1.Pod, name string) int32 {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
	}
	return 0
}

// websocket negotiates SPDY tunnelled over a websocket, the protocol
// portforward.NewSPDYOverWebsocketDialerForStreaming speaks, but with ctx
// on the request (that dialer takes none).
// Its tunnelling connection logs through log (client-go's verbosity V(n)
// is slog level -n), not klog's process-wide default.
func (p *PortForward) websocket(ctx context.Context, u *url.URL, log *slog.Logger) (streamhttp.Connection, error) {
	rt, holder, err := websocket.RoundTripperFor(p.cfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	ws, err := websocket.Negotiate(rt, holder, req, pfconst.WebsocketsSPDYTunnelingPortForwardV1)
	if err != nil {
		return nil, err
	}
	if ws == nil {
		return nil, errors.New("websocket negotiation returned no connection")
	}
	tc := portforward.NewTunnelingConnectionWithLogger(logr.FromSlogHandler(log.Handler()).WithName("intercept-portforward"), ws)
	conn, err := streamspdy.NewClientConnectionWithPings(tc, portforward.PingPeriod)
	if err != nil {
		tc.Close()
		return nil, err
	}
	return conn, nil
}

// spdy upgrades the request to SPDY directly.
func (p *PortForward) spdy(ctx context.Context, u *url.URL) (streamhttp.Connection, error) {
	rt, upgrader, err := spdy.RoundTripperFor(p.cfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return nil, err
	}
	conn, proto, err := spdy.NegotiateStreaming(upgrader, &http.Client{Transport: rt}, req, pfconst.PortForwardV1Name)
	if err != nil {
		return nil, err
	}
	if proto != pfconst.PortForwardV1Name {
		conn.Close()
		return nil, fmt.Errorf("the API server speaks port-forward protocol %q, not %q", proto, pfconst.PortForwardV1Name)
	}
	return conn, nil
}

// openStreams creates the error and data streams of one forwarded
// connection on conn, as client-go's PortForwarder does for each accepted
// local connection, and returns the data stream as a net.Conn.
func openStreams(ctx context.Context, conn streamhttp.Connection, port int32, target string) (net.Conn, error) {
	// Creating a stream waits for the other side's reply (up to 30 s) and
	// takes no context: closing the connection is what interrupts it.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, strconv.Itoa(int(port)))
	// One data stream per connection, so one request id.
	h.Set(corev1.PortForwardRequestIDHeader, "0")
	errStream, err := conn.CreateStream(h)
	if err != nil {
		return nil, errors.Join(ctx.Err(), fmt.Errorf("create error stream: %w", err))
	}
	// The client never writes on the error stream.
	_ = errStream.Close()
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(h)
	if err != nil {
		return nil, errors.Join(ctx.Err(), fmt.Errorf("create data stream: %w", err))
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	c := &streamConn{conn: conn, data: data, addr: pfAddr(target), errDone: make(chan struct{})}
	go c.readErrors(errStream, target)
	return c, nil
}

// streamConn is a port-forward data stream as a net.Conn. Close ends the
// whole port-forward connection: it carries this one stream only.
type streamConn struct {
	conn streamhttp.Connection
	data streamhttp.Stream
	addr pfAddr

	errDone   chan struct{} // closed when the error stream ended
	mu        sync.Mutex
	remoteErr error // what the kubelet reported on the error stream
	expired   bool
	rTimer    *time.Timer
	wTimer    *time.Timer
	closeOnce sync.Once
}

// readErrors reads the error stream to its end: the kubelet writes there
// when it cannot reach the port in the pod (nothing listening) or the
// forward breaks. A message ends the connection, and Read reports it
// instead of a bare EOF.
func (c *streamConn) readErrors(s streamhttp.Stream, target string) {
	defer close(c.errDone)
	msg, err := io.ReadAll(s)
	if len(msg) == 0 {
		_ = err // the stream ends with the connection; nothing to report
		return
	}
	c.mu.Lock()
	c.remoteErr = fmt.Errorf("port-forward to %s: %s", target, msg)
	c.mu.Unlock()
	c.Close()
}

func (c *streamConn) Read(b []byte) (int, error) {
	n, err := c.data.Read(b)
	if err != nil {
		// The kubelet closes the data stream right after writing the
		// reason on the error stream; give that a moment to arrive.
		select {
		case <-c.errDone:
		case <-time.After(200 * time.Millisecond):
		}
		if e := c.failure(); e != nil {
			return n, e
		}
	}
	return n, err
}

func (c *streamConn) Write(b []byte) (int, error) {
	if e := c.failure(); e != nil {
		return 0, e
	}
	n, err := c.data.Write(b)
	if err != nil {
		if e := c.failure(); e != nil {
			return n, e
		}
	}
	return n, err
}

func (c *streamConn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired {
		return os.ErrDeadlineExceeded
	}
	return c.remoteErr
}

// CloseWrite half-closes: the SPDY stream's Close sends FIN and keeps
// reading, which tunnel.Splice relies on.
func (c *streamConn) CloseWrite() error { return c.data.Close() }

func (c *streamConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		for _, t := range []*time.Timer{c.rTimer, c.wTimer} {
			if t != nil {
				t.Stop()
			}
		}
		c.mu.Unlock()
		_ = c.data.Reset()
		err = c.conn.Close()
	})
	return err
}

func (c *streamConn) LocalAddr() net.Addr  { return pfAddr("workbench") }
func (c *streamConn) RemoteAddr() net.Addr { return c.addr }

// Deadlines: a port-forward stream cannot abort one read and carry on
// (setting a deadline on the shared websocket or TLS connection would
// break it for good), so a deadline that passes ends the connection and
// later calls fail with os.ErrDeadlineExceeded. tunnel and yamux only use
// deadlines around the session handshake, where passing one is a failure
// anyway.
func (c *streamConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

func (c *streamConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rTimer = c.arm(c.rTimer, t)
	return nil
}

func (c *streamConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wTimer = c.arm(c.wTimer, t)
	return nil
}

// arm replaces timer by one firing at t (none for the zero time). c.mu is
// held.
func (c *streamConn) arm(timer *time.Timer, t time.Time) *time.Timer {
	if timer != nil {
		timer.Stop()
	}
	if t.IsZero() {
		return nil
	}
	return time.AfterFunc(time.Until(t), func() {
		c.mu.Lock()
		c.expired = true
		c.mu.Unlock()
		c.Close()
	})
}

// pfAddr names a port-forward endpoint; there is no IP address to give.
type pfAddr string

func (a pfAddr) Network() string { return "portforward" }
func (a pfAddr) String() string  { return string(a) }
