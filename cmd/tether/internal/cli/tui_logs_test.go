package cli

import (
	"bytes"
	"log"
	"log/slog"
	"strings"
	"testing"
)

func TestRedirectLogsSendsProcessLogsToTheFileUntilUndone(t *testing.T) {
	prevSlog, prevOut := slog.Default(), log.Writer()
	var buf bytes.Buffer
	undo := redirectLogs(slog.New(slog.NewTextHandler(&buf, nil)))
	log.Print("from log")
	slog.Info("from slog")
	undo()
	for _, want := range []string{"from log", "from slog"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("redirected log lacks %q:\n%s", want, buf.String())
		}
	}
	if slog.Default() != prevSlog || log.Writer() != prevOut {
		t.Error("undo did not restore slog's default and log's output")
	}
}
