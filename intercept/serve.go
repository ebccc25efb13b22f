package intercept

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/elazarl/goproxy"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tether-dev/tether/cluster/netpipe"
	"github.com/tether-dev/tether/intercept/tunnel"
)

func (i *Intercept) serve() {
	ctx := i.runCtx
	go i.acceptStreams()
	go func() {
		select {
		case <-i.sess.CloseChan():
			// Stop cancels ctx before closing the session: a clean
			// stop, whichever case woke first, not a lost session.
			if ctx.Err() != nil {
				return
			}
			// An agent closes the session when this intercept's Lease
			// was deleted (stop or uninstall from elsewhere): that is
			// not a failure.
			gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := i.opts.Client.CoordinationV1().Leases(i.rec.Namespace).Get(gctx, i.rec.Lease, metav1.GetOptions{})
			cancel()
			if ctx.Err() != nil {
				// Stop began while the Lease was read.
				return
			}
			if apierrors.IsNotFound(err) {
				i.fail(ErrStopped)
			} else {
				i.fail(errors.New("session with the traffic-agent was lost"))
			}
		case <-ctx.Done():
		}
	}()
	px := outboundProxy(i.rec.Cluster, func(ctx context.Context, addr string) (net.Conn, error) {
		return tunnel.Dial(ctx, i.sess, addr)
	}, i.log)
	i.proxy = &http.Server{Handler: px, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = i.proxy.Serve(i.pl) }()
	i.log.Info("intercept running", "service", i.rec.Namespace+"/"+i.rec.Service, "port", i.rec.Port, "to", i.to, "proxy", i.pl.Addr().String())
}

// outboundProxy is the HTTP/CONNECT proxy through which the local process
// reaches cluster (its Services by name), dialing with dial.
func outboundProxy(cluster string, dial func(ctx context.Context, addr string) (net.Conn, error), log *slog.Logger) *goproxy.ProxyHttpServer {
	px := goproxy.NewProxyHttpServer()
	px.Logger = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	px.KeepAcceptEncoding = true
	px.KeepDestinationHeaders = true
	// Proxy: nil so the proxy never sends its dials to HTTP_PROXY (itself).
	px.Tr = &http.Transport{
		Proxy:               nil,
		DialContext:         func(ctx context.Context, _, addr string) (net.Conn, error) { return dial(ctx, addr) },
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	px.ConnectDialWithReq = func(req *http.Request, _, addr string) (net.Conn, error) {
		return dial(req.Context(), addr)
	}
	// Both kinds of request that fail say which host could not be reached
	// from the cluster and why, in the same words. CONNECT's answer puts
	// it in the status line too: it is all curl -v shows of a failed
	// tunnel, and the error Go's HTTP client returns.
	px.ConnectionErrHandler = func(w io.Writer, ctx *goproxy.ProxyCtx, err error) {
		addr := ctx.Req.URL.Host
		if _, _, serr := net.SplitHostPort(addr); serr != nil {
			addr = net.JoinHostPort(addr, "80") // as goproxy dials it
		}
		log.Info("outbound CONNECT failed", "host", addr, "err", err)
		msg := unreachable(cluster, addr, err)
		reason := strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f {
				return ' '
			}
			return r
		}, msg)
		body := msg + "\n"
		fmt.Fprintf(w, "HTTP/1.1 502 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			reason, len(body), body)
	}
	px.OnResponse().DoFunc(func(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
		if resp != nil || ctx.Error == nil {
			return resp
		}
		log.Info("outbound request failed", "host", ctx.Req.URL.Host, "err", ctx.Error)
		return goproxy.NewResponse(ctx.Req, "text/plain; charset=utf-8", http.StatusBadGateway,
			unreachable(cluster, hostPort(ctx.Req.URL), ctx.Error)+"\n")
	})
	return px
}

// unreachable says that the outbound proxy could not reach addr in
// cluster, and why. tunnel.Dial's errors repeat the address; that part is
// said once here.
func unreachable(cluster, addr string, err error) string {
	why := strings.TrimPrefix(err.Error(), "dial "+addr+" through traffic-agent: ")
	where := "the cluster"
	if cluster != "" {
		where = "cluster " + cluster
	}
	return fmt.Sprintf("tether outbound proxy: cannot reach %s from %s: %s", addr, where, why)
}

// hostPort is u's host with the scheme's port when it names none, as the
// transport dials it.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func (i *Intercept) fail(err error) {
	i.errOnce.Do(func() {
		i.err = err
		close(i.done)
	})
}

func (i *Intercept) acceptStreams() {
	for {
		s, err := i.sess.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			up, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", i.to)
			if err != nil {
				i.log.Warn("local process unreachable", "to", i.to, "err", err)
				s.Close()
				return
			}
			netpipe.Splice(s, up)
		}()
	}
}

// ProxyAddr is the outbound HTTP/CONNECT proxy's host:port.
func (i *Intercept) ProxyAddr() string { return i.pl.Addr().String() }

// ProxyEnv is the environment that sends a process's HTTP(S) traffic
// through the outbound proxy.
func (i *Intercept) ProxyEnv() []string {
	u := "http://" + i.ProxyAddr()
	return []string{"HTTP_PROXY=" + u, "HTTPS_PROXY=" + u, "http_proxy=" + u, "https_proxy=" + u, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost"}
}
