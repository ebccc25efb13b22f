package protocol

import (
	"sync"
	"time"
)

// Observer is told what crosses one stream, for metrics. Kinds are
// Describe's. Its methods run on the stream's sending and receiving
// goroutines, one event at a time, and must not block.
type Observer interface {
	// Sent: a numbered message of ours went out (again, after a
	// reconnect: a resend counts once more).
	Sent(kind string)
	// Acked: the peer acknowledged one of ours, that is it handled it;
	// queued is when we queued it (Message.Queued; zero if unstamped).
	Acked(kind string, queued time.Time)
	// Nacked: the peer refused one of ours for good.
	Nacked(kind string)
	// Received: a numbered message of the peer's came in.
	Received(kind string)
	// Handled: we acknowledged one of the peer's messages; queued is
	// when the peer queued it, by the peer's clock.
	Handled(kind string, queued time.Time)
	// Rejected: we refused one of the peer's messages (a Nack).
	Rejected(kind string)
}

// Observe returns s telling o what crosses it; s itself if o is nil. It
// wraps one stream: sequence numbers mean something only on the stream
// that gave them out, so every stream gets its own.
func Observe(s Stream, o Observer) Stream {
	if o == nil {
		return s
	}
	return &observed{Stream: s, o: o}
}

// inFlight is a numbered message awaiting its acknowledgement.
type inFlight struct {
	seq    uint64
	kind   string
	queued time.Time
}

type observed struct {
	Stream
	o  Observer
	mu sync.Mutex
	// out are ours the peer has not answered; in are the peer's we have
	// not. Both in sequence order, which is sending order.
	out, in []inFlight
}

func (s *observed) Send(m *Message) error {
	s.mu.Lock()
	// Noted before it goes: the peer's ack may be read before Send
	// returns.
	if m.Seq > 0 {
		kind, _ := Describe(m)
		s.out = append(s.out, inFlight{seq: m.Seq, kind: kind, queued: m.Queued})
		s.o.Sent(kind)
	}
	// A nack travels with an ack covering it: the nack first, or the ack
	// would count the refused message as handled.
	if m.Nack != nil {
		if f, ok := take(&s.in, m.Nack.Seq); ok {
			s.o.Rejected(f.kind)
		}
	}
	for _, f := range upTo(&s.in, m.Ack) {
		s.o.Handled(f.kind, f.queued)
	}
	s.mu.Unlock()
	return s.Stream.Send(m)
}

func (s *observed) Recv() (*Message, error) {
	m, err := s.Stream.Recv()
	if err != nil {
		return m, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.Nack != nil {
		if f, ok := take(&s.out, m.Nack.Seq); ok {
			s.o.Nacked(f.kind)
		}
	}
	for _, f := range upTo(&s.out, m.Ack) {
		s.o.Acked(f.kind, f.queued)
	}
	if m.Seq > 0 {
		kind, _ := Describe(m)
		s.in = append(s.in, inFlight{seq: m.Seq, kind: kind, queued: m.Queued})
		s.o.Received(kind)
	}
	return m, nil
}

// upTo removes and returns the messages numbered up to ack.
func upTo(l *[]inFlight, ack uint64) []inFlight {
	if ack == 0 {
		return nil
	}
	n := 0
	for n < len(*l) && (*l)[n].seq <= ack {
		n++
	}
	done := (*l)[:n:n]
	*l = (*l)[n:]
	return done
}

// take removes and returns the message numbered seq.
func take(l *[]inFlight, seq uint64) (inFlight, bool) {
	for i, f := range *l {
		if f.seq == seq {
			*l = append((*l)[:i:i], (*l)[i+1:]...)
			return f, true
		}
	}
	return inFlight{}, false
}

// stamp notes when m was queued, unless its sender already did.
func stamp(m *Message) {
	if m.Queued.IsZero() {
		m.Queued = time.Now()
	}
}
