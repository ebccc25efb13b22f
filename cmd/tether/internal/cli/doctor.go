package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"go/version"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/cluster"
)

func newDoctor(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check this machine for what tether and its docs assume, and say what to fix",
		Long: `doctor says which cluster providers can run here (for kind: the node image up
would use or how it would get one, and, marked !, inotify limits and engine
memory too low for several clusters), then checks what the docs
(docs/onboarding.md, docs/debugging.md, docs/scenarios.md) assume: the Go
toolchain, the compiled control plane, free disk space, a writable state
folder, and the optional tmux and dlv. Each line is ok (✓), a warning (!) or a
failure (✗) with what to do. It changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			wb, err := g.workbench()
			if err != nil {
				return err
			}
			fmt.Fprintln(g.out, "providers:")
			usable := printProviders(g.out, wb.Doctor(cmd.Context()))
			fmt.Fprintln(g.out, "machine:")
			checks := machineChecks(cmd.Context(), g, wb)
			failed := printChecks(g.out, checks)
			if usable == 0 {
				return fmt.Errorf("no cluster provider can run here: fix one of the above")
			}
			if failed > 0 {
				return fmt.Errorf("%d checks failed: fix the lines marked ✗ above", failed)
			}
			return nil
		},
	}
}

// printProviders prints a line per provider, then that provider's
// warnings indented below it, and returns how many providers are usable.
func printProviders(w io.Writer, checks []cluster.Check) (usable int) {
	for _, c := range checks {
		mark := "✗"
		if c.OK {
			mark = "✓"
			usable++
		}
		def := ""
		if c.Default {
			def = " (default)"
		}
		detail := c.Detail
		if c.Err != nil {
			detail = hint(c.Err).Error()
		}
		fmt.Fprintf(w, "%s %-9s%s %s\n", mark, c.Provider, def, detail)
		for _, warn := range c.Warnings {
			fmt.Fprintf(w, "    ! %s\n", warn)
		}
	}
	return usable
}

// level is a check's verdict.
type level int

const (
	levelOK level = iota
	levelWarn
	levelFail
)

// check is one verdict about this machine: what was found and, unless ok,
// what to do.
type check struct {
	Name   string
	Level  level
	Detail string
}

func printChecks(w io.Writer, checks []check) (failed int) {
	for _, c := range checks {
		mark := map[level]string{levelOK: "✓", levelWarn: "!", levelFail: "✗"}[c.Level]
		if c.Level == levelFail {
			failed++
		}
		fmt.Fprintf(w, "%s %-13s %s\n", mark, c.Name, c.Detail)
	}
	return failed
}

// machineChecks gathers the facts and judges them; the judging is in pure
// functions below so it can be tested without this machine.
func machineChecks(ctx context.Context, g *globals, wb *cluster.Workbench) []check {
	var out []check
	have, goErr := goVersion(ctx)
	want, modPath := goModMinimum()
	out = append(out, checkGo(have, goErr, want, modPath))

	cacheDir, cacheErr := g.cache()
	dir, cached := wb.ControlPlaneCache()
	out = append(out, checkControlPlane(dir, cached))
	out = append(out, checkCacheDisk(cacheDir, cacheErr, cached, freeBytes))
	out = append(out, checkStateDir(wb.StateDir()))

	tmux, tmuxErr := exec.LookPath("tmux")
	out = append(out, checkTmux(tmux, tmuxErr))
	dlv, dlvErr := exec.LookPath("dlv")
	out = append(out, checkDlv(dlv, dlvErr, gopathBinDlv(ctx)))
	return out
}

// goVersion asks the go command on PATH, which is what `go run` and `go
// tool task` use.
func goVersion(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// goModMinimum reads the go directive of tether's go.mod when doctor runs
// in (or below) a tether checkout; "" elsewhere.
func goModMinimum() (want, path string) {
	dir, err := os.Getwd()
	if err != nil {
		return "", ""
	}
	for {
		p := filepath.Join(dir, "go.mod")
		if f, err := os.Open(p); err == nil {
			want, module := parseGoMod(f)
			f.Close()
			if module == "github.com/tether-dev/tether" {
				return want, p
			}
			return "", ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ""
		}
		dir = parent
	}
}

// parseGoMod returns the go directive and module path of a go.mod.
func parseGoMod(r io.Reader) (goVer, module string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "go" {
			goVer = f[1]
		}
		if len(f) == 2 && f[0] == "module" {
			module = f[1]
		}
	}
	return goVer, module
}

func checkGo(have string, err error, want, modPath string) check {
	c := check{Name: "go"}
	switch {
	case err != nil:
		c.Level = levelFail
		c.Detail = fmt.Sprintf("no working go command (%v): install Go %s or newer from https://go.dev/dl and put it on PATH", err, orAny(want))
	case want == "":
		c.Detail = have + " (not in a tether checkout, so go.mod's minimum was not compared)"
	case !version.IsValid(have) || version.Compare(have, "go"+want) < 0:
		c.Level = levelFail
		c.Detail = fmt.Sprintf("%s is older than the go %s that %s requires: install Go %s or newer (https://go.dev/dl), or let GOTOOLCHAIN=auto fetch it", have, want, modPath, want)
	default:
		c.Detail = fmt.Sprintf("%s (go.mod wants %s or newer)", have, want)
	}
	return c
}

func orAny(want string) string {
	if want == "" {
		return "1.26"
	}
	return want
}

func checkControlPlane(dir string, cached bool) check {
	if cached {
		return check{Name: "control plane", Detail: "compiled and cached in " + dir + "; an embedded up takes about 10 s"}
	}
	return check{Name: "control plane", Level: levelWarn, Detail: "not compiled yet: the first embedded up compiles it (about 7 minutes on 2 cores with a warm module cache, up to 12 cold). Run `tether prepare` (or `go run ./cmd/tether prepare`) ahead of time"}
}

// Disk thresholds: compiling the control plane fills the Go build cache
// with a few GiB; a running workbench needs far less.
const (
	diskFailBelow = 1 << 30
	diskWarnBelow = 5 << 30
)

// checkCacheDisk judges the free space where the cache lives; without a
// cache directory there is nothing to measure, and that is a failure of
// its own rather than a measurement of the working directory.
func checkCacheDisk(cacheDir string, cacheErr error, cached bool, free func(string) (uint64, error)) check {
	if cacheErr != nil {
		return check{Name: "disk", Level: levelFail,
			Detail: fmt.Sprintf("could not find the cache directory: %v; set TETHER_CACHE_DIR or --cache-dir", cacheErr)}
	}
	n, err := free(cacheDir)
	return checkDisk(cacheDir, n, err, cached)
}

func checkDisk(dir string, free uint64, err error, cached bool) check {
	c := check{Name: "disk"}
	gib := float64(free) / (1 << 30)
	switch {
	case err != nil:
		c.Level = levelWarn
		c.Detail = fmt.Sprintf("could not read the free space near %s: %v", dir, err)
	case free < diskFailBelow:
		c.Level = levelFail
		c.Detail = fmt.Sprintf("%.1f GiB free for %s: clusters and builds need at least 1 GiB; free some space or set TETHER_CACHE_DIR to a roomier disk", gib, dir)
	case free < diskWarnBelow && !cached:
		c.Level = levelWarn
		c.Detail = fmt.Sprintf("%.1f GiB free for %s: compiling the control plane may need up to 5 GiB (Go build cache included)", gib, dir)
	default:
		c.Detail = fmt.Sprintf("%.1f GiB free for %s", gib, dir)
	}
	return c
}

// freeBytes is the space available to this user on the file system of dir
// (or of its nearest existing parent: doctor creates nothing).
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(existingParent(dir), &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

func existingParent(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

// checkStateDir checks that the state folder, or the folder it would be
// created in, is writable, without creating anything.
func checkStateDir(dir string) check {
	c := check{Name: "state folder"}
	at := existingParent(dir)
	if fi, err := os.Stat(at); err == nil && !fi.IsDir() {
		c.Level = levelFail
		c.Detail = fmt.Sprintf("%s is not writable as a folder: %s is a file; move it away, or set TETHER_STATE_DIR / --state-dir to a folder you own", dir, at)
		return c
	}
	if err := syscall.Access(at, 2 /* W_OK */); err != nil {
		c.Level = levelFail
		c.Detail = fmt.Sprintf("%s is not writable (%v at %s): fix its permissions, or set TETHER_STATE_DIR / --state-dir to a folder you own", dir, err, at)
		return c
	}
	if at != dir {
		c.Detail = dir + " (will be created; " + at + " is writable)"
		return c
	}
	c.Detail = dir + " is writable"
	return c
}

func checkTmux(path string, err error) check {
	if err == nil {
		return check{Name: "tmux", Detail: path + " (the TUI scenario runs the TUI in tmux)"}
	}
	return check{Name: "tmux", Level: levelWarn, Detail: "not found (optional): only the TUI scenario (scenarios/tui_test.go) needs it; install it with your package manager (apt-get install tmux, brew install tmux)"}
}

// gopathBinDlv is $(go env GOPATH)/bin/dlv when it exists: where `go
// install` puts it, often not on PATH.
func gopathBinDlv(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	for _, gp := range filepath.SplitList(strings.TrimSpace(string(out))) {
		p := filepath.Join(gp, "bin", "dlv")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func checkDlv(path string, err error, inGopath string) check {
	switch {
	case err == nil:
		return check{Name: "dlv", Detail: path + " (for docs/debugging.md)"}
	case inGopath != "" && errors.Is(err, exec.ErrNotFound):
		return check{Name: "dlv", Level: levelWarn, Detail: fmt.Sprintf("installed at %s but not on PATH: add %s to PATH", inGopath, filepath.Dir(inGopath))}
	default:
		return check{Name: "dlv", Level: levelWarn, Detail: "not found (optional, for running a component under a debugger, docs/debugging.md): go install github.com/go-delve/delve/cmd/dlv@latest"}
	}
}
