package nodeimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestTagIsStableAndVersioned(t *testing.T) {
	if tag() != tag() {
		t.Fatal("tag changes between calls")
	}
	if !strings.HasPrefix(Ref(), Repository+":v1.") {
		t.Fatalf("Ref() = %q, want %s:<kubernetes version>-<key>", Ref(), Repository)
	}
	if strings.Contains(Ref(), "@") {
		t.Fatal("the ref must be a tag: kind pulls digests it cannot find offline")
	}
}

func TestAptMirrorReadsBothSourceFormats(t *testing.T) {
	dir := t.TempDir()
	if got := aptMirror(dir); got != "" {
		t.Fatalf("no sources: got %q", got)
	}
	os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "sources.list.d", "debian.sources"), []byte(
		"Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"), 0o644)
	if got := aptMirror(dir); got != "http://mirror.example/debian" {
		t.Fatalf("deb822: got %q", got)
	}
	os.WriteFile(filepath.Join(dir, "sources.list"), []byte("# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://local.mirror/debian bookworm main\n"), 0o644)
	if got := aptMirror(dir); got != "http://local.mirror/debian" {
		t.Fatalf("one-line format with options: got %q", got)
	}
}

func TestNodeFilesCarryTheNodeSetUp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kubelet")
	os.WriteFile(bin, []byte("ELF"), 0o755)
	files, err := nodeFiles([]fileEntry{{name: "usr/bin/kubelet", source: bin, mode: 0o755}}, "registry.k8s.io/pause:3.10.2")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]nodeEntry{}
	for _, f := range files {
		if _, dup := byName[f.name]; dup {
			t.Fatalf("%s twice", f.name)
		}
		byName[f.name] = f
	}
	if e := byName["usr/local/bin/entrypoint"]; e.mode != 0o755 || !bytes.Contains(e.data, []byte("detected cgroup v1")) {
		t.Errorf("entrypoint: mode %o, must be executable and print the line kind waits for on cgroup v1", e.mode)
	}
	cfg := string(byName["etc/containerd/config.toml"].data)
	for _, want := range []string{`sandbox_image = "registry.k8s.io/pause:3.10.2"`, `BinaryName = "/usr/local/sbin/tether-runc"`, "SystemdCgroup = true", "restrict_oom_score_adj = false"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("containerd config lacks %q", want)
		}
	}
	if v := string(byName["kind/version"].data); !strings.HasPrefix(v, "v1.") {
		t.Errorf("kind/version = %q", v)
	}
	if byName["etc/systemd/system/multi-user.target.wants/kubelet.service"].link == "" {
		t.Error("kubelet is not enabled")
	}
	if byName["usr/bin/kubelet"].mode != 0o755 {
		t.Error("binaries must be executable")
	}
}

func TestWriteNodeTarReplacesInsteadOfDuplicating(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/containerd"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/containerd/config.toml"), []byte("debian's"), 0o644)
	os.WriteFile(filepath.Join(root, "usr/bin/true"), []byte("x"), 0o755)
	os.Symlink("usr/bin", filepath.Join(root, "bin"))
	os.WriteFile(filepath.Join(root, ".complete"), nil, 0o644)
	var buf bytes.Buffer
	if err := writeNodeTar(&buf, root, nil, "p:1"); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	tr := tar.NewReader(&buf)
	var config string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.TrimSuffix(h.Name, "/")]++
		if h.Name == "etc/containerd/config.toml" {
			data, _ := io.ReadAll(tr)
			config = string(data)
		}
		if h.Name == "bin" && (h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin") {
			t.Errorf("bin: %+v, want the symlink kept", h)
		}
	}
	for name, n := range seen {
		if n > 1 {
			t.Errorf("%s written %d times: Docker refuses such a stream", name, n)
		}
	}
	if !strings.Contains(config, "tether-runc") {
		t.Errorf("config.toml is Debian's, not tether's: %q", config)
	}
	if seen[".complete"] != 0 || seen["usr/bin/true"] != 1 || seen["usr/local/bin/entrypoint"] != 1 {
		t.Errorf("entries: %v", seen)
	}
}

// The closure of a real dynamically linked program on this machine must
// hold its interpreter and libc, found through the root's own symlinks.
func TestClosureFollowsLibrariesInsideTheRoot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ELF closure is for Linux root filesystems")
	}
	prog := "/usr/bin/ls"
	if _, err := os.Stat(prog); err != nil {
		t.Skip("no /usr/bin/ls on this machine")
	}
	c := newClosure("/")
	if err := c.add(prog); err != nil {
		t.Fatal(err)
	}
	var libc, interp bool
	for _, e := range c.list() {
		if e.link == "" && strings.Contains(e.name, "libc.so") {
			libc = true
		}
		if strings.Contains(e.name, "ld-linux") {
			interp = true
		}
		if e.link == "" {
			if st, err := os.Lstat(e.source); err != nil || st.Mode()&os.ModeSymlink != 0 {
				t.Errorf("%s: file entries must be real files, got %v %v", e.name, st, err)
			}
		}
	}
	if !libc || !interp {
		t.Fatalf("closure of %s lacks libc (%v) or the interpreter (%v): %v", prog, libc, interp, c.list())
	}
	if err := newClosure("/").add("/no/such/program"); err == nil {
		t.Fatal("a missing file must be an error")
	}
}

func TestWriteLayerAddsParentsOnceInOrder(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bin")
	os.WriteFile(src, []byte("binary"), 0o755)
	p := filepath.Join(t.TempDir(), "layer.tar")
	err := writeLayer(p, []fileEntry{
		{name: "usr/sbin/iptables", link: "xtables-nft-multi"},
		{name: "usr/local/bin/kube-proxy", source: src, mode: 0o755},
		{name: "usr/sbin/xtables-nft-multi", source: src},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	defer f.Close()
	tr := tar.NewReader(f)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	want := "tmp/ usr/ usr/local/ usr/local/bin/ usr/local/bin/kube-proxy usr/sbin/ usr/sbin/iptables usr/sbin/xtables-nft-multi"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("layer entries\n got %s\nwant %s", got, want)
	}
}
