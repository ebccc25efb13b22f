package scenarios

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The docs test's reading of a Markdown page: its fenced blocks and the
// annotations that say how to walk them (docs/scenarios.md, "The docs
// test"). An annotation is an HTML comment on a line of its own, invisible
// when the page is rendered:
//
//	<!-- docs-test: skip: REASON -->        before a sh block: not run, REASON logged
//	<!-- docs-test: terminal X -->          before a sh block: run in the background, as terminal X
//	<!-- docs-test: expect "TEXT" ... -->   after a block: its output contains every TEXT (a
//	                                        terminal's: comes to; a block's: it is run again until it does)
//	<!-- docs-test: expect X "TEXT" ... --> anywhere: terminal X's output comes to contain every TEXT
//	<!-- docs-test: ctrl-c X -->            anywhere: Ctrl-C in terminal X, which then ends with status 0
//
// TEXT is a Go string literal, so \" is a quote. Every other ```sh block
// is run as written, in order.

// docStep is one thing the docs test does, in page order.
type docStep struct {
	kind docStepKind
	line int // 1-based line of the fence or the annotation
	// block is the block to run (stepBlock).
	block *docBlock
	// terminal is the terminal an expect or ctrl-c names.
	terminal string
	// texts are what an expect waits for, all of them.
	texts []string
}

type docStepKind int

const (
	stepBlock docStepKind = iota
	stepExpect
	stepCtrlC
)

// docBlock is a fenced block.
type docBlock struct {
	line     int    // line of the opening fence
	lang     string // the info string's first word: "sh", "" for output
	text     string // the lines between the fences, indentation removed
	skip     string // why it is not run ("" when it is)
	terminal string // the terminal it runs in ("" for the foreground)
	// expect is what its output must contain, every text (none: nothing).
	expect []string
}

// runnable reports whether the block holds commands (as opposed to
// output, Go code or a config file).
func (b *docBlock) runnable() bool {
	switch b.lang {
	case "sh", "bash", "shell":
		return true
	}
	return false
}

// markdownDoc is a page as the docs test reads it.
type markdownDoc struct {
	path  string // as the test names it, e.g. docs/onboarding.md
	steps []docStep
}

// blocks returns the page's fenced blocks in order.
func (d *markdownDoc) blocks() []*docBlock {
	var out []*docBlock
	for _, s := range d.steps {
		if s.kind == stepBlock {
			out = append(out, s.block)
		}
	}
	return out
}

var (
	fenceRE      = regexp.MustCompile("^( {0,3})```\\s*([A-Za-z0-9_+-]*)")
	annotationRE = regexp.MustCompile(`^\s*<!--\s*docs-test:\s*(.*?)\s*-->\s*$`)
	terminalRE   = regexp.MustCompile(`^[A-Z][A-Z0-9]*$`)
)

// readMarkdownDoc reads root/rel and checks its annotations: each one is
// well formed and sits where it applies (skip and terminal right before a
// sh block, an unnamed expect right after a block that runs), a terminal
// block is followed by an expect saying when it is ready, and ctrl-c and
// named expects name a terminal started earlier on the page.
func readMarkdownDoc(root, rel string) (*markdownDoc, error) {
	f, err := os.Open(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc := &markdownDoc{path: rel}
	var (
		errs []string
		// pending are skip/terminal annotations waiting for their block.
		pending   []docStep
		pendSkip  string
		pendTerm  string
		lastBlock *docBlock // the block just closed, while only blank lines follow
		open      *docBlock
		indent    int
		body      []string
		started   = map[string]bool{}
	)
	fail := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s:%d: %s", rel, line, fmt.Sprintf(format, args...)))
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if open != nil {
			if strings.TrimSpace(line) == "```" {
				open.text = strings.Join(body, "\n")
				if open.text != "" {
					open.text += "\n"
				}
				doc.steps = append(doc.steps, docStep{kind: stepBlock, line: open.line, block: open})
				lastBlock, open = open, nil
				continue
			}
			for i := 0; i < indent && strings.HasPrefix(line, " "); i++ {
				line = line[1:]
			}
			body = append(body, line)
			continue
		}
		if m := annotationRE.FindStringSubmatch(line); m != nil {
			st, err := parseAnnotation(m[1], n)
			if err != nil {
				fail(n, "%v", err)
				continue
			}
			switch st.kind {
			case stepBlock: // skip or terminal: applies to the next block
				if st.block.skip != "" {
					pendSkip = st.block.skip
				} else {
					pendTerm = st.block.terminal
				}
				pending = append(pending, st)
			case stepExpect:
				if st.terminal == "" {
					switch {
					case lastBlock == nil:
						fail(n, "an unnamed expect must follow its block (only blank lines between), or name a terminal: expect X \"TEXT\"")
					case !lastBlock.runnable() || lastBlock.skip != "":
						fail(n, "expect after a block that is not run (line %d)", lastBlock.line)
					case len(lastBlock.expect) > 0:
						fail(n, "a second expect for the block at line %d: put both texts in one, or split the block", lastBlock.line)
					default:
						lastBlock.expect = st.texts
					}
					continue
				}
				if !started[st.terminal] {
					fail(n, "expect %s: no terminal %s is started above", st.terminal, st.terminal)
				}
				doc.steps = append(doc.steps, st)
			case stepCtrlC:
				if !started[st.terminal] {
					fail(n, "ctrl-c %s: no terminal %s is started above", st.terminal, st.terminal)
				}
				doc.steps = append(doc.steps, st)
			}
			continue
		}
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			open = &docBlock{line: n, lang: m[2], skip: pendSkip, terminal: pendTerm}
			indent, body = len(m[1]), nil
			if len(pending) > 1 {
				fail(n, "more than one annotation before this block (lines %d and %d)", pending[0].line, pending[1].line)
			}
			if len(pending) > 0 && !open.runnable() {
				fail(n, "skip or terminal annotation before a ```%s block, which is not run anyway", open.lang)
			}
			if open.terminal != "" {
				started[open.terminal] = true
			}
			pending, pendSkip, pendTerm = nil, "", ""
			lastBlock = nil
			continue
		}
		if strings.TrimSpace(line) != "" {
			if len(pending) > 0 {
				fail(pending[0].line, "annotation not followed by a block (only blank lines may come between)")
				pending, pendSkip, pendTerm = nil, "", ""
			}
			lastBlock = nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if open != nil {
		fail(open.line, "fenced block never closed")
	}
	if len(pending) > 0 {
		fail(pending[0].line, "annotation not followed by a block")
	}
	for _, b := range doc.blocks() {
		if b.terminal != "" && len(b.expect) == 0 {
			fail(b.line, "terminal %s block without an expect after it: say what it prints once it is ready, e.g. <!-- docs-test: expect \"press Ctrl-C\" -->", b.terminal)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("annotations of %s (see docs/scenarios.md, \"The docs test\"):\n%s", rel, strings.Join(errs, "\n"))
	}
	return doc, nil
}

// parseAnnotation reads what follows "docs-test:".
func parseAnnotation(s string, line int) (docStep, error) {
	word, rest, _ := strings.Cut(s, " ")
	rest = strings.TrimSpace(rest)
	switch {
	case word == "skip:" || strings.HasPrefix(s, "skip:"):
		reason := strings.TrimSpace(strings.TrimPrefix(s, "skip:"))
		if reason == "" {
			return docStep{}, fmt.Errorf("skip needs a reason: <!-- docs-test: skip: why -->")
		}
		return docStep{kind: stepBlock, line: line, block: &docBlock{skip: reason}}, nil
	case word == "terminal":
		if !terminalRE.MatchString(rest) {
			return docStep{}, fmt.Errorf("terminal %q: name it with a capital letter, e.g. terminal B", rest)
		}
		return docStep{kind: stepBlock, line: line, block: &docBlock{terminal: rest}}, nil
	case word == "expect":
		term := ""
		if t, r, ok := strings.Cut(rest, " "); ok && terminalRE.MatchString(t) {
			term, rest = t, strings.TrimSpace(r)
		}
		var texts []string
		for r := rest; r != ""; {
			q, err := strconv.QuotedPrefix(r)
			var text string
			if err == nil {
				text, err = strconv.Unquote(q)
			}
			if err != nil || text == "" {
				return docStep{}, fmt.Errorf("expect %s: give each text as a quoted string, e.g. expect \"press Ctrl-C\"", rest)
			}
			texts = append(texts, text)
			r = strings.TrimSpace(r[len(q):])
		}
		if len(texts) == 0 {
			return docStep{}, fmt.Errorf("expect: say what to expect, e.g. expect \"press Ctrl-C\"")
		}
		return docStep{kind: stepExpect, line: line, terminal: term, texts: texts}, nil
	case word == "ctrl-c":
		if !terminalRE.MatchString(rest) {
			return docStep{}, fmt.Errorf("ctrl-c %q: name the terminal, e.g. ctrl-c B", rest)
		}
		return docStep{kind: stepCtrlC, line: line, terminal: rest}, nil
	}
	return docStep{}, fmt.Errorf("unknown annotation %q: the docs test knows skip:, terminal, expect and ctrl-c", s)
}

// goToolTasks returns the tasks a page's sh blocks run with `go tool
// task NAME`, each with the first line that does.
func goToolTasks(doc *markdownDoc) map[string]int {
	re := regexp.MustCompile(`\bgo tool task\s+([A-Za-z0-9:_-]+)`)
	out := map[string]int{}
	for _, b := range doc.blocks() {
		if !b.runnable() {
			continue
		}
		for i, l := range strings.Split(b.text, "\n") {
			for _, m := range re.FindAllStringSubmatch(l, -1) {
				if _, ok := out[m[1]]; !ok {
					out[m[1]] = b.line + 1 + i
				}
			}
		}
	}
	return out
}
