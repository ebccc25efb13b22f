package agentpod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gwebsocket "github.com/gorilla/websocket"
	"github.com/hashicorp/yamux"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	pfconst "k8s.io/apimachinery/pkg/util/portforward"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/klog/v2"
	streamhttp "k8s.io/streaming/pkg/httpstream"
	streamspdy "k8s.io/streaming/pkg/httpstream/spdy"

	"github.com/tether-dev/tether/cluster/netpipe/netpipetest"
)

// fakeAPI stands in for the API server and kubelet behind the
// port-forward subresource of pod shop/agent: it speaks SPDY, directly or
// tunnelled over a websocket, pairs each request's error and data streams
// as the kubelet does, and connects the data stream to the local address
// its ports map names (nothing listening → the dial error on the error
// stream).
type fakeAPI struct {
	t           *testing.T
	ports       map[int32]string
	noWebsocket bool
	wsRequests  atomic.Int32
	spdyReqs    atomic.Int32
	url         string
}

func newFakeAPI(t *testing.T, ports map[int32]string, noWebsocket bool) *fakeAPI {
	f := &fakeAPI{t: t, ports: ports, noWebsocket: noWebsocket}
	f.url = "http://" + netpipetest.ServeHTTP(t, http.HandlerFunc(f.serve))
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/namespaces/shop/pods/agent/portforward" {
		http.Error(w, "not found: "+r.URL.Path, http.StatusNotFound)
		return
	}
	handler, pairs := f.streams()
	var conn streamhttp.Connection
	if gwebsocket.IsWebSocketUpgrade(r) {
		f.wsRequests.Add(1)
		if f.noWebsocket {
			// An old API server (or a proxy) that does not upgrade.
			http.Error(w, "websockets not supported here", http.StatusBadRequest)
			return
		}
		up := gwebsocket.Upgrader{Subprotocols: []string{pfconst.WebsocketsSPDYTunnelingPortForwardV1}}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		tc := portforward.NewTunnelingConnectionWithLogger(klog.Background(), ws)
		if conn, err = streamspdy.NewServerConnection(tc, handler); err != nil {
			f.t.Errorf("server spdy over websocket: %v", err)
			return
		}
	} else {
		f.spdyReqs.Add(1)
		if r.Method != http.MethodPost {
			http.Error(w, "port-forward is a POST", http.StatusMethodNotAllowed)
			return
		}
		if _, err := streamhttp.Handshake(r, w, []string{pfconst.PortForwardV1Name}); err != nil {
			return
		}
		if conn = streamspdy.NewResponseUpgrader().UpgradeResponse(w, r, handler); conn == nil {
			return
		}
	}
	defer conn.Close()
	go f.pair(pairs)
	<-conn.CloseChan()
}

type pending struct {
	s     streamhttp.Stream
	reply <-chan struct{}
}

func (f *fakeAPI) streams() (streamhttp.NewStreamHandler, chan pending) {
	ch := make(chan pending, 16)
	return func(s streamhttp.Stream, reply <-chan struct{}) error {
		ch <- pending{s, reply}
		return nil
	}, ch
}

func (f *fakeAPI) pair(ch chan pending) {
	type pr struct{ errS, data streamhttp.Stream }
	byID := map[string]*pr{}
	for p := range ch {
		<-p.reply
		id := p.s.Headers().Get(corev1.PortForwardRequestIDHeader)
		if byID[id] == nil {
			byID[id] = &pr{}
		}
		switch p.s.Headers().Get(corev1.StreamType) {
		case corev1.StreamTypeError:
			byID[id].errS = p.s
		case corev1.StreamTypeData:
			byID[id].data = p.s
		}
		if x := byID[id]; x.errS != nil && x.data != nil {
			delete(byID, id)
			port, _ := strconv.Atoi(x.data.Headers().Get(corev1.PortHeader))
			go f.forward(int32(port), x.errS, x.data)
		}
	}
}

// forward is the kubelet's part: dial the port in the pod, copy both ways.
func (f *fakeAPI) forward(port int32, errS, data streamhttp.Stream) {
	defer errS.Close()
	defer data.Close()
	up, err := net.Dial("tcp", f.ports[port])
	if err != nil {
		fmt.Fprintf(errS, "error forwarding port %d to pod agent: %v", port, err)
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, data)
		_ = up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(data, up)
	<-done
}

func agentPod(port int32) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "shop"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: ContainerName, Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: 8080}, {Name: ControlPortName, ContainerPort: port},
		}}}},
	}
}

// echo serves one upper-casing echo per connection until EOF, then closes.
func echo(t *testing.T) string {
	return netpipetest.Serve(t, func(c net.Conn) { netpipetest.ShoutAfterEOF(c) })
}

func dialer(t *testing.T, f *fakeAPI) *PortForward {
	t.Helper()
	pf, err := NewPortForward(&rest.Config{Host: f.url})
	if err != nil {
		t.Fatal(err)
	}
	return pf
}

func TestPortForwardHalfCloseOverWebsocket(t *testing.T) {
	f := newFakeAPI(t, map[int32]string{7070: echo(t)}, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := dialer(t, f).Dial(ctx, agentPod(7070))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "hello through the api server"); err != nil {
		t.Fatal(err)
	}
	// The echo answers only after EOF: a half-close must reach the pod
	// and the answer still come back.
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "HELLO THROUGH THE API SERVER" {
		t.Fatalf("read %q, %v", b, err)
	}
	if f.wsRequests.Load() != 1 || f.spdyReqs.Load() != 0 {
		t.Errorf("websocket requests %d, spdy %d: want the websocket path", f.wsRequests.Load(), f.spdyReqs.Load())
	}
	if c.RemoteAddr().String() != "pod shop/agent port 7070" {
		t.Errorf("remote addr %q", c.RemoteAddr())
	}
}

// One port-forward connection carries a whole yamux session: concurrent
// streams in both directions, as the intercept's session uses it.
func TestPortForwardCarriesAYamuxSession(t *testing.T) {
	agent := netpipetest.Serve(t, func(c net.Conn) {
		s, err := yamux.Server(c, nil)
		if err != nil {
			return
		}
		defer s.Close()
		netpipetest.ServeStreams(s.Accept, func(st net.Conn) { netpipetest.GreetAndEcho(st, "") })
		<-s.CloseChan()
	})
	f := newFakeAPI(t, map[int32]string{7070: agent}, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := dialer(t, f).Dial(ctx, agentPod(7070))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := yamux.Client(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := sess.OpenStream()
			if err != nil {
				t.Error(err)
				return
			}
			defer st.Close()
			msg := strings.Repeat(strconv.Itoa(i), 64<<10) // several frames and windows
			go func() { _, _ = io.WriteString(st, msg) }()
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(st, buf); err != nil || string(buf) != msg {
				t.Errorf("stream %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
}

func TestPortForwardFallsBackToSPDY(t *testing.T) {
	f := newFakeAPI(t, map[int32]string{9000: echo(t)}, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pf := dialer(t, f)
	pf.Port = 9000 // an explicit port wins over the pod's named one
	c, err := pf.Dial(ctx, agentPod(7070))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "spdy")
	_ = c.(interface{ CloseWrite() error }).CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "SPDY" {
		t.Fatalf("read %q, %v", b, err)
	}
	if f.wsRequests.Load() != 1 || f.spdyReqs.Load() != 1 {
		t.Errorf("websocket requests %d, spdy %d: want one refused websocket then SPDY", f.wsRequests.Load(), f.spdyReqs.Load())
	}

	pf.SPDYOnly = true
	c2, err := pf.Dial(ctx, agentPod(7070))
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	if f.wsRequests.Load() != 1 {
		t.Error("SPDYOnly still tried the websocket")
	}
}

func TestPortForwardReportsTheKubeletError(t *testing.T) {
	f := newFakeAPI(t, map[int32]string{7070: netpipetest.FreeAddr(t)}, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := dialer(t, f).Dial(ctx, agentPod(7070))
	if err != nil {
		t.Fatal(err) // the streams open; the pod's port fails behind them
	}
	defer c.Close()
	_, err = c.Read(make([]byte, 1))
	if err == nil || !strings.Contains(err.Error(), "error forwarding port 7070") || !strings.Contains(err.Error(), "pod shop/agent port 7070") {
		t.Fatalf("read error %v, want the kubelet's message and the target", err)
	}
}

func TestPortForwardDeadlineEndsTheConnection(t *testing.T) {
	f := newFakeAPI(t, map[int32]string{7070: netpipetest.Serve(t, netpipetest.Silent)}, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := dialer(t, f).Dial(ctx, agentPod(7070))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Cleared deadlines do not fire.
	_ = c.SetDeadline(time.Now().Add(50 * time.Millisecond))
	_ = c.SetDeadline(time.Time{})
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	start := time.Now()
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after deadline: %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Errorf("deadline fired after %v", d)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write after expiry: %v", err)
	}
}

func TestPortForwardRefusesPodWithoutControlPort(t *testing.T) {
	f := newFakeAPI(t, nil, false)
	pod := agentPod(7070)
	pod.Spec.Containers[0].Ports = pod.Spec.Containers[0].Ports[:1]
	_, err := dialer(t, f).Dial(context.Background(), pod)
	if err == nil || !strings.Contains(err.Error(), ControlPortName) {
		t.Fatalf("dial: %v", err)
	}
	if f.wsRequests.Load()+f.spdyReqs.Load() != 0 {
		t.Error("dialed a pod with no control port")
	}
}

func TestPortForwardHonoursContext(t *testing.T) {
	// An API server that accepts the connection and never answers.
	silent := netpipetest.Serve(t, netpipetest.Silent)
	pf, err := NewPortForward(&rest.Config{Host: "http://" + silent})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := pf.Dial(ctx, agentPod(7070)); err == nil {
		t.Fatal("dial to a silent API server succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("dial took %v after its context ended", d)
	}
}

// capture records the messages of every level, client-go's V(7) ones
// included.
type capture struct {
	mu   sync.Mutex
	msgs []string
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, r.Message)
	return nil
}
func (c *capture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *capture) WithGroup(string) slog.Handler      { return c }

// The websocket tunnel logs through the PortForward's Logger, not klog's
// process-wide default (stderr), which a library must not write to.
func TestPortForwardLogsThroughItsLogger(t *testing.T) {
	f := newFakeAPI(t, map[int32]string{7070: echo(t)}, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h := &capture{}
	pf := dialer(t, f)
	pf.Logger = slog.New(h)
	c, err := pf.Dial(ctx, agentPod(7070))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "hello"); err != nil {
		t.Fatal(err)
	}
	_ = c.(interface{ CloseWrite() error }).CloseWrite()
	_, _ = io.ReadAll(c)
	c.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.ContainsFunc(h.msgs, func(m string) bool { return strings.HasPrefix(m, "Tunneling connection") }) {
		t.Fatalf("the tunnelling connection logged nothing through Logger: got %q", h.msgs)
	}
}
