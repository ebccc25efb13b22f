package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// capNames maps capability names to their bit numbers (linux/capability.h).
var capNames = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// runcPaths are where distributions put runc; the first that is not this
// program wins. TETHER_RUNC overrides them.
var runcPaths = []string{"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc", "/sbin/runc", "/bin/runc"}

func findRunc() (string, error) {
	if p := os.Getenv("TETHER_RUNC"); p != "" {
		return p, nil
	}
	self, _ := os.Executable()
	self, _ = filepath.EvalSymlinks(self)
	for _, p := range runcPaths {
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil || resolved == self {
			continue
		}
		if st, err := os.Stat(resolved); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no runc found in %s (set TETHER_RUNC to its path)", strings.Join(runcPaths, ", "))
}

// boundingSet reads CapBnd from a /proc/<pid>/status file.
func boundingSet(statusPath string) (uint64, error) {
	f, err := os.Open(statusPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapBnd:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapBnd line in %s", statusPath)
}

// rewrite finds the spec runc is about to use and drops the capabilities
// outside bounding from it. Commands that start no process pass untouched.
func rewrite(args []string, bounding uint64) error {
	cmd, rest := command(args)
	switch cmd {
	case "create", "run":
		bundle := flagValue(rest, "bundle", "b")
		if bundle == "" {
			bundle = "."
		}
		return rewriteFile(filepath.Join(bundle, "config.json"), bounding, true)
	case "exec":
		if p := flagValue(rest, "process", "p"); p != "" {
			return rewriteFile(p, bounding, false)
		}
	}
	return nil
}

// globalWithValue are runc's global flags that take a separate value, so the
// command is found after them.
var globalWithValue = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

func command(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return a, args[i+1:]
		}
		if globalWithValue[a] {
			i++
		}
	}
	return "", nil
}

func flagValue(args []string, long, short string) string {
	for i, a := range args {
		for _, name := range []string{"--" + long, "-" + long, "-" + short} {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v
			}
		}
	}
	return ""
}

// rewriteFile edits only the capabilities, keeping every other byte of the
// spec's meaning (numbers stay json.Number, unknown fields stay raw).
func rewriteFile(path string, bounding uint64, wholeSpec bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, changed, err := filterSpec(data, bounding, wholeSpec)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !changed {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, st.Mode().Perm())
}

func filterSpec(data []byte, bounding uint64, wholeSpec bool) ([]byte, bool, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, false, err
	}
	process := top
	if wholeSpec {
		raw, ok := top["process"]
		if !ok {
			return data, false, nil
		}
		if err := json.Unmarshal(raw, &process); err != nil {
			return nil, false, err
		}
	}
	raw, ok := process["capabilities"]
	if !ok || string(raw) == "null" {
		return data, false, nil
	}
	var caps map[string][]string
	if err := json.Unmarshal(raw, &caps); err != nil {
		return nil, false, err
	}
	changed := false
	for set, names := range caps {
		kept := names[:0:0]
		for _, n := range names {
			if bit, known := capNames[strings.ToUpper(n)]; known && bounding&(1<<bit) == 0 {
				changed = true
				continue
			}
			kept = append(kept, n)
		}
		caps[set] = kept
	}
	if !changed {
		return data, false, nil
	}
	newCaps, err := json.Marshal(caps)
	if err != nil {
		return nil, false, err
	}
	process["capabilities"] = newCaps
	if wholeSpec {
		p, err := json.Marshal(process)
		if err != nil {
			return nil, false, err
		}
		top["process"] = p
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(top); err != nil {
		return nil, false, err
	}
	return buf.Bytes(), true, nil
}
