package protocol

import "errors"

// RejectedError is a handler's answer for a message it can never handle
// (the API server refused it as invalid, too large, ...): Serve answers
// it with a Nack and goes on with the next message, where any other
// handler error ends the session so the message comes again. Telling the
// two apart is the handler's job, because only it knows whether trying
// again can help.
type RejectedError struct{ Err error }

func (e *RejectedError) Error() string { return e.Err.Error() }
func (e *RejectedError) Unwrap() error { return e.Err }

// Reject marks err as permanent for the message being handled (nil stays
// nil).
func Reject(err error) error {
	if err == nil {
		return nil
	}
	return &RejectedError{Err: err}
}

// IsRejected says whether err, or one it wraps, came from Reject.
func IsRejected(err error) bool {
	var r *RejectedError
	return errors.As(err, &r)
}
