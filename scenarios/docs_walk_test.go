package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"
)

// How long the docs test waits: for a block that runs to the end (the
// longest are `tether scenario run` and `sample scale`, which watches the
// rollout), for an expect to come true, and for a terminal to end after
// Ctrl-C.
const (
	docsBlockTimeout  = 8 * time.Minute
	docsExpectTimeout = 90 * time.Second
	docsCtrlCTimeout  = 30 * time.Second
)

// taskPlan is what the docs test's `go` does for `go tool task NAME`.
type taskPlan struct {
	// tetherArgs are the words after tether in the task's command, with
	// "$@" for {{.CLI_ARGS}}; empty when the task is not run.
	tetherArgs []string
	// notRun says why the task is not run (it is still checked to exist).
	notRun string
}

// readTaskfile reads the tasks of root/Taskfile.yml. A task whose only
// command is `{{.TETHER}} ...` is run as that tether command, except down;
// the others are only checked to exist.
func readTaskfile(root string) (map[string]taskPlan, error) {
	data, err := os.ReadFile(filepath.Join(root, "Taskfile.yml"))
	if err != nil {
		return nil, err
	}
	var tf struct {
		Vars  map[string]any `json:"vars"`
		Tasks map[string]struct {
			Cmds []any `json:"cmds"`
		} `json:"tasks"`
	}
	if err := yaml.Unmarshal(data, &tf); err != nil {
		return nil, fmt.Errorf("Taskfile.yml: %w", err)
	}
	if t := fmt.Sprint(tf.Vars["TETHER"]); t != "go run ./cmd/tether" {
		return nil, fmt.Errorf("Taskfile.yml: TETHER is %q; the docs test runs tasks as `go run ./cmd/tether ...`, so it needs updating", t)
	}
	word := regexp.MustCompile(`^[A-Za-z0-9:._=/-]+$`)
	plans := map[string]taskPlan{}
	for name, t := range tf.Tasks {
		switch name {
		case "down":
			plans[name] = taskPlan{notRun: "it would take down the workbench the docs are walked on (the test runs tether down itself, at the end)"}
			continue
		case "test":
			plans[name] = taskPlan{notRun: "it is everything CI runs, this test included"}
			continue
		}
		p := taskPlan{notRun: "it is not a single tether command; the test only checks that Taskfile.yml defines it"}
		if len(t.Cmds) == 1 {
			if s, ok := t.Cmds[0].(string); ok && strings.HasPrefix(s, "{{.TETHER}} ") {
				var args []string
				ok := true
				for _, w := range strings.Fields(strings.TrimPrefix(s, "{{.TETHER}} ")) {
					switch {
					case w == "{{.CLI_ARGS}}":
						args = append(args, `"$@"`)
					case word.MatchString(w):
						args = append(args, w)
					default:
						ok = false
					}
				}
				if ok && len(args) > 0 {
					p = taskPlan{tetherArgs: args}
				}
			}
		}
		plans[name] = p
	}
	return plans, nil
}

// docsShell is where the docs' blocks run: bash in the module root with
// HOME, the tether state folder and KUBECONFIG pointing at the test's
// workbench, so `~/.local/state/tether` in a page is that workbench, and
// PATH starting with stand-ins: `go` (`go run ./cmd/tether` is the built
// tether, `go tool task` per Taskfile.yml), `tether`, and `kubectl` or
// `curl` where none is installed.
type docsShell struct {
	root     string // module root: the blocks' working folder
	dir      string // scripts, terminal output, notes
	env      []string
	preamble string
	notes    string // file the stand-ins append "not run" lines to
	log      io.Writer
}

// newDocsShell writes the stand-ins into dir/bin and the environment for
// a workbench whose state folder is home/.local/state/tether and whose
// kubeconfig is home/.kube/config. standIn names stand-ins ("kubectl",
// "curl") to write even where the command is installed (the test of the
// walker itself).
func newDocsShell(root, dir, home, cacheDir, tetherBin string, tasks map[string]taskPlan, log io.Writer, standIn ...string) (*docsShell, error) {
	realGo, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go command: %w", err)
	}
	bin := filepath.Join(dir, "bin")
	tmp := filepath.Join(dir, "tmp")
	for _, d := range []string{bin, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	sh := &docsShell{root: root, dir: dir, preamble: filepath.Join(dir, "preamble.sh"), notes: filepath.Join(dir, "not-run.txt"), log: log}

	var cases strings.Builder
	names := make([]string, 0, len(tasks))
	for n := range tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := tasks[n]
		if p.notRun == "" {
			fmt.Fprintf(&cases, "  %s) exec \"$DOCS_TETHER\" %s ;;\n", shq(n), strings.Join(p.tetherArgs, " "))
			continue
		}
		fmt.Fprintf(&cases, "  %s) echo \"docs-test: not run: go tool task %s: %s\" | tee -a \"$DOCS_NOTES\" >&2; exit 0 ;;\n",
			shq(n), n, strings.ReplaceAll(p.notRun, `"`, `'`))
	}
	goShim := `#!/usr/bin/env bash
# The docs test's go (scenarios/docs_walk_test.go): go as the docs use it.
case "${1-} ${2-}" in
"run ./cmd/tether")
  shift 2
  exec "$DOCS_TETHER" "$@" ;;
"tool task")
  shift 2
  name=${1-}
  [ $# -gt 0 ] && shift
  [ "${1-}" = "--" ] && shift
  case "$name" in
` + cases.String() + `  *) echo "docs-test: Taskfile.yml defines no task \"$name\" (go tool task $name)" >&2; exit 1 ;;
  esac ;;
"env "*|"version "*)
  exec "$DOCS_REAL_GO" "$@" ;;
esac
echo "docs-test: the docs test has no stand-in for ` + "\\`go $*\\`" + `: it runs go run ./cmd/tether, go tool task, go env and go version; annotate the block (<!-- docs-test: skip: why -->) or teach scenarios/docs_walk_test.go" >&2
exit 127
`
	files := map[string]string{"go": goShim}
	missing := func(cmd string) bool {
		_, err := exec.LookPath(cmd)
		return err != nil || slices.Contains(standIn, cmd)
	}
	if missing("kubectl") {
		files["kubectl"] = "#!/usr/bin/env bash\n" +
			`echo "docs-test: not run (kubectl is not installed here): kubectl $*" | tee -a "$DOCS_NOTES" >&2` + "\n"
	}
	if missing("curl") {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		files["curl"] = "#!/bin/sh\n# no curl here: the docs test binary stands in (scenarios/docs_curl_test.go)\n" +
			curlStandInEnv + "=1 exec " + shq(exe) + ` "$@"` + "\n"
		fmt.Fprintln(log, "docs test: no curl on PATH; the test binary stands in for it (GET with -H)")
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Symlink(tetherBin, filepath.Join(bin, "tether")); err != nil {
		return nil, err
	}
	preamble := `# The docs test's preamble (scenarios/docs_walk_test.go), sourced before each block.
set -eo pipefail
trap 'docs_rc=$?; echo "docs-test: $DOCS_FILE:$((DOCS_LINE0 + LINENO)): exit status $docs_rc: $BASH_COMMAND" >&2' ERR
`
	if err := os.WriteFile(sh.preamble, []byte(preamble), 0o644); err != nil {
		return nil, err
	}

	drop := []string{"HOME", "PATH", "KUBECONFIG", "TETHER_STATE_DIR", "TETHER_CACHE_DIR", "XDG_STATE_HOME", "TMPDIR",
		"BASH_ENV", "ENV", "CDPATH", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(drop, k) && !strings.HasPrefix(k, "DOCS_") {
			sh.env = append(sh.env, kv)
		}
	}
	sh.env = append(sh.env,
		"HOME="+home,
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"TETHER_STATE_DIR="+filepath.Join(home, ".local", "state", "tether"),
		"TETHER_CACHE_DIR="+cacheDir,
		"KUBECONFIG="+filepath.Join(home, ".kube", "config"),
		"TMPDIR="+tmp,
		"DOCS_TETHER="+tetherBin,
		"DOCS_REAL_GO="+realGo,
		"DOCS_NOTES="+sh.notes,
	)
	return sh, nil
}

// notRun is what the stand-ins did not run, one line each.
func (sh *docsShell) notRun() []string {
	b, _ := os.ReadFile(sh.notes)
	return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
}

// shellRun is one block running in bash, in its own process group as a
// terminal's foreground job is.
type shellRun struct {
	cmd  *exec.Cmd
	out  string // file with its stdout and stderr
	done chan struct{}
	err  error // after done
}

// start runs block b of page doc in the background.
func (sh *docsShell) start(doc string, b *docBlock, name string) (*shellRun, error) {
	base := fmt.Sprintf("%s-%d-%s", strings.TrimSuffix(filepath.Base(doc), ".md"), b.line, name)
	script := filepath.Join(sh.dir, base+".sh")
	if err := os.WriteFile(script, []byte("source "+shq(sh.preamble)+"\n"+b.text), 0o644); err != nil {
		return nil, err
	}
	r := &shellRun{out: filepath.Join(sh.dir, base+".out"), done: make(chan struct{})}
	f, err := os.Create(r.out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Output goes to a file, not a pipe: a command the block leaves in the
	// background (cmd &) must not hold the test up.
	r.cmd = exec.Command("bash", script)
	r.cmd.Dir = sh.root
	r.cmd.Env = append(slices.Clone(sh.env), "DOCS_FILE="+doc, "DOCS_LINE0="+strconv.Itoa(b.line-1))
	r.cmd.Stdout, r.cmd.Stderr = f, f
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bash: %w", err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

// output is what the block printed so far.
func (r *shellRun) output() string {
	b, _ := os.ReadFile(r.out)
	return string(b)
}

func (r *shellRun) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// exitCode is the block's exit status once it ended (-1: killed by a
// signal).
func (r *shellRun) exitCode() int {
	if r.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(r.err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// signal sends sig to the block's process group, as a terminal does to
// its foreground job (Ctrl-C is SIGINT).
func (r *shellRun) signal(sig syscall.Signal) {
	_ = syscall.Kill(-r.cmd.Process.Pid, sig)
}

// groupAlive reports whether anything of the block's process group still
// runs (commands it left in the background).
func (r *shellRun) groupAlive() bool {
	return syscall.Kill(-r.cmd.Process.Pid, 0) == nil
}

// stop ends whatever of the block still runs: Ctrl-C, then SIGTERM, then
// SIGKILL, a few seconds apart.
func (r *shellRun) stop() {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		if !r.groupAlive() {
			return
		}
		r.signal(sig)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && r.groupAlive() {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// wait waits for the block to end, killing its group when ctx ends first.
func (r *shellRun) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		r.signal(syscall.SIGKILL)
		<-r.done
		return ctx.Err()
	}
}

// docsWalk walks one page.
type docsWalk struct {
	sh        *docsShell
	doc       *markdownDoc
	terminals map[string]*shellRun
	termBlock map[string]*docBlock
	// background are plain blocks that left commands running.
	background []*shellRun
	// ran and skipped are for the summary.
	ran, skipped []string
}

func newDocsWalk(sh *docsShell, doc *markdownDoc) *docsWalk {
	return &docsWalk{sh: sh, doc: doc, terminals: map[string]*shellRun{}, termBlock: map[string]*docBlock{}}
}

// run does the page's steps in order and stops at the first that fails.
func (w *docsWalk) run(ctx context.Context) error {
	for _, st := range w.doc.steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		switch st.kind {
		case stepBlock:
			err = w.block(ctx, st.block)
		case stepExpect:
			err = w.expectTerminal(ctx, st.terminal, st.texts, st.line)
		case stepCtrlC:
			err = w.ctrlC(st.terminal, st.line)
		}
		if err != nil {
			return fmt.Errorf("%w%s", err, w.terminalsNow())
		}
	}
	var still []string
	for name, t := range w.terminals {
		if !t.exited() {
			still = append(still, fmt.Sprintf("terminal %s (%s:%d)", name, w.doc.path, w.termBlock[name].line))
		}
	}
	if len(still) > 0 {
		sort.Strings(still)
		return fmt.Errorf("%s still run at the end of %s: the page never says to stop them (<!-- docs-test: ctrl-c X --> where it does)%s",
			strings.Join(still, ", "), w.doc.path, w.terminalsNow())
	}
	return nil
}

// cleanup stops every terminal and background command the page left.
func (w *docsWalk) cleanup() {
	for name, t := range w.terminals {
		if t.groupAlive() {
			fmt.Fprintf(w.sh.log, "docs test: stopping terminal %s of %s\n", name, w.doc.path)
			t.stop()
		}
	}
	for _, r := range w.background {
		r.stop()
	}
}

func (w *docsWalk) where(b *docBlock) string { return fmt.Sprintf("%s:%d", w.doc.path, b.line) }

func (w *docsWalk) block(ctx context.Context, b *docBlock) error {
	switch {
	case !b.runnable():
		return nil
	case b.skip != "":
		w.skipped = append(w.skipped, fmt.Sprintf("%s: %s (%s)", w.where(b), firstCommand(b.text), b.skip))
		fmt.Fprintf(w.sh.log, "\n--- %s: skipped: %s\n%s", w.where(b), b.skip, indentLines(b.text))
		return nil
	case b.terminal != "":
		if t, ok := w.terminals[b.terminal]; ok && !t.exited() {
			return fmt.Errorf("%s: terminal %s still runs the block at %s:%d: stop it first (<!-- docs-test: ctrl-c %s -->)",
				w.where(b), b.terminal, w.doc.path, w.termBlock[b.terminal].line, b.terminal)
		}
		fmt.Fprintf(w.sh.log, "\n--- %s: in terminal %s:\n%s", w.where(b), b.terminal, indentLines(b.text))
		t, err := w.sh.start(w.doc.path, b, "terminal-"+b.terminal)
		if err != nil {
			return fmt.Errorf("%s: %w", w.where(b), err)
		}
		w.terminals[b.terminal], w.termBlock[b.terminal] = t, b
		w.ran = append(w.ran, fmt.Sprintf("%s (terminal %s): %s", w.where(b), b.terminal, firstCommand(b.text)))
		return w.expectTerminal(ctx, b.terminal, b.expect, b.line)
	}
	fmt.Fprintf(w.sh.log, "\n--- %s:\n%s", w.where(b), indentLines(b.text))
	w.ran = append(w.ran, fmt.Sprintf("%s: %s", w.where(b), firstCommand(b.text)))
	deadline := time.Now().Add(docsExpectTimeout)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		r, err := w.sh.start(w.doc.path, b, "run")
		if err != nil {
			return fmt.Errorf("%s: %w", w.where(b), err)
		}
		bctx, cancel := context.WithTimeout(ctx, docsBlockTimeout)
		werr := r.wait(bctx)
		cancel()
		out := r.output()
		fmt.Fprintf(w.sh.log, "%s(exit status %d, %s)\n", indentLines(out), r.exitCode(), time.Since(start).Round(100*time.Millisecond))
		if r.groupAlive() {
			w.background = append(w.background, r)
			fmt.Fprintf(w.sh.log, "    (it left commands running in the background: stopped at the end of the page)\n")
		}
		if werr != nil {
			return fmt.Errorf("%s: the block did not end within %s:\n%s\noutput:\n%s", w.where(b), docsBlockTimeout, indentLines(b.text), indentLines(out))
		}
		if r.exitCode() != 0 {
			return fmt.Errorf("%s: the block failed (exit status %d):\n%s\noutput:\n%s", w.where(b), r.exitCode(), indentLines(b.text), indentLines(out))
		}
		missing := missingTexts(out, b.expect)
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: the output of the block does not contain %s (run %d times over %s):\n%s\nlast output:\n%s",
				w.where(b), quoteAll(missing), attempt, docsExpectTimeout, indentLines(b.text), indentLines(out))
		}
		fmt.Fprintf(w.sh.log, "    (no %s yet: running it again)\n", quoteAll(missing))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// expectTerminal waits until terminal name's output contains every text.
func (w *docsWalk) expectTerminal(ctx context.Context, name string, texts []string, line int) error {
	t := w.terminals[name]
	if t == nil {
		return fmt.Errorf("%s:%d: no terminal %s was started", w.doc.path, line, name)
	}
	deadline := time.Now().Add(docsExpectTimeout)
	for {
		missing := missingTexts(t.output(), texts)
		if len(missing) == 0 {
			fmt.Fprintf(w.sh.log, "    (terminal %s shows %s)\n", name, quoteAll(texts))
			return nil
		}
		if t.exited() {
			return fmt.Errorf("%s:%d: terminal %s ended (exit status %d) without printing %s", w.doc.path, line, name, t.exitCode(), quoteAll(missing))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s:%d: terminal %s did not print %s within %s", w.doc.path, line, name, quoteAll(missing), docsExpectTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ctrlC presses Ctrl-C in terminal name; what runs there must end with
// status 0. A terminal whose command ended by itself (an intercept stopped
// from another terminal) must have ended with 0 too.
func (w *docsWalk) ctrlC(name string, line int) error {
	t := w.terminals[name]
	if t == nil {
		return fmt.Errorf("%s:%d: ctrl-c %s: no terminal %s was started", w.doc.path, line, name, name)
	}
	b := w.termBlock[name]
	if !t.exited() {
		t.signal(syscall.SIGINT)
		select {
		case <-t.done:
		case <-time.After(docsCtrlCTimeout):
			t.stop()
			return fmt.Errorf("%s:%d: terminal %s (%s:%d) did not end within %s of Ctrl-C", w.doc.path, line, name, w.doc.path, b.line, docsCtrlCTimeout)
		}
	}
	out := t.output()
	fmt.Fprintf(w.sh.log, "\n--- %s:%d: Ctrl-C in terminal %s; it printed:\n%s(exit status %d)\n", w.doc.path, line, name, indentLines(out), t.exitCode())
	if t.exitCode() != 0 {
		return fmt.Errorf("%s:%d: terminal %s (%s:%d) ended with exit status %d after Ctrl-C:\n%s\noutput:\n%s",
			w.doc.path, line, name, w.doc.path, b.line, t.exitCode(), indentLines(b.text), indentLines(out))
	}
	if t.groupAlive() {
		t.stop()
	}
	return nil
}

// terminalsNow is the output of every terminal, for a failure message.
func (w *docsWalk) terminalsNow() string {
	var names []string
	for n := range w.terminals {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		t := w.terminals[n]
		state := "running"
		if t.exited() {
			state = fmt.Sprintf("ended, exit status %d", t.exitCode())
		}
		fmt.Fprintf(&b, "\nterminal %s (%s:%d, %s; %s):\n%s", n, w.doc.path, w.termBlock[n].line, state, t.out, indentLines(lastLines(t.output(), 30)))
	}
	return b.String()
}

// missingTexts are the texts out does not contain.
func missingTexts(out string, texts []string) []string {
	var missing []string
	for _, t := range texts {
		if !strings.Contains(out, t) {
			missing = append(missing, t)
		}
	}
	return missing
}

func quoteAll(texts []string) string {
	q := make([]string, len(texts))
	for i, t := range texts {
		q[i] = strconv.Quote(t)
	}
	return strings.Join(q, " and ")
}

// firstCommand is a block's first line that is not a comment, for the
// summary.
func firstCommand(text string) string {
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			if i := strings.Index(l, "  #"); i > 0 {
				l = strings.TrimSpace(l[:i])
			}
			return l
		}
	}
	return ""
}

func indentLines(s string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
