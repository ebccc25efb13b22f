package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// renderPlain reads every manifest below appDir. WalkDir visits entries in
// lexical order, which is what makes the result deterministic.
func renderPlain(rootReal, appDir string) ([]sourced, error) {
	var objs []sourced
	var errs []error
	fail := func(p, format string, args ...any) {
		rel, _ := within(rootReal, p)
		errs = append(errs, &RenderError{File: rel, Msg: fmt.Sprintf(format, args...)})
	}

	walkErr := filepath.WalkDir(appDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fail(p, "%v", err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		// Hidden entries are VCS metadata (.git) or tool state (.github,
		// .argocd-source-*.yaml); they are not part of the application.
		if p != appDir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isManifest(d.Name()) {
			return nil
		}

		target := p
		if d.Type()&fs.ModeSymlink != 0 {
			resolved, err := filepath.EvalSymlinks(p)
			if err != nil {
				fail(p, "cannot resolve symlink: %v", err)
				return nil
			}
			if _, ok := within(rootReal, resolved); !ok {
				fail(p, "symlink points outside the repository")
				return nil
			}
			// A symlinked directory named like a manifest is not followed:
			// following directory links invites cycles and renders the same
			// objects twice.
			if fi, err := os.Stat(resolved); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
			target = resolved
		} else if !d.Type().IsRegular() {
			return nil
		}

		rel, _ := within(rootReal, p)
		data, err := os.ReadFile(target)
		if err != nil {
			fail(p, "%v", err)
			return nil
		}
		found, ferrs := decodeFile(rel, data, strings.EqualFold(filepath.Ext(p), ".json"))
		errs = append(errs, ferrs...)
		for _, o := range found {
			objs = append(objs, sourced{obj: o, file: rel})
		}
		return nil
	})
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return objs, nil
}

func isManifest(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// document is one YAML document and the 1-based line of the file it starts on.
type document struct {
	line int
	text []byte
}

// decodeFile parses one manifest file. rel is used in messages only.
// JSON files are one document: "---" has no meaning in JSON.
func decodeFile(rel string, data []byte, isJSON bool) ([]*unstructured.Unstructured, []error) {
	docs := []document{{line: 1, text: data}}
	if !isJSON {
		docs = splitDocuments(data)
	}

	var objs []*unstructured.Unstructured
	var errs []error
	n := 0
	for _, doc := range docs {
		if blank(doc.text) {
			continue
		}
		n++
		// Strict mode turns duplicate keys into errors: otherwise the last
		// key silently wins and the user's intent is lost without a trace.
		js, err := yaml.YAMLToJSONStrict(doc.text)
		if err != nil {
			errs = append(errs, yamlError(rel, doc.line, err))
			continue
		}
		var v any
		if err := utiljson.Unmarshal(js, &v); err != nil {
			errs = append(errs, &RenderError{File: rel, Line: doc.line, Msg: err.Error()})
			continue
		}
		if v == nil {
			continue
		}
		what := "document " + strconv.Itoa(n)
		m, ok := v.(map[string]any)
		if !ok {
			errs = append(errs, &RenderError{File: rel, Msg: what + " is not an object"})
			continue
		}
		if m["kind"] == "List" {
			items, ok := m["items"].([]any)
			if !ok && m["items"] != nil {
				errs = append(errs, &RenderError{File: rel, Msg: what + ": List items is not a list"})
				continue
			}
			for i, it := range items {
				itemWhat := what + " item " + strconv.Itoa(i+1)
				im, ok := it.(map[string]any)
				if !ok {
					errs = append(errs, &RenderError{File: rel, Msg: itemWhat + " is not an object"})
					continue
				}
				if msg := checkObject(im, itemWhat); msg != "" {
					errs = append(errs, &RenderError{File: rel, Msg: msg})
					continue
				}
				objs = append(objs, &unstructured.Unstructured{Object: im})
			}
			continue
		}
		if msg := checkObject(m, what); msg != "" {
			errs = append(errs, &RenderError{File: rel, Msg: msg})
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs, errs
}

// splitDocuments cuts a YAML stream at "---" lines, remembering where each
// document starts so that parser line numbers, which count from the start of
// a document, can be turned into line numbers of the file.
func splitDocuments(data []byte) []document {
	var docs []document
	start, line := 1, 0
	var cur bytes.Buffer
	for len(data) > 0 {
		line++
		l := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		rest, isSep := separator(l)
		if !isSep {
			cur.Write(l)
			continue
		}
		docs = append(docs, document{line: start, text: bytes.Clone(cur.Bytes())})
		cur.Reset()
		start = line + 1
		// "--- {a: b}" puts content on the separator line itself.
		if len(bytes.TrimSpace(rest)) > 0 && !bytes.HasPrefix(bytes.TrimSpace(rest), []byte("#")) {
			start = line
			cur.Write(rest)
		}
	}
	return append(docs, document{line: start, text: cur.Bytes()})
}

// separator reports whether l is a document marker and returns what follows it.
func separator(l []byte) ([]byte, bool) {
	if !bytes.HasPrefix(l, []byte("---")) {
		return nil, false
	}
	rest := l[3:]
	if len(bytes.TrimRight(rest, "\r\n")) == 0 {
		return nil, true
	}
	if rest[0] == ' ' || rest[0] == '\t' {
		return rest, true
	}
	return nil, false
}

// blank reports whether a document holds nothing but whitespace and comments.
func blank(text []byte) bool {
	for _, l := range bytes.Split(text, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}

var yamlLineRE = regexp.MustCompile(`\bline (\d+)\b`)

// yamlError rewrites the parser's document-relative line numbers into file
// line numbers, so both the position prefix and the parser's own text point
// at the line the user has to fix.
func yamlError(rel string, start int, err error) error {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	line := 0
	msg = yamlLineRE.ReplaceAllStringFunc(msg, func(s string) string {
		n, _ := strconv.Atoi(yamlLineRE.FindStringSubmatch(s)[1])
		abs := start + n - 1
		if line == 0 {
			line = abs
		}
		return "line " + strconv.Itoa(abs)
	})
	if line == 0 {
		line = start
	}
	// Multi-line parser messages ("unmarshal errors:\n  line 3: ...") read
	// badly in a one-line status condition.
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, ":\n", ": ")), " ")
	return &RenderError{File: rel, Line: line, Msg: msg}
}
