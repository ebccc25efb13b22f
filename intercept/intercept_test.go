package intercept

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tether-dev/tether/intercept/record"
)

func TestParse(t *testing.T) {
	if c, n, s, err := ParseTarget("hub/shop/web"); err != nil || c != "hub" || n != "shop" || s != "web" {
		t.Fatalf("%s %s %s %v", c, n, s, err)
	}
	for _, bad := range []string{"hub/shop", "hub//web", "a/b/c/d"} {
		if _, _, _, err := ParseTarget(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	h, err := ParseHeaders([]string{"x-dev=alice", "X-Team=a=b"})
	if err != nil || h["X-Dev"] != "alice" || h["X-Team"] != "a=b" {
		t.Fatalf("%v %v", h, err)
	}
	if _, err := ParseHeaders([]string{"novalue"}); err == nil {
		t.Error("header without = accepted")
	}
}

func TestConflict(t *testing.T) {
	global := record.Record{Name: "web-80", Port: 80}
	alice := record.Record{Name: "web-80", Port: 80, Headers: map[string]string{"X-Dev": "alice"}}
	bob := record.Record{Name: "web-80-2", Port: 80, Headers: map[string]string{"X-Dev": "bob"}}
	other := record.Record{Name: "web-9090", Port: 9090}
	for _, tc := range []struct {
		name string
		live []record.Record
		spec Spec
		want string // "" means allowed
	}{
		{"second global", []record.Record{global}, Spec{Port: 80}, `already intercepted globally by "web-80" (stop it first: tether intercept stop web-80)`},
		{"personal under global", []record.Record{global}, Spec{Port: 80, Headers: map[string]string{"X-Dev": "a"}}, "takes every connection"},
		{"same headers", []record.Record{alice, bob}, Spec{Port: 80, Headers: map[string]string{"X-Dev": "bob"}}, `same headers (headers X-Dev=bob) by "web-80-2"`},
		{"global over personal", []record.Record{alice, bob}, Spec{Port: 80}, "has personal intercepts (web-80, web-80-2); a global intercept would take their requests (stop them first: tether intercept stop web-80; tether intercept stop web-80-2)"},
		{"different headers", []record.Record{alice}, Spec{Port: 80, Headers: map[string]string{"X-Dev": "bob"}}, ""},
		{"more headers", []record.Record{alice}, Spec{Port: 80, Headers: map[string]string{"X-Dev": "alice", "X-Team": "a"}}, ""},
		{"other port", []record.Record{other, global}, Spec{Port: 9090 + 1}, ""},
		{"global on another port", []record.Record{other}, Spec{Port: 80}, ""},
	} {
		err := conflict("hub/shop/web", tc.live, tc.spec)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: allowed, want %q", tc.name, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: %v: want %q", tc.name, err, tc.want)
		}
	}
}

func TestContainerStateSaysWhyAnAgentPodIsNotUp(t *testing.T) {
	p := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
		Name:  "traffic-agent",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: "image tether.local/tether:x is not present"}},
	}}}}
	if got := containerState(p); !strings.Contains(got, "ErrImageNeverPull") || !strings.Contains(got, "tether.local/tether:x") {
		t.Errorf("containerState = %q", got)
	}
	if got := containerState(&corev1.Pod{}); got != "" {
		t.Errorf("containerState of a pod without statuses = %q", got)
	}
}
