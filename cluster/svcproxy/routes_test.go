package svcproxy

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The routes record is read where the fleet has the proxy write it, and
// says which address a Service port has, or why there is none.
func TestRoutesRecord(t *testing.T) {
	state := t.TempDir()
	if got, want := RoutesFile(state, "spoke-1"), filepath.Join(state, "fleet", "routes-spoke-1.json"); got != want {
		t.Fatalf("RoutesFile = %s, want %s", got, want)
	}
	path := RoutesFile(state, "spoke-1")
	if _, err := LookupRoute(path, "sample", "web", 80); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no record: %v, want fs.ErrNotExist", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal([]Route{{Namespace: "sample", Service: "web", Port: 80, Address: "127.0.0.1:4000"}})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if addr, err := LookupRoute(path, "sample", "web", 80); err != nil || addr != "127.0.0.1:4000" {
		t.Errorf("LookupRoute = %q, %v", addr, err)
	}
	if _, err := LookupRoute(path, "sample", "web", 81); !errors.Is(err, ErrNotServed) {
		t.Errorf("another port: %v, want ErrNotServed", err)
	}
	cs := fake.NewClientset(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "sample"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	if url, err := Reach(context.Background(), cs, path, "sample", "web", 80); err != nil || url != "http://127.0.0.1:4000/" {
		t.Errorf("Reach = %q, %v", url, err)
	}
	if url := ReachAddr(context.Background(), fake.NewClientset(), "sample", "web", 80, "127.0.0.1:4000"); url != "127.0.0.1:4000" {
		t.Errorf("ReachAddr without the Service = %q, want the bare address", url)
	}
}
