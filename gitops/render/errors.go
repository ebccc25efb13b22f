package render

import (
	"errors"
	"strconv"
)

// RenderError is one problem found while rendering. File is relative to the
// checkout root and slash-separated so it reads the same on every agent and
// can be shown to the user as-is; Line is 1-based within File, 0 when the
// problem is not tied to one line (a missing kind, a Kustomize failure).
type RenderError struct {
	File string
	Line int
	Msg  string
}

func (e *RenderError) Error() string {
	switch {
	case e.File == "":
		return e.Msg
	case e.Line > 0:
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	default:
		return e.File + ": " + e.Msg
	}
}

// RenderErrors flattens an error returned by Render into its individual
// problems, in the order they were found, so a caller can list them in a
// status condition or count them. Errors that are not *RenderError (none are
// expected) are wrapped with an empty File rather than dropped.
func RenderErrors(err error) []*RenderError {
	if err == nil {
		return nil
	}
	var out []*RenderError
	var walk func(error)
	walk = func(err error) {
		if re, ok := err.(*RenderError); ok {
			out = append(out, re)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var re *RenderError
		if errors.As(err, &re) {
			out = append(out, re)
			return
		}
		out = append(out, &RenderError{Msg: err.Error()})
	}
	walk(err)
	return out
}
