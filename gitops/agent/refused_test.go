package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/protocol"
)

// A spec the spoke's API server refuses (a ValidatingAdmissionPolicy, say)
// used to end the session, so it came back first on every reconnect and
// blocked every message behind it. The agent now rejects it (a Nack, and
// the session goes on), keeps what the spoke had, and says why on the
// spoke's copy, whose status carries it to the hub.
func TestRefusedSpecIsRejectedAndRecorded(t *testing.T) {
	a, dyn := testAgent(t, spokeCopy("poison"))
	dyn.(*dynamicfake.FakeDynamicClient).PrependReactor("patch", "applications", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: "Application"}, "poison",
			field.ErrorList{field.Forbidden(field.NewPath("spec"), "denied by policy no-poison")})
	})
	spec := v1alpha1.ApplicationSpec{Source: v1alpha1.Source{RepoURL: "http://git/other.git"}}
	err := a.handle(context.Background(), &protocol.Message{Seq: 1, App: &protocol.AppUpdate{Name: "poison", Spec: &spec, Checksum: protocol.SpecChecksum(&spec)}})
	if !protocol.IsRejected(err) {
		t.Fatalf("handle returned %v; want a rejection, so the message is nacked and not sent again", err)
	}
	a.mu.Lock()
	_, kept := a.desired["poison"]
	a.mu.Unlock()
	if kept {
		t.Error("the refused spec is what the agent now puts back on local edits")
	}
	u, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns).Get(context.Background(), "poison", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	app, _ := v1alpha1.ApplicationFrom(u)
	var msg string
	for _, c := range app.Status.Conditions {
		if c.Type == v1alpha1.ConditionDeliveryError {
			msg = c.Message
		}
	}
	if msg == "" {
		t.Fatalf("no %s condition on the spoke's copy: %+v", v1alpha1.ConditionDeliveryError, app.Status.Conditions)
	}
	t.Logf("condition: %s", msg)
}

// An API server that is only unavailable is not a refusal: the message
// must come again.
func TestUnavailableSpokeIsNotARefusal(t *testing.T) {
	a, dyn := testAgent(t, spokeCopy("web"))
	dyn.(*dynamicfake.FakeDynamicClient).PrependReactor("patch", "applications", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("restarting")
	})
	spec := v1alpha1.ApplicationSpec{Source: v1alpha1.Source{RepoURL: "http://git/other.git"}}
	err := a.handle(context.Background(), &protocol.Message{Seq: 1, App: &protocol.AppUpdate{Name: "web", Spec: &spec}})
	if err == nil || protocol.IsRejected(err) {
		t.Fatalf("handle returned %v; want an error that ends the session unacknowledged", err)
	}
}

// An operation the spoke refuses is answered as failed, with why, and
// rejected rather than retried for ever.
func TestRefusedOperationIsReportedFailed(t *testing.T) {
	a, dyn := testAgent(t, spokeCopy("poison"))
	dyn.(*dynamicfake.FakeDynamicClient).PrependReactor("patch", "applications", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewRequestEntityTooLargeError("limit is 3145728")
	})
	err := a.handle(context.Background(), &protocol.Message{Seq: 1, Operation: &protocol.OperationRequest{App: "poison", Operation: v1alpha1.Operation{ID: "op-1"}}})
	if !protocol.IsRejected(err) {
		t.Fatalf("handle returned %v; want a rejection", err)
	}
	c := a.out.Open()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		m, ok := c.Next()
		if !ok {
			break
		}
		if m.Status != nil && m.Status.Status.OperationState != nil {
			if st := m.Status.Status.OperationState; st.Phase != v1alpha1.OperationFailed || st.Operation.ID != "op-1" {
				t.Fatalf("operation reported as %+v", st)
			}
			return
		}
	}
	t.Fatal("the refused operation was not reported as failed")
}

// Once a message about the Application is handled again, the condition
// that reported the refusal goes.
func TestDeliveryErrorClearsOnTheNextHandledMessage(t *testing.T) {
	a, dyn := testAgent(t, spokeCopy("poison"))
	fake := dyn.(*dynamicfake.FakeDynamicClient)
	refusing := true
	fake.PrependReactor("patch", "applications", func(k8stesting.Action) (bool, runtime.Object, error) {
		if refusing {
			return true, nil, apierrors.NewBadRequest("denied")
		}
		return false, nil, nil
	})
	op := func(id string) *protocol.Message {
		return &protocol.Message{Seq: 1, Operation: &protocol.OperationRequest{App: "poison", Operation: v1alpha1.Operation{ID: id}}}
	}
	if err := a.handle(context.Background(), op("op-1")); !protocol.IsRejected(err) {
		t.Fatalf("handle returned %v", err)
	}
	refusing = false
	// The agent reads the informer's copy to see whether there is a
	// condition to clear: wait for it to show the one just written.
	deadline := time.Now().Add(5 * time.Second)
	for {
		obj, ok, _ := a.apps.GetStore().GetByKey(ns + "/poison")
		if ok {
			if app, _ := v1alpha1.ApplicationFrom(obj.(*unstructured.Unstructured)); app != nil && len(app.Status.Conditions) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the informer never showed the condition")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.handle(context.Background(), op("op-2")); err != nil {
		t.Fatalf("handle: %v", err)
	}
	u, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns).Get(context.Background(), "poison", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	app, _ := v1alpha1.ApplicationFrom(u)
	for _, c := range app.Status.Conditions {
		if c.Type == v1alpha1.ConditionDeliveryError {
			t.Fatalf("still %s after a handled operation: %s", c.Type, c.Message)
		}
	}
}

func TestRefusedTellsAdmissionDenialsFromPassingFailures(t *testing.T) {
	gr := schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "applications"}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{apierrors.NewForbidden(gr, "web", errors.New(`admission webhook "deny.example" denied the request: no`)), true},
		{apierrors.NewForbidden(gr, "web", errors.New(`ValidatingAdmissionPolicy 'no-poison' with binding 'b' denied request: no`)), true},
		{apierrors.NewForbidden(gr, "web", errors.New(`User "system:serviceaccount:tether-system:agent" cannot patch resource`)), false},
		{apierrors.NewInvalid(schema.GroupKind{Kind: "Application"}, "web", nil), true},
		{apierrors.NewServiceUnavailable("down"), false},
		{apierrors.NewTimeoutError("slow", 1), false},
		{nil, false},
	} {
		if got := refused(c.err); got != c.want {
			t.Errorf("refused(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
