package catalog

import (
	"testing"

	"github.com/tether-dev/tether/gitops/sample"
)

func TestWhoNamesTheServer(t *testing.T) {
	for body, want := range map[string]string{
		"local":     "local",
		"backend\n": "backend",
		sample.Info{Cluster: "original", Pod: "echo-0", Node: "n"}.Answer(): "original",
		sample.Info{Cluster: "backend"}.Answer():                            "backend",
		"hello from tether's sample on an unnamed cluster\n":                "hello from tether's sample on an unnamed cluster",
	} {
		if got := who(body); got != want {
			t.Errorf("who(%q) = %q, want %q", body, got, want)
		}
	}
}
