package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tether-dev/tether/cluster/internal/state"
)

// twoSpokes is a recorded workbench: a hub and two spokes.
func twoSpokes() *state.File {
	return &state.File{Provider: ProviderEmbedded, Clusters: []state.Cluster{
		{Name: "hub", Role: "hub", Provider: ProviderEmbedded},
		{Name: "spoke-1", Role: "spoke", Provider: ProviderEmbedded},
		{Name: "spoke-2", Role: "spoke", Provider: ProviderEmbedded},
	}}
}

func TestRecordedConfig(t *testing.T) {
	got := recordedConfig(twoSpokes())
	want := Config{Provider: ProviderEmbedded, Hub: ClusterConfig{Name: "hub"}, Spokes: []ClusterConfig{{Name: "spoke-1"}, {Name: "spoke-2"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("recordedConfig = %+v, want %+v", got, want)
	}
	// The existing provider needs each cluster's context back, or the
	// next Up would refuse the configuration.
	ex := &state.File{Provider: ProviderExisting, Clusters: []state.Cluster{
		{Name: "spoke-1", Role: "spoke", Context: "kind-a"},
		{Name: "main", Role: "hub", Context: "kind-hub"},
	}}
	got = recordedConfig(ex)
	if got.Hub != (ClusterConfig{Name: "main", Context: "kind-hub"}) || len(got.Spokes) != 1 || got.Spokes[0].Context != "kind-a" {
		t.Errorf("recordedConfig(existing) = %+v", got)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("the recorded config of an existing workbench does not validate: %v", err)
	}
}

func TestWithSpoke(t *testing.T) {
	cfg, err := withSpoke(twoSpokes(), ClusterConfig{Name: "spoke-3"}, "/state")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Spokes); n != 3 || cfg.Spokes[2].Name != "spoke-3" || cfg.Hub.Name != "hub" {
		t.Errorf("withSpoke = %+v, want hub and spoke-1..3 in order", cfg)
	}
	for _, tt := range []struct {
		name  string
		st    *state.File
		spoke ClusterConfig
		want  []string
	}{
		{"existing spoke", twoSpokes(), ClusterConfig{Name: "spoke-1"}, []string{`"spoke-1"`, "has it already", "spoke-1, spoke-2"}},
		{"the hub", twoSpokes(), ClusterConfig{Name: "hub"}, []string{`"hub"`, "name of the hub"}},
		{"bad name", twoSpokes(), ClusterConfig{Name: "Spoke_3"}, []string{`"Spoke_3"`, "DNS-safe"}},
		{"no workbench", &state.File{}, ClusterConfig{Name: "spoke-3"}, []string{`"spoke-3"`, "no clusters", "/state"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := withSpoke(tt.st, tt.spoke, "/state")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			// The command adds what to type (tether up) from the cause.
			var none *NoClustersError
			if strings.Contains(tt.name, "no workbench") && (!errors.As(err, &none) || none.StateDir != "/state") {
				t.Errorf("error %v is not a NoClustersError for /state", err)
			}
		})
	}
}

func TestWithoutSpoke(t *testing.T) {
	cfg, err := withoutSpoke(twoSpokes(), "spoke-1", "/state")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Spokes) != 1 || cfg.Spokes[0].Name != "spoke-2" || cfg.Hub.Name != "hub" {
		t.Errorf("withoutSpoke = %+v, want hub and spoke-2", cfg)
	}
	for _, tt := range []struct {
		name, spoke string
		st          *state.File
		want        []string
	}{
		{"the hub", "hub", twoSpokes(), []string{`"hub"`, "it is the hub"}},
		{"unknown", "spoke-9", twoSpokes(), []string{`"spoke-9"`, "no spoke of that name", "spoke-1, spoke-2"}},
		{"no workbench", "spoke-1", &state.File{}, []string{`"spoke-1"`, "no clusters"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := withoutSpoke(tt.st, tt.spoke, "/state")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			// The command adds what to type (tether up, tether down) from
			// the cause.
			var none *NoClustersError
			if strings.Contains(tt.name, "no workbench") && (!errors.As(err, &none) || none.StateDir != "/state") {
				t.Errorf("error %v is not a NoClustersError for /state", err)
			}
			if tt.name == "the hub" && !errors.Is(err, ErrIsHub) {
				t.Errorf("error %v is not ErrIsHub", err)
			}
		})
	}
}

// A refused add or remove changes nothing: not the record, not the
// kubeconfig, and on an empty workbench it does not even make the state
// folder.
func TestSpokeChangesRefusedLeaveNoTrace(t *testing.T) {
	wb, e := testWorkbench(t, errNoEngine)
	if _, err := wb.AddSpoke(context.Background(), ClusterConfig{Name: "spoke-3"}); err == nil {
		t.Fatal("AddSpoke on an empty workbench succeeded")
	}
	if names := listDir(t, wb.StateDir()); names != nil {
		t.Errorf("a refused add left %v in the state folder", names)
	}
	if err := (state.Store{Dir: wb.StateDir()}).Save(twoSpokes()); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(wb.StateDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wb.AddSpoke(context.Background(), ClusterConfig{Name: "spoke-2"}); err == nil {
		t.Error("AddSpoke of an existing spoke succeeded")
	}
	for _, n := range []string{"hub", "nope"} {
		if _, err := wb.RemoveSpoke(context.Background(), n); err == nil {
			t.Errorf("RemoveSpoke(%s) succeeded", n)
		}
	}
	after, _ := os.ReadFile(filepath.Join(wb.StateDir(), "state.json"))
	if string(before) != string(after) {
		t.Error("a refused change rewrote state.json")
	}
	if _, err := os.Stat(wb.KubeconfigPath()); !os.IsNotExist(err) {
		t.Errorf("a refused change touched the kubeconfig: %v", err)
	}
	if e.calls.Load() != 0 {
		t.Error("a refused change asked for the Docker engine")
	}
	cfg, err := wb.RecordedConfig()
	if err != nil || len(cfg.Spokes) != 2 {
		t.Errorf("RecordedConfig = %+v, %v", cfg, err)
	}
}
