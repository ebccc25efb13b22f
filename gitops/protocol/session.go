package protocol

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Serve pumps one stream until it breaks or ctx ends: it sends what the
// outbox holds, passes every received payload to handle in order, and
// acknowledges each once handle returned nil. A handle error ends the
// session without acknowledging, so the peer sends the message again on
// the next stream, unless it is a RejectedError (Reject): then the message
// is answered with a Nack (and an Ack covering it) and the session goes on,
// so one message the receiver can never handle does not stop every later
// one. A frame the Codec could not decode past its sequence number is
// nacked the same way, without reaching handle. A Nack from the peer drops
// the entry it names; rejected, if not nil, is told which and why.
//
// Serve opens its own cursor on out (Outbox.Open), so nothing the
// goroutines of an earlier session still do can number, send or remove an
// entry of this one. It returns once the message being handled, if any,
// has been handled, and no message reaches handle after it returned: a
// caller that starts the next session after Serve returned (the agent) or
// after the previous one's Serve returned (the principal) never has two
// sessions' handlers run at once. handle gets a context that ends with the
// session. Serve does not wait for a Send or Recv blocked on a dead
// connection; they end with the stream.
func Serve(ctx context.Context, s Stream, out *Outbox, handle func(context.Context, *Message) error, rejected func(m Message, reason string)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cur := out.Open()

	// gRPC allows one sender at a time, so acknowledgements go through the
	// sending goroutine; only the highest pending one matters.
	var mu sync.Mutex
	var pendingAck uint64
	var pendingNacks []Nack
	ackWake := make(chan struct{}, 1)
	// handling is held while a message is handled; the receiver checks,
	// holding it, that the session still runs before it hands one over.
	var handling sync.Mutex

	errs := make(chan error, 2)
	go func() {
		for {
			mu.Lock()
			ack := pendingAck
			pendingAck = 0
			nacks := pendingNacks
			pendingNacks = nil
			mu.Unlock()
			for i := range nacks {
				// Each carries an Ack of its message: a peer that does
				// not know Nack drops the message all the same.
				if err := s.Send(&Message{Ack: nacks[i].Seq, Nack: &nacks[i]}); err != nil {
					errs <- err
					return
				}
			}
			if ack > 0 {
				if err := s.Send(&Message{Ack: ack}); err != nil {
					errs <- err
					return
				}
			}
			for ctx.Err() == nil {
				m, ok := cur.Next()
				if !ok {
					break
				}
				if err := s.Send(m); err != nil {
					errs <- err
					return
				}
			}
			select {
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			case <-out.Wake():
			case <-ackWake:
			}
		}
	}()
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				errs <- err
				return
			}
			if m.Nack != nil {
				if dropped, ok := cur.Nack(m.Nack.Seq); ok && rejected != nil {
					rejected(dropped, m.Nack.Reason)
				}
			}
			if m.Ack > 0 {
				cur.Ack(m.Ack)
			}
			if m.Seq == 0 {
				continue
			}
			handling.Lock()
			if ctx.Err() != nil {
				handling.Unlock()
				return
			}
			if m.undecodable != "" {
				err = Reject(fmt.Errorf("undecodable message: %s", m.undecodable))
			} else {
				err = handle(ctx, m)
			}
			handling.Unlock()
			rejectedErr := IsRejected(err)
			if err != nil && !rejectedErr {
				errs <- err
				return
			}
			mu.Lock()
			if rejectedErr {
				pendingNacks = append(pendingNacks, Nack{Seq: m.Seq, Reason: err.Error()})
			} else if m.Seq > pendingAck {
				pendingAck = m.Seq
			}
			mu.Unlock()
			select {
			case ackWake <- struct{}{}:
			default:
			}
		}
	}()
	var err error
	select {
	case err = <-errs:
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	// Wait for the message being handled; the receiver hands over no more.
	handling.Lock()
	handling.Unlock() //nolint:staticcheck // an empty critical section is the wait
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
