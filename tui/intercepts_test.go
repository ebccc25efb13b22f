package tui

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/tether-dev/tether/intercept"
	"github.com/tether-dev/tether/intercept/record"
)

func sampleIntercepts() []InterceptInfo {
	return []InterceptInfo{
		{Name: "guestbook-80", Cluster: "spoke-1", Namespace: "guestbook", Service: "guestbook-ui", Port: 80,
			To: "127.0.0.1:8080", Reach: "http://127.0.0.1:33761/", Alive: true, Held: true, Traffic: "-"},
		{Name: "api-8080", Cluster: "spoke-1", Namespace: "shop", Service: "api", Port: 8080,
			Headers: map[string]string{"X-Dev": "ann"}, Reach: "127.0.0.1:40211", Alive: false, Traffic: "-"},
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
		// At 100 columns the address is under the table, for the
		// selected intercept.
		"  FROM THIS MACHINE http://127.0.0.1:33761/ · TRAFFIC -",
		"n new intercept", "x stop",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	press(m, "j")
	if v := m.View(); !strings.Contains(v, "  FROM THIS MACHINE 127.0.0.1:40211 · TRAFFIC -") {
		t.Errorf("the selected intercept's address should be under the table:\n%s", v)
	}
}

// TestInterceptsWideShowsWhereToReachEach: a terminal with room shows
// every intercept's address in its row, "-" where there is none.
func TestInterceptsWideShowsWhereToReachEach(t *testing.T) {
	list := append(sampleIntercepts(), InterceptInfo{Name: "db-5432", Cluster: "spoke-2", Namespace: "shop", Service: "db", Port: 5432,
		Alive: true, Traffic: "0 conns"})
	m, _ := interceptsModelOn(&fakeSource{snap: sampleSnapshot(), intercepts: list})
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 30})
	v := m.View()
	for _, re := range []string{
		`(?m)^  NAME\s+TARGET\s+PORT\s+MATCH\s+TO\s+FROM THIS MACHINE\s+TRAFFIC\s+STATE\s*$`,
		`(?m)^> guestbook-80\s+spoke-1/guestbook/guestbook-ui\s+80\s+global\s+127\.0\.0\.1:8080\s+http://127\.0\.0\.1:33761/\s+-\s+✓ held`,
		`(?m)^  api-8080\s+spoke-1/shop/api\s+8080\s+X-Dev=ann\s+-\s+127\.0\.0\.1:40211\s+-\s+✗ expired`,
		`(?m)^  db-5432\s+spoke-2/shop/db\s+5432\s+global\s+-\s+-\s+0 conns\s+✓ alive`,
	} {
		if !regexp.MustCompile(re).MatchString(v) {
			t.Errorf("view lacks %s:\n%s", re, v)
		}
	}
	if strings.Contains(v, "FROM THIS MACHINE http") {
		t.Errorf("nothing should be dropped under the table at 160 columns:\n%s", v)
	}
}

// TestInterceptsStartSaysWhereToReachIt: the start's report carries the
// address the source gave, and the new row, which the cursor moves to,
// has it too; without one the report says only that it started.
func TestInterceptsStartSaysWhereToReachIt(t *testing.T) {
	src := &fakeSource{snap: sampleSnapshot(), intercepts: sampleIntercepts(), reach: "http://127.0.0.1:33761/"}
	m, im := interceptsModelOn(src)
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 30})
	press(m, "n", "tab", "ctrl+u", "sample", "tab", "web", "tab", "80", "tab", "127.0.0.1:9000", "enter")
	v := m.View()
	if got := src.recorded(); len(got) != 1 || got[0] != "start spoke-1/sample/web:80 -> 127.0.0.1:9000 []" {
		t.Fatalf("source calls = %v", got)
	}
	// The report wraps at the edge; the address is whole on one line.
	flat := strings.Join(strings.Fields(v), " ")
	if !strings.Contains(flat, "intercept web-80 started on spoke-1/sample/web: reach it at http://127.0.0.1:33761/ from this machine; it stops when this UI quits") {
		t.Errorf("the start should say where to reach the Service:\n%s", v)
	}
	if r, _ := im.selected(); r.Name != "web-80" {
		t.Errorf("the cursor is on %q, want the intercept just started", r.Name)
	}
	if !regexp.MustCompile(`(?m)^> web-80\s+spoke-1/sample/web\s+80\s+global\s+127\.0\.0\.1:9000\s+http://127\.0\.0\.1:33761/\s`).MatchString(v) {
		t.Errorf("the started intercept's row should carry its address:\n%s", v)
	}

	if got := startedFlash(interceptActionMsg{action: "start", name: "web-80", target: "spoke-1/sample/web"}); got != "intercept web-80 started on spoke-1/sample/web; it stops when this UI quits" {
		t.Errorf("without an address: %q", got)
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
