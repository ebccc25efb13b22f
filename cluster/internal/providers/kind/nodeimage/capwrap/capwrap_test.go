package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

const spec = `{"ociVersion":"1.0.2","process":{"user":{"uid":4294967294,"gid":0},"capabilities":{
"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_NET_ADMIN"],
"effective":["CAP_CHOWN","CAP_SYS_RESOURCE"],
"permitted":["CAP_SYS_RESOURCE"]}},"linux":{"x":{"y":1}}}`

// all bits but CAP_SYS_RESOURCE, as on the machines this exists for.
const noSysResource = uint64(1<<41-1) &^ (1 << 24)

func TestFilterSpecDropsOnlyMissingCapabilities(t *testing.T) {
	out, changed, err := filterSpec([]byte(spec), noSysResource, true)
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	var got struct {
		Process struct {
			User         struct{ UID json.Number } `json:"user"`
			Capabilities map[string][]string
		}
		Linux map[string]any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if b := got.Process.Capabilities["bounding"]; !slices.Equal(b, []string{"CAP_CHOWN", "CAP_NET_ADMIN"}) {
		t.Errorf("bounding = %v", b)
	}
	if p := got.Process.Capabilities["permitted"]; len(p) != 0 {
		t.Errorf("permitted = %v, want empty", p)
	}
	if got.Process.User.UID != "4294967294" {
		t.Errorf("uid = %s: large numbers must survive unchanged", got.Process.User.UID)
	}
	if got.Linux["x"] == nil {
		t.Errorf("other fields lost: %s", out)
	}
}

func TestFilterSpecFullBoundingSetChangesNothing(t *testing.T) {
	out, changed, err := filterSpec([]byte(spec), 1<<41-1, true)
	if err != nil || changed || string(out) != spec {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
}

func TestRewriteFindsBundleAndProcessFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--root", "/run/runc", "--log", "/x.log", "--systemd-cgroup", "create", "--bundle", dir, "--pid-file", "p", "id"}
	if err := rewrite(args, noSysResource); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if string(data) == spec {
		t.Fatal("config.json of the bundle was not rewritten")
	}

	proc := filepath.Join(dir, "process.json")
	if err := os.WriteFile(proc, []byte(`{"args":["sh"],"capabilities":{"bounding":["CAP_SYS_RESOURCE","CAP_KILL"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rewrite([]string{"exec", "--process=" + proc, "--detach", "id"}, noSysResource); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(proc)
	var p struct{ Capabilities map[string][]string }
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Capabilities["bounding"], []string{"CAP_KILL"}) {
		t.Errorf("exec process capabilities = %v", p.Capabilities)
	}
	// Commands that start nothing are passed through untouched.
	if err := rewrite([]string{"--root", "/r", "delete", "id"}, noSysResource); err != nil {
		t.Fatal(err)
	}
}

func TestBoundingSetReadsStatus(t *testing.T) {
	p := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(p, []byte("Name:\tx\nCapBnd:\t000001fffeffffff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := boundingSet(p)
	if err != nil || got != 0x1fffeffffff {
		t.Fatalf("got %x, %v", got, err)
	}
	if got&(1<<24) != 0 {
		t.Fatal("CAP_SYS_RESOURCE should be absent from that mask")
	}
}
