package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Row is one figure of one benchmark.
type Row struct {
	Package   string
	Benchmark string
	Metric    string
	Value     float64
}

// event is the part of a test2json event benchtable reads.
type event struct {
	Action  string
	Package string
	Output  string
}

// Go's standard per-op units: shown only for benchmarks that report
// nothing of their own, since with -benchtime 1x they time the whole run.
var standardUnits = map[string]bool{"ns/op": true, "B/op": true, "allocs/op": true, "MB/s": true}

var (
	// benchName starts a result line: the name, then a tab.
	benchName = regexp.MustCompile(`^(Benchmark\S+)\s+(.*)$`)
	// result is the iteration count and the first figure.
	result = regexp.MustCompile(`^\s*(\d+)\s+(\S+\s+\S+.*)$`)
	// procs is the -GOMAXPROCS suffix go test adds to names.
	procs = regexp.MustCompile(`-\d+$`)
)

// Collect reads a go test -json stream and returns every benchmark figure
// in the order they appeared, and the packages that failed. Lines that are
// not JSON (a build error printed by go itself) and progress go to
// progress.
func Collect(r io.Reader, progress io.Writer) ([]Row, []string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	var rows []Row
	var failed []string
	// Output arrives in pieces; complete lines per package are parsed.
	partial := map[string]string{}
	pending := map[string]string{}
	parse := func(pkg, line string) {
		name, rest := pending[pkg], line
		if m := benchName.FindStringSubmatch(line); m != nil {
			name, rest = m[1], m[2]
			pending[pkg] = name
		}
		if name == "" {
			return
		}
		m := result.FindStringSubmatch(rest)
		if m == nil {
			return
		}
		got := figures(m[2])
		if len(got) == 0 {
			return
		}
		delete(pending, pkg)
		short := procs.ReplaceAllString(name, "")
		fmt.Fprintf(progress, "bench: %s done\n", short)
		custom := false
		for _, f := range got {
			if !standardUnits[f.unit] {
				custom = true
			}
		}
		for _, f := range got {
			if custom && standardUnits[f.unit] {
				continue
			}
			rows = append(rows, Row{Package: pkg, Benchmark: short, Metric: f.unit, Value: f.value})
		}
	}
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Action == "" {
			fmt.Fprintln(progress, sc.Text())
			continue
		}
		switch ev.Action {
		case "output":
			text := partial[ev.Package] + ev.Output
			lines := strings.Split(text, "\n")
			partial[ev.Package] = lines[len(lines)-1]
			for _, l := range lines[:len(lines)-1] {
				if strings.HasPrefix(l, "--- FAIL") || strings.HasPrefix(l, "FAIL") || strings.Contains(l, "panic:") {
					fmt.Fprintln(progress, ev.Package+": "+l)
				}
				parse(ev.Package, l)
			}
		case "build-output":
			fmt.Fprint(progress, ev.Output)
		case "fail", "build-fail":
			if ev.Package != "" && !contains(failed, ev.Package) {
				failed = append(failed, ev.Package)
			}
		}
	}
	for pkg, rest := range partial {
		if rest != "" {
			parse(pkg, rest)
		}
	}
	return rows, failed, sc.Err()
}

type figure struct {
	value float64
	unit  string
}

// figures parses "123 ns/op\t0.68 ms/commit\t..." into value-unit pairs.
func figures(s string) []figure {
	f := strings.Fields(s)
	var out []figure
	for i := 0; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			break
		}
		out = append(out, figure{value: v, unit: f[i+1]})
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Print writes rows as one table: benchmark, metric, value (and the
// package, so two packages' benchmarks of the same name stay apart).
func Print(w io.Writer, rows []Row, markdown bool) error {
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Package < rows[j].Package })
	if markdown {
		fmt.Fprintln(w, "| benchmark | metric | value | package |")
		fmt.Fprintln(w, "| --- | --- | ---: | --- |")
		for _, r := range rows {
			fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", r.Benchmark, r.Metric, format(r.Value), r.Package)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BENCHMARK\tMETRIC\tVALUE\tPACKAGE\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", r.Benchmark, r.Metric, format(r.Value), r.Package)
	}
	if len(rows) == 0 {
		fmt.Fprintln(tw, "(no benchmark figures in the input)\t\t\t\t")
	}
	return tw.Flush()
}

// format keeps three significant figures, without exponents for the
// sizes benchmarks report.
func format(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
