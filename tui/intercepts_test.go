package tui

import (
	"errors"
	"strings"
	"testing"

	"github.com/tether-dev/tether/intercept"
	"github.com/tether-dev/tether/intercept/record"
)

func sampleIntercepts() []InterceptInfo {
	return []InterceptInfo{
		{Name: "guestbook-80", Cluster: "spoke-1", Namespace: "guestbook", Service: "guestbook-ui", Port: 80,
			To: "127.0.0.1:8080", Alive: true, Held: true, Traffic: "-"},
		{Name: "api-8080", Cluster: "spoke-1", Namespace: "shop", Service: "api", Port: 8080,
			Headers: map[string]string{"X-Dev": "ann"}, Alive: false, Traffic: "-"},
	}
}

// interceptsModelOn is the root model on the Intercepts screen with the
// sample workbench probed.
func interceptsModelOn(src *fakeSource) (*model, *interceptsModel) {
	m := newTestModel(src)
	_, cmd := m.Update(statusMsg{snap: src.snap})
	settle(m, cmd)
	press(m, "5")
	return m, m.screens[4].(*interceptsModel)
}

func TestInterceptsList(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), intercepts: sampleIntercepts()}
	m, _ := interceptsModelOn(src)
	v := m.View()
	for _, want := range []string{
		"NAME", "TARGET", "PORT", "MATCH", "TO", "TRAFFIC", "STATE",
		"> guestbook-80  spoke-1/guestbook/guestbook-ui  80", "global", "127.0.0.1:8080", "✓ held",
		"api-8080", "spoke-1/shop/api", "X-Dev=ann", "✗ expired",
		"n new intercept", "x stop",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
}

func TestInterceptsEmptyAndError(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), interceptErr: errors.New("hub: connection refused")}
	m, _ := interceptsModelOn(src)
	v := m.View()
	if !strings.Contains(v, "✗ hub: connection refused") || !strings.Contains(v, "No intercepts. Press n to start one.") {
		t.Errorf("an error and an empty list should both show:\n%s", v)
	}
	m2, _ := interceptsModelOn(&fakeSource{})
	if v := m2.View(); !strings.Contains(v, "No clusters") {
		t.Errorf("no workbench should say so:\n%s", v)
	}
}

func TestInterceptsStop(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), intercepts: sampleIntercepts()}
	m, _ := interceptsModelOn(src)
	press(m, "j", "x")
	if got := src.recorded(); len(got) != 1 || got[0] != "stop spoke-1/api-8080" {
		t.Fatalf("source calls = %v, want the selected one stopped", got)
	}
	v := m.View()
	if !strings.Contains(v, "intercept api-8080 stopped; spoke-1/shop/api is as it was") || strings.Contains(v, "X-Dev=ann") {
		t.Errorf("the stop should be reported and the list refreshed:\n%s", v)
	}
	press(m, "x")
	press(m, "x") // nothing left to stop
	if got := src.recorded(); len(got) != 2 || got[1] != "stop spoke-1/guestbook-80" {
		t.Errorf("source calls = %v", got)
	}
	if v := m.View(); !strings.Contains(v, "No intercepts") {
		t.Errorf("view after stopping everything:\n%s", v)
	}
}

func TestInterceptsFormValidates(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot()}
	m, im := interceptsModelOn(src)
	press(m, "n")
	if !im.Capturing() {
		t.Fatal("n did not open the form")
	}
	v := m.View()
	for _, want := range []string{"Start an intercept", "Cluster", "spoke-1", "Namespace", "default", "Service", "Port", "To", "Headers",
		"tab next field", "enter confirm", "esc cancel"} {
		if !strings.Contains(v, want) {
			t.Errorf("the form lacks %q:\n%s", want, v)
		}
	}
	steps := []struct {
		keys []string
		want string
	}{
		{nil, "service: give the name of the Service"},
		{[]string{"Guest_book"}, `service "Guest_book" is not a Service name`},
		{[]string{"ctrl+u", "guestbook-ui", "tab", "http"}, `port "http": give the Service port`},
		{[]string{"ctrl+u", "99999"}, `port "99999"`},
		{[]string{"ctrl+u", "80", "tab"}, "to: give the local address"},
		{[]string{"8080"}, `to "8080": give host:port`},
		{[]string{"ctrl+u", "127.0.0.1:8080", "tab", "x-dev"}, `header "x-dev": want NAME=VALUE`},
	}
	for _, s := range steps {
		press(m, s.keys...)
		press(m, "enter")
		if v := m.View(); !strings.Contains(v, s.want) {
			t.Fatalf("after %v: want %q in:\n%s", s.keys, s.want, v)
		}
		if len(src.recorded()) != 0 {
			t.Fatalf("an invalid form reached the source: %v", src.recorded())
		}
	}
	// The cursor went to the field with the problem; fix it there.
	if im.form.focus != fieldHeaders {
		t.Errorf("focus on field %d, want the headers", im.form.focus)
	}
	press(m, "=ann, X-Team = shop", "enter")
	if got := src.recorded(); len(got) != 1 || got[0] != "start spoke-1/default/guestbook-ui:80 -> 127.0.0.1:8080 [x-dev=ann X-Team = shop]" {
		t.Fatalf("source calls = %v", got)
	}
	if im.Capturing() {
		t.Error("the form stayed open after a start")
	}
	if v := m.View(); !strings.Contains(v, "intercept guestbook-ui-80 started on spoke-1/default/guestbook-ui") || !strings.Contains(v, "✓ held") {
		t.Errorf("a started intercept should be reported and listed:\n%s", v)
	}
}

func TestInterceptsFormKeepsFieldsOnFailure(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), startErr: errors.New("service spoke-1/default/web not found")}
	m, im := interceptsModelOn(src)
	press(m, "n", "tab", "tab", "web", "tab", "80", "tab", "127.0.0.1:9000", "enter")
	if !im.Capturing() {
		t.Fatal("a failed start closed the form")
	}
	if v := m.View(); !strings.Contains(v, "start failed: service spoke-1/default/web not found") {
		t.Errorf("the failure should show in the form:\n%s", v)
	}
	if im.form.value(fieldService) != "web" {
		t.Errorf("the fields were lost")
	}
	press(m, "esc")
	if im.Capturing() {
		t.Error("esc did not close the form")
	}
	press(m, "n")
	press(m, "ctrl+u", "nowhere", "enter")
	if v := m.View(); !strings.Contains(v, `cluster "nowhere" is not in the workbench (clusters: hub, spoke-1)`) {
		t.Errorf("an unknown cluster should be refused:\n%s", v)
	}
}

func TestInterceptRowShowsTheAgentsCounters(t *testing.T) {
	global := intercept.Status{Record: record.Record{Name: "web-80", Namespace: "shop", Service: "web", Port: 80}, Alive: true, Connections: 7}
	if got := interceptRow("spoke-1", global).Traffic; got != "7 conns" {
		t.Fatalf("global intercept traffic = %q, want %q", got, "7 conns")
	}
	personal := global
	personal.Headers = map[string]string{"X-Dev": "ann"}
	personal.Requests = 3
	if got := interceptRow("spoke-1", personal).Traffic; got != "7 conns / 3 reqs" {
		t.Fatalf("personal intercept traffic = %q, want %q", got, "7 conns / 3 reqs")
	}
}
