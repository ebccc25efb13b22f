package protocol

import (
	"context"
	"errors"
	"sync"
)

// Serve pumps one stream until it breaks or ctx ends: it sends what the
// outbox holds, passes every received payload to handle in order, and
// acknowledges each once handle returned nil. A handle error ends the
// session without acknowledging, so the peer sends the message again on
// the next stream.
func Serve(ctx context.Context, s Stream, out *Outbox, handle func(*Message) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out.Reset()

	// gRPC allows one sender at a time, so acknowledgements go through the
	// sending goroutine; only the highest pending one matters.
	var mu sync.Mutex
	var pendingAck uint64
	ackWake := make(chan struct{}, 1)

	errs := make(chan error, 2)
	go func() {
		for {
			mu.Lock()
			ack := pendingAck
			pendingAck = 0
			mu.Unlock()
			if ack > 0 {
				if err := s.Send(&Message{Ack: ack}); err != nil {
					errs <- err
					return
				}
			}
			for {
				m, ok := out.Next()
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
			if m.Ack > 0 {
				out.Ack(m.Ack)
			}
			if m.Seq == 0 {
				continue
			}
			if err := handle(m); err != nil {
				errs <- err
				return
			}
			mu.Lock()
			if m.Seq > pendingAck {
				pendingAck = m.Seq
			}
			mu.Unlock()
			select {
			case ackWake <- struct{}{}:
			default:
			}
		}
	}()
	err := <-errs
	cancel()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}
