package progress

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLinesPrintsStartDoneAndThrottlesUpdates(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Unix(0, 0)
	r := &lines{w: &buf, interval: time.Second, now: func() time.Time { return clock }}
	s := r.Start("build kube-apiserver")
	clock = clock.Add(2 * time.Second)
	s.Update("10/100 packages")
	s.Update("11/100 packages") // same instant: throttled
	clock = clock.Add(500 * time.Millisecond)
	s.Done(nil)
	s.Done(errors.New("ignored: already done"))
	f := r.Start("start etcd")
	f.Done(errors.New("port 2379 taken"))

	got := buf.String()
	for _, want := range []string{
		" • build kube-apiserver ...\n",
		"   build kube-apiserver: 10/100 packages\n",
		" ✓ build kube-apiserver (2.5s)\n",
		" ✗ start etcd (0s): port 2379 taken\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "11/100") || strings.Contains(got, "ignored") {
		t.Errorf("throttled update or second Done printed:\n%s", got)
	}
}
