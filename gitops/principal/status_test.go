package principal

import (
	"context"
	"fmt"
	"strings"
	"sync"
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

// refuseStatus makes the fake hub answer status updates that refuse says
// to refuse with that error.
func refuseStatus(dyn *dynamicfake.FakeDynamicClient, refuse func(u *unstructured.Unstructured) error) {
	dyn.PrependReactor("update", "applications", func(a k8stesting.Action) (bool, runtime.Object, error) {
		up, ok := a.(k8stesting.UpdateAction)
		if !ok || up.GetSubresource() != "status" {
			return false, nil, nil
		}
		if err := refuse(up.GetObject().(*unstructured.Unstructured)); err != nil {
			return true, nil, err
		}
		return false, nil, nil
	})
}

func hubStatus(t *testing.T, dyn *dynamicfake.FakeDynamicClient, agent, name string) v1alpha1.ApplicationStatus {
	t.Helper()
	u, err := dyn.Resource(v1alpha1.ApplicationsResource).Namespace(agent).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	app, err := v1alpha1.ApplicationFrom(u)
	if err != nil {
		t.Fatal(err)
	}
	return app.Status
}

func condition(st v1alpha1.ApplicationStatus, typ string) string {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c.Message
		}
	}
	return ""
}

func bigStatus(resources int) *v1alpha1.ApplicationStatus {
	st := &v1alpha1.ApplicationStatus{Sync: v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusSynced, Revision: "abc"}}
	for i := range resources {
		st.Resources = append(st.Resources, v1alpha1.ResourceStatus{Version: "v1", Kind: "ConfigMap", Namespace: "sample",
			Name: fmt.Sprintf("config-%06d-%s", i, strings.Repeat("x", 200)), Status: v1alpha1.SyncStatusSynced})
	}
	return st
}

// A status the hub refuses as too large used to be retried every second
// for ever and never shown. It is shortened to what the hub takes, with a
// condition that says so.
func TestTooLargeStatusIsTruncatedWithANote(t *testing.T) {
	p, dyn := testPrincipal(t, hubApp("spoke-1", "huge", ""))
	const limit = 200 << 10
	refuseStatus(dyn, func(u *unstructured.Unstructured) error {
		if b, _ := u.MarshalJSON(); len(b) > limit {
			return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", limit))
		}
		return nil
	})
	st := bigStatus(10000) // over 2 MiB
	if err := p.writeStatus(context.Background(), "spoke-1", "huge", st); err != nil {
		t.Fatalf("writeStatus: %v", err)
	}
	got := hubStatus(t, dyn, "spoke-1", "huge")
	note := condition(got, v1alpha1.ConditionStatusTruncated)
	if note == "" || len(got.Resources) == 0 || len(got.Resources) >= len(st.Resources) {
		t.Fatalf("hub shows %d of %d resources, note %q", len(got.Resources), len(st.Resources), note)
	}
	if got.Sync.Revision != "abc" {
		t.Errorf("the shortened status lost its sync revision: %+v", got.Sync)
	}
	t.Logf("note: %s", note)
}

// A status the hub refuses for good is not written again and again: the
// hub's copy keeps its status and says why.
func TestRefusedStatusIsRecordedNotRetried(t *testing.T) {
	p, dyn := testPrincipal(t, hubApp("spoke-1", "bad", ""))
	refuseStatus(dyn, func(u *unstructured.Unstructured) error {
		if rev, _, _ := unstructured.NestedString(u.Object, "status", "sync", "revision"); rev == "bad" {
			return apierrors.NewInvalid(schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: "Application"}, "bad",
				field.ErrorList{field.Invalid(field.NewPath("status", "sync", "revision"), "bad", "denied")})
		}
		return nil
	})
	err := p.writeStatus(context.Background(), "spoke-1", "bad", &v1alpha1.ApplicationStatus{Sync: v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusSynced, Revision: "bad"}})
	if err != nil {
		t.Fatalf("writeStatus returned %v; a refused status is recorded, not retried", err)
	}
	if msg := condition(hubStatus(t, dyn, "spoke-1", "bad"), v1alpha1.ConditionDeliveryError); !strings.Contains(msg, "denied") {
		t.Fatalf("DeliveryError on the hub: %q", msg)
	}
}

// While the hub cannot take a status, the principal tries again after
// waits that grow, not every second for ever.
func TestFailedStatusWritesBackOff(t *testing.T) {
	p, dyn := testPrincipal(t, hubApp("spoke-1", "web", ""))
	p.firstStatusRetry, p.maxStatusRetry = 40*time.Millisecond, 2*time.Second
	var mu sync.Mutex
	var at []time.Time
	refuseStatus(dyn, func(*unstructured.Unstructured) error {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		return apierrors.NewServiceUnavailable("hub restarting")
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.statusWriter(ctx)
	if err := p.handle(ctx, "spoke-1", &protocol.Message{Seq: 1, Status: &protocol.StatusUpdate{Name: "web", Status: bigStatus(1)}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(8 * time.Second)
	for {
		mu.Lock()
		n := len(at)
		mu.Unlock()
		if n >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(at) < 5 {
		t.Fatalf("%d attempts in 8 s", len(at))
	}
	// RetryOnConflict makes one attempt per write: the gaps are the waits.
	// Timers fire late on a busy machine, never early: each wait is at
	// least its step, and the fourth (8 steps) well over the first.
	for i := 1; i < 5; i++ {
		if gap, least := at[i].Sub(at[i-1]), p.firstStatusRetry<<(i-1); gap < least {
			t.Errorf("wait %d was %v, under %v (%v)", i, gap, least, at)
		}
	}
	if first, fourth := at[1].Sub(at[0]), at[4].Sub(at[3]); fourth < 3*first {
		t.Errorf("the fourth wait (%v) is not well over the first (%v): not backing off", fourth, first)
	}
}

// A message the agent refused is dropped and the hub's copy says why:
// there may be no spoke copy to carry the condition up.
func TestNackedSpecIsRecordedOnTheHub(t *testing.T) {
	p, dyn := testPrincipal(t, hubApp("spoke-1", "poison", ""))
	p.rejected("spoke-1", protocol.Message{App: &protocol.AppUpdate{Name: "poison"}}, "denied by policy no-poison")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if msg := condition(hubStatus(t, dyn, "spoke-1", "poison"), v1alpha1.ConditionDeliveryError); strings.Contains(msg, "no-poison") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no DeliveryError on the hub's copy")
}
