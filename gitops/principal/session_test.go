package principal

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/protocol"
)

// agentStream is an agent's stream as the principal's handler sees it,
// driven step by step by the test: Recv returns what is put on recv
// (EOF once it is closed or the stream's context ends), Send puts on sent.
type agentStream struct {
	ctx     context.Context
	recv    chan *protocol.Message
	sent    chan *protocol.Message
	waiting chan struct{} // a token each time Recv is about to block
}

// newAgentStream is a stream from agent name, with the verified client
// certificate gRPC would put in its context.
func newAgentStream(t *testing.T, name string) *agentStream {
	t.Helper()
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: name, Organization: []string{AgentOrganization}}}
	ctx := peer.NewContext(context.Background(), &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 40000},
		AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}},
	})
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	return &agentStream{ctx: ctx, recv: make(chan *protocol.Message, 8), sent: make(chan *protocol.Message, 64), waiting: make(chan struct{}, 64)}
}

func (s *agentStream) Context() context.Context { return s.ctx }

func (s *agentStream) Send(m *protocol.Message) error {
	s.sent <- m
	return nil
}

func (s *agentStream) Recv() (*protocol.Message, error) {
	s.waiting <- struct{}{}
	select {
	case m, ok := <-s.recv:
		if !ok {
			return nil, io.EOF
		}
		return m, nil
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

func hello() *protocol.Message {
	return &protocol.Message{Hello: &protocol.Hello{Version: "test", Mode: protocol.ModeManaged, Apps: map[string]string{}}}
}

func statusMsg(seq uint64, rev string) *protocol.Message {
	return &protocol.Message{Seq: seq, Status: &protocol.StatusUpdate{Name: "web", Status: &v1alpha1.ApplicationStatus{Sync: v1alpha1.SyncStatus{Revision: rev}}}}
}

// waitAck waits until the principal acknowledged seq on s.
func waitAck(t *testing.T, s *agentStream, seq uint64) {
	t.Helper()
	for deadline := time.After(5 * time.Second); ; {
		select {
		case m := <-s.sent:
			if m.Ack >= seq {
				return
			}
		case <-deadline:
			t.Fatalf("seq %d never acknowledged", seq)
		}
	}
}

// An agent reconnects while the old stream's receiver holds a status it
// read before the break. The new stream's newer status is recorded; the
// old one, handed on late, must not overwrite it.
func TestOldStreamsLateMessageDoesNotOverwriteTheNewStreams(t *testing.T) {
	p, _ := testPrincipal(t)
	old := newAgentStream(t, "spoke-1")
	old.recv <- hello()
	oldDone := make(chan error, 1)
	go func() { oldDone <- p.serve(old) }()
	<-old.waiting // the hello
	<-old.waiting // the session's receiver waits for the next message

	cur := newAgentStream(t, "spoke-1")
	cur.recv <- hello()
	curDone := make(chan error, 1)
	go func() { curDone <- p.serve(cur) }()
	<-cur.waiting
	cur.recv <- statusMsg(1, "v2")
	waitAck(t, cur, 1)

	// The old connection's last message, read before the break, is
	// handed on only now.
	old.recv <- statusMsg(7, "v1")
	select {
	case <-oldDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced stream's handler did not return")
	}
	time.Sleep(100 * time.Millisecond)
	p.mu.Lock()
	got := p.pendingStatus["spoke-1/web"]
	p.mu.Unlock()
	if got == nil || got.Status.Sync.Revision != "v2" {
		t.Errorf("pending status after the old stream's late message: %+v, want v2", got)
	}
	select {
	case err := <-curDone:
		t.Errorf("the new stream's handler returned: %v", err)
	default:
	}
}

// Streams of one agent arriving back to back end in one session, the
// last: the one in between ends while it waits for the first, and what
// the agent is owed goes down the last stream only.
func TestBackToBackStreamsEndInTheLastOne(t *testing.T) {
	p, _ := testPrincipal(t)
	streams := make([]*agentStream, 3)
	done := make([]chan error, 3)
	for i := range streams {
		p.mu.Lock()
		before := p.sessions["spoke-1"]
		p.mu.Unlock()
		s := newAgentStream(t, "spoke-1")
		s.recv <- hello()
		streams[i], done[i] = s, make(chan error, 1)
		go func() { done[i] <- p.serve(s) }()
		// In order: each stream has taken the agent's place before the
		// next comes (the one in between does not wait to serve).
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			p.mu.Lock()
			now := p.sessions["spoke-1"]
			p.mu.Unlock()
			if now != nil && now != before {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stream %d never took the agent's place", i)
			}
		}
	}
	for i := range 2 {
		select {
		case <-done[i]:
		case <-time.After(5 * time.Second):
			t.Fatalf("stream %d still served after newer ones came", i)
		}
	}
	p.outbox("spoke-1").PutIntent(protocol.Message{Refresh: &protocol.RefreshRequest{RepoURL: "r"}})
	for deadline := time.After(5 * time.Second); ; {
		select {
		case m := <-streams[2].sent:
			if m.Refresh == nil {
				continue
			}
		case <-deadline:
			t.Fatal("the last stream was not served")
		}
		break
	}
	for i := range 2 {
		for len(streams[i].sent) > 0 {
			if m := <-streams[i].sent; m.Refresh != nil {
				t.Errorf("stream %d, replaced, got the refresh", i)
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.sessions) != 1 {
		t.Errorf("%d sessions, want the last stream's", len(p.sessions))
	}
}
