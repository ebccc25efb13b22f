package netpipetest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

func TestEchoGreetsThenEchoes(t *testing.T) {
	c := dial(t, Echo(t, "a"))
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || line != "a\n" {
		t.Fatalf("greeting %q, %v", line, err)
	}
	_, _ = io.WriteString(c, "ping\n")
	if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
}

func TestShoutAfterEOF(t *testing.T) {
	c := dial(t, Serve(t, func(c net.Conn) { ShoutAfterEOF(c) }))
	_, _ = io.WriteString(c, "hello")
	_ = c.(*net.TCPConn).CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "HELLO" {
		t.Fatalf("read %q, %v", b, err)
	}
}

func TestReplyAndHangUp(t *testing.T) {
	if b, err := io.ReadAll(dial(t, Serve(t, Reply("pong")))); err != nil || string(b) != "pong" {
		t.Fatalf("reply %q, %v", b, err)
	}
	if b, err := io.ReadAll(dial(t, Serve(t, HangUp))); err != nil || len(b) != 0 {
		t.Fatalf("hang-up sent %q, %v", b, err)
	}
}

// A handler still blocked when the test ends is released by the cleanup.
func TestCleanupEndsSilentHandlers(t *testing.T) {
	ended := make(chan struct{})
	var c net.Conn
	t.Run("inner", func(t *testing.T) {
		addr := Serve(t, func(c net.Conn) { Silent(c); close(ended) })
		var err error
		if c, err = net.Dial("tcp", addr); err != nil { // kept open past the subtest
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "x")
		time.Sleep(50 * time.Millisecond) // accepted
	})
	if c != nil {
		defer c.Close()
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("silent handler still running after its test ended")
	}
}

func TestServeHTTPAndFreeAddr(t *testing.T) {
	addr := ServeHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
	if c, err := net.Dial("tcp", FreeAddr(t)); err == nil {
		c.Close()
		t.Fatal("FreeAddr accepted a connection")
	}
}
