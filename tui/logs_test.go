package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeLines(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i <= to; i++ {
		fmt.Fprintf(f, "line %d\n", i)
	}
}

func TestReadLogTailsThenFollows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etcd.log")
	writeLines(t, path, 1, 1000)
	data, next, reset, err := readLog(path, -1)
	if err != nil || !reset {
		t.Fatalf("first read: reset %v, err %v", reset, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != tailLines || lines[0] != "line 501" || lines[len(lines)-1] != "line 1000" {
		t.Fatalf("tail = %d lines, %q … %q", len(lines), lines[0], lines[len(lines)-1])
	}
	// A line still being written is left for the next read.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	fmt.Fprint(f, "line 1001\nline 10")
	f.Close()
	data, next, reset, err = readLog(path, next)
	if err != nil || reset || string(data) != "line 1001\n" {
		t.Fatalf("follow read = %q, reset %v, err %v", data, reset, err)
	}
	f, _ = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	fmt.Fprint(f, "02\n")
	f.Close()
	if data, _, _, _ := readLog(path, next); string(data) != "line 1002\n" {
		t.Fatalf("the finished line = %q", data)
	}
	// A truncated file (a process restarted over it) starts over.
	if err := os.WriteFile(path, []byte("fresh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, _, reset, _ = readLog(path, next)
	if !reset || string(data) != "fresh\n" {
		t.Fatalf("after truncation: %q, reset %v", data, reset)
	}
}

func TestLogsScreenFollowsAFile(t *testing.T) {
	dir := t.TempDir()
	apiLog := filepath.Join(dir, "kube-apiserver.log")
	writeLines(t, apiLog, 1, 40)
	snap := sampleSnapshot()
	snap.Clusters[0].Processes[1].Log = apiLog
	m := newTestModel(&fakeSource{snap: snap}, func(o *Options) { o.LogFile = filepath.Join(dir, "tui.log") })
	press(m, "4")
	m.Update(statusMsg{snap: snap})
	v := m.View()
	for _, want := range []string{"hub/etcd", "hub/kube-apiserver", "spoke-1/kube-scheduler", "tether (this UI)"} {
		if !strings.Contains(v, want) {
			t.Errorf("log list lacks %q:\n%s", want, v)
		}
	}
	press(m, "j", "enter")
	v = m.View()
	if !strings.Contains(v, "hub/kube-apiserver") || !strings.Contains(v, "40 lines ·") || !strings.Contains(v, "line 40") {
		t.Fatalf("the opened log should show its end:\n%s", v)
	}
	if strings.Contains(v, "line 1\n") {
		t.Errorf("the viewport should be at the bottom, not the top:\n%s", v)
	}
	lg := m.screens[3].(*logsModel)
	writeLines(t, apiLog, 41, 42)
	_, cmd := m.Update(logTickMsg{gen: lg.gen})
	settle(m, cmd)
	if v := m.View(); !strings.Contains(v, "line 42") || !strings.Contains(v, "42 lines ·") {
		t.Errorf("appended lines should show:\n%s", v)
	}
	// A stale tick from an earlier opening does nothing.
	if _, cmd := m.Update(logTickMsg{gen: lg.gen - 1}); cmd != nil {
		t.Errorf("a stale tick started a read")
	}
	press(m, "k", "k", "k")
	if v := m.View(); !strings.Contains(v, "paused") {
		t.Errorf("scrolling up should pause following:\n%s", v)
	}
	press(m, "F")
	if v := m.View(); strings.Contains(v, "paused") {
		t.Errorf("F should follow again:\n%s", v)
	}
	press(m, "esc")
	if v := m.View(); !strings.Contains(v, "Pick a log") {
		t.Errorf("esc should go back to the list:\n%s", v)
	}
}

func TestLogsMissingFileIsInline(t *testing.T) {
	snap := sampleSnapshot()
	m := newTestModel(&fakeSource{snap: snap})
	press(m, "4")
	m.Update(statusMsg{snap: snap})
	press(m, "enter")
	if v := m.View(); !strings.Contains(v, "no such file or directory") {
		t.Errorf("a missing log should say so:\n%s", v)
	}
}

func TestOpenLogSurvivesDeletion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "tui.log")
	logger, closeLog, err := OpenLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	logger.Info("before")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	logger.Info("after down cleared the state folder")
	data, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(data), "after down cleared") {
		t.Fatalf("the log was not reopened: %q, %v", data, err)
	}
}
