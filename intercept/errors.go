package intercept

import (
	"errors"
	"strings"
)

// The errors below say what is wrong in the package's own words; the
// tether command and the terminal UI look for them with errors.As and
// name the field or add the step the way the user gives or takes it (a
// flag and a command, a form field and a key).

// FieldError says what is wrong with one field of a Request or Spec.
// Field is the Go field (To, Port, Headers, Name, AgentImage); the
// message is Before, the field's name, After, so that each front end can
// name the field its own way with Say.
type FieldError struct {
	Field         string
	Before, After string
	Err           error // the cause, if any
}

func (e *FieldError) Error() string { return e.Say(FieldNoun(e.Field)) }
func (e *FieldError) Unwrap() error { return e.Err }

// Say is the message with the field named name.
func (e *FieldError) Say(name string) string { return e.Before + name + e.After }

// FieldNoun names a Request field in words, for a caller with no other
// name for it.
func FieldNoun(field string) string {
	switch field {
	case "To":
		return "the local address"
	case "Port":
		return "the port"
	case "Headers":
		return "header"
	case "Name":
		return "the intercept name"
	case "AgentImage":
		return "the traffic-agent image"
	}
	return strings.ToLower(field)
}

// ConflictError says an intercept cannot start while the intercepts
// Names hold what it asks for; stopping them makes room.
type ConflictError struct {
	Names []string
	Err   error
}

func (e *ConflictError) Error() string { return e.Err.Error() }
func (e *ConflictError) Unwrap() error { return e.Err }

// ErrNoAgentImage says tether's image is not known for a cluster whose
// traffic-agent runs as a pod: the GitOps system is not up there, so no
// Deployment of it names the image, and none was given.
var ErrNoAgentImage = errors.New("no traffic-agent image")

// LeftoverError says an earlier intercept of Namespace/Service left
// objects that are in the way; uninstalling intercepts removes them.
type LeftoverError struct {
	Namespace, Service string
	Err                error
}

func (e *LeftoverError) Error() string { return e.Err.Error() }
func (e *LeftoverError) Unwrap() error { return e.Err }
