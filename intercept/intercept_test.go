package intercept

import (
	"strings"
	"testing"

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

func TestConflictMessages(t *testing.T) {
	global := &record.Record{Name: "web-80", Port: 80}
	personal := &record.Record{Name: "web-80", Port: 80, Headers: map[string]string{"X-Dev": "a"}}
	for _, tc := range []struct {
		rec  *record.Record
		spec Spec
		want string
	}{
		{global, Spec{Port: 80}, "already intercepted globally"},
		{personal, Spec{Port: 80, Headers: map[string]string{"X-Dev": "a"}}, "with the same headers"},
		{personal, Spec{Port: 80, Headers: map[string]string{"X-Dev": "b"}}, "one intercept per Service"},
	} {
		if err := conflict("hub/shop/web", tc.rec, tc.spec); !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want %q", err, tc.want)
		}
	}
}
