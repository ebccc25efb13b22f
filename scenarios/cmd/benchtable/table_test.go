package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// stream builds a go test -json stream from (package, action, output).
func stream(t *testing.T, events ...[3]string) string {
	t.Helper()
	var b strings.Builder
	for _, e := range events {
		line, err := json.Marshal(map[string]string{"Package": e[0], "Action": e[1], "Output": e[2]})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestCollectAndPrint(t *testing.T) {
	const scen = "github.com/tether-dev/tether/scenarios"
	const cl = "github.com/tether-dev/tether/cluster"
	in := stream(t,
		[3]string{cl, "start", ""},
		[3]string{cl, "output", "goos: linux\n"},
		// The name comes first; the figures after the benchmark ran, with
		// output of its own in between.
		[3]string{cl, "output", "BenchmarkEmbeddedUp-2   \t"},
		[3]string{cl, "output", "some progress line\n"},
		[3]string{cl, "output", "       1\t10400000000 ns/op\t        10.40 s/up\t       582.0 MiB-rss/cluster\n"},
		[3]string{cl, "pass", ""},
		[3]string{scen, "output", "BenchmarkFleetCommitToSynced/spokes=2-2         \t       1\t 680000000 ns/op\t       680.0 ms/commit-to-all-synced\n"},
		// A figure of 0 is a row like any other (duplicates must show).
		[3]string{scen, "output", "BenchmarkPrincipalScale-2   \t       1\t 32036022816 ns/op\t         0 duplicates\t         0.1820 ms-ack-p50-loaded\t     31000 status-msgs/s\n"},
		// No figures of its own: ns/op is shown.
		[3]string{scen, "output", "BenchmarkPlain-2   \t       1\t    1500 ns/op\n"},
		[3]string{scen, "output", "--- FAIL: BenchmarkBroken\n"},
		[3]string{scen, "fail", ""},
	)
	in += "# a line go printed itself\n"
	var progress bytes.Buffer
	rows, failed, err := Collect(strings.NewReader(in), &progress)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0] != scen {
		t.Errorf("failed packages: %v", failed)
	}
	want := []Row{
		{cl, "BenchmarkEmbeddedUp", "s/up", 10.4},
		{cl, "BenchmarkEmbeddedUp", "MiB-rss/cluster", 582},
		{scen, "BenchmarkFleetCommitToSynced/spokes=2", "ms/commit-to-all-synced", 680},
		{scen, "BenchmarkPrincipalScale", "duplicates", 0},
		{scen, "BenchmarkPrincipalScale", "ms-ack-p50-loaded", 0.182},
		{scen, "BenchmarkPrincipalScale", "status-msgs/s", 31000},
		{scen, "BenchmarkPlain", "ns/op", 1500},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows:\n%+v\nwant:\n%+v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
	for _, s := range []string{"bench: BenchmarkEmbeddedUp done", "--- FAIL: BenchmarkBroken", "# a line go printed itself"} {
		if !strings.Contains(progress.String(), s) {
			t.Errorf("progress lacks %q:\n%s", s, progress.String())
		}
	}

	var out bytes.Buffer
	if err := Print(&out, rows, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 8 || !strings.HasPrefix(lines[0], "BENCHMARK") {
		t.Fatalf("table:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "31000") || !strings.Contains(out.String(), "10.40") {
		t.Errorf("table:\n%s", out.String())
	}
	out.Reset()
	if err := Print(&out, rows, true); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"| `BenchmarkEmbeddedUp` | s/up | 10.40 |", "| `BenchmarkPrincipalScale` | duplicates | 0 |", "| `BenchmarkPrincipalScale` | ms-ack-p50-loaded | 0.182 |"} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("markdown lacks %q:\n%s", row, out.String())
		}
	}
}

func TestFormat(t *testing.T) {
	for v, want := range map[float64]string{31000.4: "31000", 582: "582.0", 10.4: "10.40", 0.0123: "0.0123", 0: "0"} {
		if got := format(v); got != want {
			t.Errorf("format(%v) = %q, want %q", v, got, want)
		}
	}
}
