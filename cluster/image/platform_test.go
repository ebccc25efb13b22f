package image

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestParsePlatform(t *testing.T) {
	p, err := ParsePlatform(" linux/arm64\n")
	if err != nil || p != (Platform{"linux", "arm64"}) || p.String() != "linux/arm64" {
		t.Errorf("ParsePlatform: %+v %v", p, err)
	}
	for _, bad := range []string{"", "linux", "linux/", "/amd64", "linux/arm/v7", "<no value>/<no value>"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) accepted", bad)
		}
	}
}

// Runnable tells a binary that can be put in the image as it is (static,
// Linux, the nodes' architecture) from one that cannot: a cgo build is
// dynamically linked and needs a libc the image does not have.
func TestRunnableStaticAndDynamic(t *testing.T) {
	static := tinyBinary(t) // CGO_ENABLED=0, linux/GOARCH
	if err := Runnable(static, Platform{"linux", runtime.GOARCH}); err != nil {
		t.Errorf("a static Linux binary for %s: %v", runtime.GOARCH, err)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	if err := Runnable(static, Platform{"linux", other}); err == nil || !strings.Contains(err.Error(), "not "+other) {
		t.Errorf("wrong architecture: %v", err)
	}
	if err := Runnable(static, Platform{"windows", runtime.GOARCH}); err == nil || !strings.Contains(err.Error(), "Linux image") {
		t.Errorf("a Windows engine: %v", err)
	}
	script := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Runnable(script, Platform{"linux", runtime.GOARCH}); err == nil || !strings.Contains(err.Error(), "ELF") {
		t.Errorf("a script: %v", err)
	}

	// The cgo half needs a C compiler that targets Linux.
	if runtime.GOOS != "linux" {
		t.Skip("cgo half skipped: building a cgo binary for Linux needs a Linux host")
	}
	cc := "gcc"
	if out, err := exec.Command("go", "env", "CC").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		cc = strings.Fields(string(out))[0]
	}
	if _, err := exec.LookPath(cc); err != nil {
		t.Skipf("cgo half skipped: no C compiler (%s) on this machine", cc)
	}
	dir := tinyModule(t, "package main\n\n// int answer(void) { return 42; }\nimport \"C\"\n\nfunc main() { println(C.answer()) }\n")
	dynamic := filepath.Join(t.TempDir(), "dynamic")
	cmd := exec.Command("go", "build", "-o", dynamic, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cgo build: %v\n%s", err, out)
	}
	if err := Runnable(dynamic, Platform{"linux", runtime.GOARCH}); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("a cgo binary: %v", err)
	}
}

type memFS map[string]string

func (m memFS) read(p string) ([]byte, error) {
	if p == "/denied" {
		return nil, fs.ErrPermission
	}
	s, ok := m[p]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return []byte(s), nil
}

func TestCACertBundle(t *testing.T) {
	noEnv := func(string) string { return "" }
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// Fedora: Debian's path is missing, the RHEL one is used.
	data, from := CACertBundle("linux", noEnv, memFS{"/etc/pki/tls/certs/ca-bundle.crt": "fedora"}.read, nil)
	if string(data) != "fedora" || from != "/etc/pki/tls/certs/ca-bundle.crt" {
		t.Errorf("fedora: %q from %q", data, from)
	}
	// An empty file does not count; order is crypto/x509's.
	data, from = CACertBundle("linux", noEnv, memFS{"/etc/ssl/certs/ca-certificates.crt": "\n", "/etc/ssl/cert.pem": "alpine", "/etc/ssl/ca-bundle.pem": "suse"}.read, nil)
	if string(data) != "suse" || from != "/etc/ssl/ca-bundle.pem" {
		t.Errorf("empty first candidate: %q from %q", data, from)
	}
	// $SSL_CERT_FILE first, as crypto/x509 reads it; unreadable is skipped.
	env := func(k string) string { return map[string]string{"SSL_CERT_FILE": "/mine.pem"}[k] }
	if data, from = CACertBundle("linux", env, memFS{"/mine.pem": "mine", "/etc/ssl/certs/ca-certificates.crt": "debian"}.read, nil); from != "/mine.pem" {
		t.Errorf("SSL_CERT_FILE: %q from %q", data, from)
	}
	env = func(k string) string { return map[string]string{"SSL_CERT_FILE": "/denied"}[k] }
	if data, from = CACertBundle("linux", env, memFS{"/etc/ssl/certs/ca-certificates.crt": "debian"}.read, nil); string(data) != "debian" {
		t.Errorf("unreadable SSL_CERT_FILE: %q from %q", data, from)
	}
	// FreeBSD has its own list.
	if data, _ = CACertBundle("freebsd", noEnv, memFS{"/usr/local/etc/ssl/cert.pem": "bsd"}.read, nil); string(data) != "bsd" {
		t.Errorf("freebsd: %q", data)
	}
	// Nothing anywhere: none, said at Debug.
	logs.Reset()
	if data, from = CACertBundle("linux", noEnv, memFS{}.read, logger); data != nil || from != "" || !strings.Contains(logs.String(), "no CA bundle found") {
		t.Errorf("nothing: %q from %q, log %q", data, from, logs.String())
	}
	// macOS keeps its roots in the keychain: nothing is read, even a file
	// that happens to exist, and the log says why.
	logs.Reset()
	read := func(p string) ([]byte, error) { t.Errorf("read %s on darwin", p); return nil, fs.ErrNotExist }
	if data, _ = CACertBundle("darwin", env, read, logger); data != nil || !strings.Contains(logs.String(), "level=DEBUG") || !strings.Contains(logs.String(), "not in a file") {
		t.Errorf("darwin: %q, log %q", data, logs.String())
	}
	if !slices.Equal(CACertFiles("linux")[:1], []string{DefaultCACertFile}) || CACertFiles("windows") != nil {
		t.Error("CACertFiles")
	}
}

// Without a bundle the image does not point SSL_CERT_FILE at a missing file.
func TestBuildWithoutBundleSetsNoSSLCertFile(t *testing.T) {
	bin := tinyBinary(t)
	img, err := Build(bin, Options{CACertFile: filepath.Join(t.TempDir(), "missing.crt")})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(cfg.Config.Env, func(e string) bool { return strings.HasPrefix(e, "SSL_CERT_FILE=") }) {
		t.Errorf("env %q names a bundle the image does not have", cfg.Config.Env)
	}
	ca, _ := caFile(t)
	if img, err = Build(bin, Options{CACertFile: ca}); err != nil {
		t.Fatal(err)
	}
	if cfg, err = img.ConfigFile(); err != nil || !slices.Contains(cfg.Config.Env, "SSL_CERT_FILE="+DefaultCACertFile) {
		t.Errorf("with a bundle: env %q, %v", cfg.Config.Env, err)
	}
}
