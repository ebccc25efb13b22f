package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckGo(t *testing.T) {
	for _, tc := range []struct {
		have, want string
		err        error
		level      level
		detail     string
	}{
		{"go1.26.8", "1.26.4", nil, levelOK, "go1.26.8 (go.mod wants 1.26.4 or newer)"},
		{"go1.26.4", "1.26.4", nil, levelOK, "go.mod wants"},
		{"go1.25.9", "1.26.4", nil, levelFail, "is older than the go 1.26.4"},
		{"go1.27rc1", "1.26.4", nil, levelOK, ""},
		{"devel +abc", "1.26.4", nil, levelFail, "install Go 1.26.4 or newer"},
		{"go1.20", "", nil, levelOK, "not in a tether checkout"},
		{"", "1.26.4", exec.ErrNotFound, levelFail, "install Go 1.26.4 or newer from https://go.dev/dl"},
	} {
		c := checkGo(tc.have, tc.err, tc.want, "/x/go.mod")
		if c.Level != tc.level || !strings.Contains(c.Detail, tc.detail) {
			t.Errorf("checkGo(%q, %v, %q) = %+v", tc.have, tc.err, tc.want, c)
		}
	}
}

func TestParseGoMod(t *testing.T) {
	v, m := parseGoMod(strings.NewReader("module github.com/tether-dev/tether\n\ngo 1.26.4\n\ntool x\n"))
	if v != "1.26.4" || m != "github.com/tether-dev/tether" {
		t.Errorf("got %q %q", v, m)
	}
}

func TestCheckDisk(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		free   uint64
		err    error
		cached bool
		level  level
	}{
		{20 * gib, nil, false, levelOK},
		{3 * gib, nil, false, levelWarn},
		{3 * gib, nil, true, levelOK},
		{gib / 2, nil, true, levelFail},
		{0, errors.New("boom"), true, levelWarn},
	} {
		if c := checkDisk("/cache", tc.free, tc.err, tc.cached); c.Level != tc.level {
			t.Errorf("checkDisk(%d, %v, %v) = %+v", tc.free, tc.err, tc.cached, c)
		}
	}
	if c := checkDisk("/cache", gib/2, nil, false); !strings.Contains(c.Detail, "TETHER_CACHE_DIR") {
		t.Errorf("a failure must say what to do: %s", c.Detail)
	}
}

func TestCheckCacheDiskWithoutACacheDir(t *testing.T) {
	boom := errors.New("$HOME is not defined")
	measured := false
	free := func(string) (uint64, error) { measured = true; return 0, nil }
	c := checkCacheDisk("", boom, false, free)
	if c.Level != levelFail || !strings.Contains(c.Detail, boom.Error()) || !strings.Contains(c.Detail, "TETHER_CACHE_DIR") {
		t.Errorf("checkCacheDisk without a cache dir = %+v; want a failure carrying the error and what to do", c)
	}
	if measured {
		t.Error("the disk was measured without a cache directory")
	}
	c = checkCacheDisk("/cache", nil, true, func(dir string) (uint64, error) { return 20 << 30, nil })
	if c.Level != levelOK || !strings.Contains(c.Detail, "/cache") {
		t.Errorf("checkCacheDisk(/cache) = %+v", c)
	}
}

func TestCheckControlPlane(t *testing.T) {
	if c := checkControlPlane("/c/cp/v1", true); c.Level != levelOK || !strings.Contains(c.Detail, "/c/cp/v1") {
		t.Errorf("%+v", c)
	}
	if c := checkControlPlane("/c/cp/v1", false); c.Level != levelWarn || !strings.Contains(c.Detail, "tether prepare") || !strings.Contains(c.Detail, "minutes") {
		t.Errorf("%+v", c)
	}
}

func TestCheckStateDir(t *testing.T) {
	dir := t.TempDir()
	if c := checkStateDir(dir); c.Level != levelOK || !strings.Contains(c.Detail, "is writable") {
		t.Errorf("%+v", c)
	}
	missing := filepath.Join(dir, "a", "b")
	if c := checkStateDir(missing); c.Level != levelOK || !strings.Contains(c.Detail, "will be created") {
		t.Errorf("%+v", c)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Error("doctor must not create the state folder")
	}
	if os.Geteuid() != 0 { // root may write anywhere
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		if c := checkStateDir(filepath.Join(ro, "state")); c.Level != levelFail || !strings.Contains(c.Detail, "TETHER_STATE_DIR") {
			t.Errorf("%+v", c)
		}
	}
}

func TestCheckOptionalTools(t *testing.T) {
	if c := checkTmux("/usr/bin/tmux", nil); c.Level != levelOK {
		t.Errorf("%+v", c)
	}
	if c := checkTmux("", exec.ErrNotFound); c.Level != levelWarn || !strings.Contains(c.Detail, "optional") {
		t.Errorf("%+v", c)
	}
	if c := checkDlv("", exec.ErrNotFound, ""); c.Level != levelWarn || !strings.Contains(c.Detail, "go install github.com/go-delve/delve/cmd/dlv@latest") {
		t.Errorf("%+v", c)
	}
	if c := checkDlv("", exec.ErrNotFound, "/home/u/go/bin/dlv"); c.Level != levelWarn || !strings.Contains(c.Detail, "add /home/u/go/bin to PATH") {
		t.Errorf("%+v", c)
	}
}

func TestPrintChecks(t *testing.T) {
	var buf bytes.Buffer
	n := printChecks(&buf, []check{{Name: "go", Detail: "go1.26"}, {Name: "dlv", Level: levelWarn, Detail: "x"}, {Name: "disk", Level: levelFail, Detail: "y"}})
	if n != 1 || buf.String() != "✓ go            go1.26\n! dlv           x\n✗ disk          y\n" {
		t.Errorf("%d %q", n, buf.String())
	}
}
