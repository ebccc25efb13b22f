package intercept

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tether-dev/tether/intercept/record"
	"github.com/tether-dev/tether/intercept/tunnel"

	"github.com/tether-dev/tether/cluster/netpipe/netpipetest"
)

func TestParse(t *testing.T) {
	if c, n, s, err := ParseTarget("hub/shop/web"); err != nil || c != "hub" || n != "shop" || s != "web" {
		t.Fatalf("%s %s %s %v", c, n, s, err)
	}
	for _, bad := range []string{"hub/shop", "hub//web", "a/b/c/d"} {
		if _, _, _, err := ParseTarget(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	h, err := ParseHeaders([]string{"x-dev=alice", "X-Team=a=b"})
	if err != nil || h["X-Dev"] != "alice" || h["X-Team"] != "a=b" {
		t.Fatalf("%v %v", h, err)
	}
	if _, err := ParseHeaders([]string{"novalue"}); err == nil {
		t.Error("header without = accepted")
	}
}

func TestConflict(t *testing.T) {
	global := record.Record{Name: "web-80", Port: 80}
	alice := record.Record{Name: "web-80", Port: 80, Headers: map[string]string{"X-Dev": "alice"}}
	bob := record.Record{Name: "web-80-2", Port: 80, Headers: map[string]string{"X-Dev": "bob"}}
	other := record.Record{Name: "web-9090", Port: 9090}
	for _, tc := range []struct {
		name string
		live []record.Record
		spec Spec
		want string // "" means allowed
	}{
		{"second global", []record.Record{global}, Spec{Port: 80}, `already intercepted globally by "web-80"`},
		{"personal under global", []record.Record{global}, Spec{Port: 80, Headers: map[string]string{"X-Dev": "a"}}, "takes every connection"},
		{"same headers", []record.Record{alice, bob}, Spec{Port: 80, Headers: map[string]string{"X-Dev": "bob"}}, `same headers (headers X-Dev=bob) by "web-80-2"`},
		{"global over personal", []record.Record{alice, bob}, Spec{Port: 80}, "has personal intercepts (web-80, web-80-2); a global intercept would take their requests"},
		{"different headers", []record.Record{alice}, Spec{Port: 80, Headers: map[string]string{"X-Dev": "bob"}}, ""},
		{"more headers", []record.Record{alice}, Spec{Port: 80, Headers: map[string]string{"X-Dev": "alice", "X-Team": "a"}}, ""},
		{"other port", []record.Record{other, global}, Spec{Port: 9090 + 1}, ""},
		{"global on another port", []record.Record{other}, Spec{Port: 80}, ""},
	} {
		err := conflict("hub/shop/web", tc.live, tc.spec)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: allowed, want %q", tc.name, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: %v: want %q", tc.name, err, tc.want)
		}
		// The command says to stop the intercepts in the way by name.
		var ce *ConflictError
		if tc.want != "" && (!errors.As(err, &ce) || len(ce.Names) == 0) {
			t.Errorf("%s: %v is not a ConflictError naming the intercepts in the way", tc.name, err)
		}
		if tc.name == "global over personal" && strings.Join(ce.Names, ",") != "web-80,web-80-2" {
			t.Errorf("%s: names %v, want web-80, web-80-2", tc.name, ce.Names)
		}
	}
}

func TestContainerStateSaysWhyAnAgentPodIsNotUp(t *testing.T) {
	p := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
		Name:  "traffic-agent",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: "image tether.local/tether:x is not present"}},
	}}}}
	if got := containerState(p); !strings.Contains(got, "ErrImageNeverPull") || !strings.Contains(got, "tether.local/tether:x") {
		t.Errorf("containerState = %q", got)
	}
	if got := containerState(&corev1.Pod{}); got != "" {
		t.Errorf("containerState of a pod without statuses = %q", got)
	}
}

func TestParseHeadersRefusesBadAndRepeatedNames(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"X-Dev=alice", "x-dev=bob"}, "already given"},
		{[]string{"X Dev=alice"}, "not a valid HTTP header name"},
		{[]string{"X-Dev:=alice"}, "not a valid HTTP header name"},
		{[]string{"X-Dév=alice"}, "not a valid HTTP header name"},
		{[]string{"=alice"}, "want NAME=VALUE"},
	} {
		_, err := ParseHeaders(tc.in)
		var fe *FieldError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &fe) || fe.Field != "Headers" {
			t.Errorf("%q: err = %v, want one saying %q", tc.in, err, tc.want)
		}
	}
	if h, err := ParseHeaders([]string{" x-dev =alice", "X-Team=a"}); err != nil || h["X-Dev"] != "alice" || len(h) != 2 {
		t.Errorf("valid headers: %v %v", h, err)
	}
}

// Stop cancels the intercept before closing its session: the watcher
// that notices the closed session must not report a lost session for a
// clean stop, even when the agent's close raced it.
func TestStopIsNotALostSession(t *testing.T) {
	c := fake.NewClientset()
	reading := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	c.PrependReactor("get", "leases", func(a k8stesting.Action) (handled bool, _ runtime.Object, err error) {
		if a.(k8stesting.GetAction).GetName() != record.LeaseName("web-80") {
			return false, nil, nil
		}
		// The watcher's read of the Lease: it fails once Stop has
		// cancelled the intercept.
		once.Do(func() {
			close(reading)
			<-release
			handled, err = true, context.Canceled
		})
		return handled, nil, err
	})
	wb, ag := net.Pipe()
	log := slog.New(slog.DiscardHandler)
	agentSess, err := yamux.Server(ag, yamux.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	sess, err := yamux.Client(wb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pl := netpipetest.Listen(t)
	i := &Intercept{
		opts: Options{Client: c, RenewInterval: time.Hour, Logger: log}, log: log,
		rec: record.Record{Name: "web-80", Namespace: "shop", Service: "web", Port: 80, Lease: record.LeaseName("web-80")},
		to:  "127.0.0.1:1", sess: sess, pl: pl, done: make(chan struct{}),
	}
	i.runCtx, i.cancel = context.WithCancel(context.Background()) // as Start does
	i.serve()
	// The agent closes the session (it read the Lease's deletion first)
	// while this process is stopping.
	agentSess.Close()
	<-reading
	go func() {
		<-time.After(100 * time.Millisecond)
		close(release)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = i.Stop(ctx)
	wctx, wcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer wcancel()
	if err := i.Wait(wctx); err != nil {
		t.Fatalf("a clean stop reported: %v", err)
	}
}

func TestSelectorManagerNamesWhoLastSetTheSelector(t *testing.T) {
	at := func(s int) *metav1.Time { tm := metav1.NewTime(time.Unix(1_700_000_000+int64(s), 0)); return &tm }
	fields := func(raw string) *metav1.FieldsV1 { return &metav1.FieldsV1{Raw: []byte(raw)} }
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
		{Manager: "kubectl-create", Time: at(0), FieldsV1: fields(`{"f:spec":{"f:selector":{},"f:ports":{}}}`)},
		{Manager: "tether-intercept", Time: at(20), FieldsV1: fields(`{"f:spec":{"f:selector":{}}}`)},
		{Manager: "tether-agent", Time: at(10), FieldsV1: fields(`{"f:spec":{"f:selector":{}}}`)},
		{Manager: "late-but-unrelated", Time: at(30), FieldsV1: fields(`{"f:metadata":{"f:labels":{}}}`)},
	}}}
	name, when := selectorManager(svc)
	if name != "tether-agent" || !when.Equal(at(10).Time) {
		t.Errorf("selectorManager = %q at %s, want tether-agent at %s", name, when, at(10).Time)
	}
	if name, _ := selectorManager(&corev1.Service{}); name != "" {
		t.Errorf("selectorManager of a Service without managed fields = %q, want none", name)
	}
}

// A request the outbound proxy cannot carry into the cluster answers 502
// with which host and why, for CONNECT (in the status line as well: it is
// what clients show of a failed tunnel) as for plain HTTP.
func TestOutboundProxyExplainsAnUnreachableHost(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	// The agent's end of the session answers every dial as an agent
	// whose cluster has no such Service does.
	wb, ag := net.Pipe()
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	agentSess, err := yamux.Server(ag, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer agentSess.Close()
	sess, err := yamux.Client(wb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	go func() {
		for {
			st, err := agentSess.AcceptStream()
			if err != nil {
				return
			}
			go tunnel.ServeDial(ctx, st, func(_ context.Context, addr string) (net.Conn, error) {
				return nil, errors.New("no Service missing in namespace shop")
			}, log)
		}
	}()
	px := outboundProxy("spoke-1", func(ctx context.Context, addr string) (net.Conn, error) { return tunnel.Dial(ctx, sess, addr) }, log)
	proxyAddr := netpipetest.ServeHTTP(t, px)

	const why = "no Service missing in namespace shop"
	t.Run("CONNECT", func(t *testing.T) {
		c, err := net.Dial("tcp", proxyAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "CONNECT missing.shop.svc:443 HTTP/1.1\r\nHost: missing.shop.svc:443\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		want := "tether outbound proxy: cannot reach missing.shop.svc:443 from cluster spoke-1: " + why
		if resp.StatusCode != http.StatusBadGateway || resp.Status != "502 "+want || string(body) != want+"\n" {
			t.Errorf("CONNECT answered %q with %q; want 502 %q with the same body", resp.Status, body, want)
		}
	})
	t.Run("HTTP", func(t *testing.T) {
		proxyURL, _ := url.Parse("http://" + proxyAddr)
		client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 5 * time.Second}
		resp, err := client.Get("http://missing.shop.svc/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		want := "tether outbound proxy: cannot reach missing.shop.svc:80 from cluster spoke-1: " + why + "\n"
		if resp.StatusCode != http.StatusBadGateway || string(body) != want {
			t.Errorf("GET answered %q with %q; want 502 with %q", resp.Status, body, want)
		}
	})
	t.Run("HTTPS client", func(t *testing.T) {
		// What a Go program in `intercept run` sees.
		proxyURL, _ := url.Parse("http://" + proxyAddr)
		client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 5 * time.Second}
		_, err := client.Get("https://missing.shop.svc/")
		if err == nil || !strings.Contains(err.Error(), "cannot reach missing.shop.svc:443 from cluster spoke-1: "+why) {
			t.Errorf("an HTTPS client's error does not say why: %v", err)
		}
	})
}
