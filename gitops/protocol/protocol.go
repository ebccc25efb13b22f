package protocol

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"google.golang.org/grpc"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
)

// Names of the gRPC service and its one method.
const (
	ServiceName = "tether.gitops.v1alpha1.Fleet"
	MethodName  = "Connect"
	FullMethod  = "/" + ServiceName + "/" + MethodName
)

// Modes an agent can run in.
const (
	// ModeManaged: the hub is the source of truth for the spoke's
	// Applications.
	ModeManaged = "managed"
)

// Message is one frame on the stream. Exactly one payload field is set,
// except for pure acknowledgements, which carry only Ack.
type Message struct {
	// Seq numbers messages that must be acknowledged; 0 for acks and
	// pings. Numbering restarts with every stream.
	Seq uint64 `json:"seq,omitempty"`
	// Ack acknowledges every message of the peer up to and including it.
	Ack uint64 `json:"ack,omitempty"`
	// Nack, added after the first release, says the message it names
	// could not be handled and never will be; it travels with an Ack
	// covering that message, so a peer that does not know Nack takes it
	// as delivered and moves on too, rather than resending it for ever.
	Nack *Nack `json:"nack,omitempty"`
	// Queued, added after the first release, is when the sender queued
	// the message (Outbox stamps it), by the sender's clock: both ends'
	// metrics measure propagation from it. A peer that does not know it
	// ignores it; one that gets none measures nothing.
	Queued time.Time `json:"queued,omitzero"`

	Hello     *Hello            `json:"hello,omitempty"`
	App       *AppUpdate        `json:"app,omitempty"`
	Status    *StatusUpdate     `json:"status,omitempty"`
	Operation *OperationRequest `json:"operation,omitempty"`
	Refresh   *RefreshRequest   `json:"refresh,omitempty"`
	// AppRefresh is added after the first release: an agent that does
	// not know it ignores it (and the hub's request waits for the next
	// agent that does).
	AppRefresh *AppRefreshRequest `json:"appRefresh,omitempty"`

	// undecodable is why a frame whose Seq could be read could not be
	// decoded as a whole (Codec); Serve nacks it instead of ending the
	// stream, which would bring it back first on every reconnect.
	undecodable string
}

// Nack is a negative acknowledgement: the receiver refused the message
// numbered Seq (see Reject) and went on with the next.
type Nack struct {
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

// Describe names a message for logs and conditions: its kind and the
// Application (or repository) it is about.
func Describe(m *Message) (kind, name string) {
	switch {
	case m.Hello != nil:
		return "hello", ""
	case m.App != nil:
		return "app", m.App.Name
	case m.Status != nil:
		return "status", m.Status.Name
	case m.Operation != nil:
		return "operation", m.Operation.App
	case m.AppRefresh != nil:
		return "appRefresh", m.AppRefresh.App
	case m.Refresh != nil:
		return "refresh", m.Refresh.RepoURL
	}
	return "unknown", ""
}

// Hello is the agent's first message on every stream.
type Hello struct {
	Version string `json:"version"`
	Mode    string `json:"mode"`
	// Apps maps each Application the agent holds to the checksum of its
	// spec, so the principal sends only what differs.
	Apps map[string]string `json:"apps"`
	// Restarts, added after the first release, is how often the agent's
	// process was restarted (by the workbench's supervisor, or the
	// kubelet in a Pod); the principal shows it on the Agent. An older
	// agent says nothing, which reads as none.
	Restarts int `json:"restarts,omitempty"`
}

// AppUpdate carries the spec of a managed Application, or its deletion.
type AppUpdate struct {
	Name     string                    `json:"name"`
	Deleted  bool                      `json:"deleted,omitempty"`
	Spec     *v1alpha1.ApplicationSpec `json:"spec,omitempty"`
	Checksum string                    `json:"checksum,omitempty"`
}

// StatusUpdate carries an Application's status from the spoke.
type StatusUpdate struct {
	Name    string                      `json:"name"`
	Deleted bool                        `json:"deleted,omitempty"`
	Status  *v1alpha1.ApplicationStatus `json:"status,omitempty"`
	// Refreshed is the ID of the newest AppRefreshRequest for this
	// Application the spoke has carried out: this status was written
	// after that refresh's fetch and compare. It rides on every status
	// (statuses coalesce, so it must survive a newer one replacing the
	// status that first carried it); the principal clears the hub's
	// refresh annotation once it has written a status carrying its value.
	Refreshed string `json:"refreshed,omitempty"`
	// At, added after the first release, is when the spoke read this
	// status from its copy of the Application, by the spoke's clock: the
	// principal measures spoke-to-hub propagation from it to the write on
	// the hub. It rides with the status through the principal's
	// coalescing, which Message.Queued does not. Zero from an older agent.
	At time.Time `json:"at,omitzero"`
}

// OperationRequest carries a one-shot operation for an Application.
type OperationRequest struct {
	App       string             `json:"app"`
	Operation v1alpha1.Operation `json:"operation"`
}

// RefreshRequest asks the agent to fetch a repository now (a push arrived).
type RefreshRequest struct {
	RepoURL string `json:"repoURL"`
}

// AppRefreshRequest asks the agent to refresh one Application now (fetch
// Git and compare): someone set the refresh annotation on the hub's copy.
// It is an intent; running it twice costs one more fetch and changes
// nothing else. The agent sets the same annotation on the spoke's copy,
// which the engine there serves and removes, and answers with
// StatusUpdate.Refreshed.
type AppRefreshRequest struct {
	App string `json:"app"`
	// ID is the value of the hub's refresh annotation, so a newer request
	// (another value) is never taken as done by an older one's answer.
	ID string `json:"id"`
}

// SpecChecksum is the checksum Hello and AppUpdate carry.
func SpecChecksum(spec *v1alpha1.ApplicationSpec) string {
	b, _ := json.Marshal(spec)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// Codec encodes Messages as JSON. It is forced on both ends
// (grpc.ForceCodec / grpc.ForceServerCodec), so nothing is registered
// globally and no generated code is needed.
type Codec struct{}

// Marshal implements encoding.Codec.
func (Codec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements encoding.Codec. A Message that cannot be decoded
// but whose sequence number can is returned with only that (and its Ack),
// marked undecodable, so the receiver can refuse that one message (Serve
// nacks it) rather than break the stream on it again and again.
func (Codec) Unmarshal(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	m, ok := v.(*Message)
	if err == nil || !ok {
		return err
	}
	var head struct {
		Seq uint64 `json:"seq"`
		Ack uint64 `json:"ack"`
	}
	if json.Unmarshal(data, &head) != nil || head.Seq == 0 {
		return err
	}
	*m = Message{Seq: head.Seq, Ack: head.Ack, undecodable: err.Error()}
	return nil
}

// Name implements encoding.Codec.
func (Codec) Name() string { return "json" }

// Stream is either end of the stream.
type Stream interface {
	Send(*Message) error
	Recv() (*Message, error)
	Context() context.Context
}

// Handler serves one agent's stream on the principal.
type Handler func(Stream) error

// ServiceDesc describes the service for grpc.Server.RegisterService.
func ServiceDesc(h Handler) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: ServiceName,
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    MethodName,
			ServerStreams: true,
			ClientStreams: true,
			Handler: func(_ any, ss grpc.ServerStream) error {
				return h(serverStream{ss})
			},
		}},
	}
}

type serverStream struct{ grpc.ServerStream }

func (s serverStream) Send(m *Message) error { return s.SendMsg(m) }
func (s serverStream) Recv() (*Message, error) {
	m := &Message{}
	return m, s.RecvMsg(m)
}

// Dial opens the stream from an agent.
func Dial(ctx context.Context, cc *grpc.ClientConn) (Stream, error) {
	desc := &grpc.StreamDesc{StreamName: MethodName, ServerStreams: true, ClientStreams: true}
	cs, err := cc.NewStream(ctx, desc, FullMethod, grpc.ForceCodec(Codec{}))
	if err != nil {
		return nil, err
	}
	return clientStream{cs}, nil
}

type clientStream struct{ grpc.ClientStream }

func (s clientStream) Send(m *Message) error { return s.SendMsg(m) }
func (s clientStream) Recv() (*Message, error) {
	m := &Message{}
	return m, s.RecvMsg(m)
}
