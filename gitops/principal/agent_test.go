package principal

import (
	"context"
	"log/slog"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/protocol"
)

// A new stream creates the agent's Agent object; heartbeats and the end
// of the stream only update it, so an Agent deleted because its spoke left
// the fleet is not brought back by that spoke's last heartbeat or
// disconnect.
func TestOnlyANewStreamCreatesTheAgentObject(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		v1alpha1.ApplicationsResource: "ApplicationList",
		v1alpha1.AgentsResource:       "AgentList",
	})
	p := &Principal{
		opts: Options{Namespace: "tether-system"}, log: slog.New(slog.DiscardHandler), dyn: dyn,
		outboxes: map[string]*protocol.Outbox{},
		apps:     dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0).ForResource(v1alpha1.ApplicationsResource).Informer(),
	}
	ctx := context.Background()
	agents := dyn.Resource(v1alpha1.AgentsResource).Namespace("tether-system")
	connected := func(st *v1alpha1.AgentStatus) { st.Connected = true }
	disconnected := func(st *v1alpha1.AgentStatus) { st.Connected = false }

	p.updateAgent(ctx, "spoke-3", connected)
	if _, err := agents.Get(ctx, "spoke-3", metav1.GetOptions{}); err != nil {
		t.Fatalf("a connected agent has no Agent object: %v", err)
	}
	p.touchAgent(ctx, "spoke-3", disconnected)
	u, err := agents.Get(ctx, "spoke-3", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c, _, _ := unstructured.NestedBool(u.Object, "status", "connected"); c {
		t.Error("the disconnect did not reach the existing Agent object")
	}

	if err := agents.Delete(ctx, "spoke-3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	p.touchAgent(ctx, "spoke-3", disconnected)
	if _, err := agents.Get(ctx, "spoke-3", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a disconnect brought a deleted Agent object back (err %v)", err)
	}
}
