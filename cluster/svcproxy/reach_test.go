package svcproxy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestReachURLSaysHTTPWhenThePortDoes(t *testing.T) {
	http := "http"
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "http", Port: 80},
		{Name: "http-admin", Port: 81},
		{Name: "web", Port: 82, AppProtocol: &http},
		{Name: "postgres", Port: 5432},
	}}}
	for port, want := range map[int32]string{
		80:   "http://127.0.0.1:4000/",
		81:   "http://127.0.0.1:4000/",
		82:   "http://127.0.0.1:4000/",
		5432: "127.0.0.1:4000",
		9999: "127.0.0.1:4000", // not a port of the Service
	} {
		if got := ReachURL(svc, port, "127.0.0.1:4000"); got != want {
			t.Errorf("ReachURL(port %d) = %q, want %q", port, got, want)
		}
	}
}
