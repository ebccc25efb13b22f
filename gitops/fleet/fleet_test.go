package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/cluster/netpipe/netpipetest"
	"github.com/tether-dev/tether/cluster/pki"
	"github.com/tether-dev/tether/cluster/process"
	"github.com/tether-dev/tether/gitops/principal"
)

// waitPrincipalService is satisfied by the principal (its certificate, for
// the Service name agents verify) and by nothing else listening there, such
// as a service proxy that accepts and finds no endpoint.
func TestWaitPrincipalService(t *testing.T) {
	wb, err := cluster.New(cluster.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ca, _, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	spokes := []cluster.Cluster{{Name: "spoke-1"}}
	if err := writeCertificates(wb, ca, cluster.Cluster{Name: "hub"}, spokes); err != nil {
		t.Fatal(err)
	}
	ptls, err := readTLS(wb, "principal")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := principal.ServerTLS(ptls["ca.crt"], ptls["tls.crt"], ptls["tls.key"])
	if err != nil {
		t.Fatal(err)
	}

	// A listener that closes every connection: the proxy without a route.
	empty := netpipetest.Serve(t, netpipetest.HangUp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := waitPrincipalService(ctx, wb, empty, spokes, nil, "logs"); err == nil {
		t.Fatal("a listener that is not the principal passed")
	}

	handshakes := make(chan error, 16)
	principalAddr := netpipetest.Serve(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		defer tc.Close()
		handshakes <- tc.Handshake()
	})
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitPrincipalService(ctx, wb, principalAddr, spokes, nil, "logs"); err != nil {
		t.Fatal(err)
	}
	// The probe presents an agent certificate: the principal sees a
	// client it accepts, not a refused handshake in its log.
	select {
	case err := <-handshakes:
		if err != nil {
			t.Errorf("server side of the probe: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the server saw no handshake")
	}
}

// up keeps running components only when the state says they serve every
// address this version relies on: a state written by an older up (no
// Service address for the agents, or none for the Git server's webhook)
// restarts them, as does one whose components run unsupervised, a dead
// process or a different set of spokes.
func TestRestartReason(t *testing.T) {
	_, start, err := process.Stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	alive := []process.Record{{Name: "principal", PID: os.Getpid(), StartTime: start, Status: "principal.status.json"}}
	spokes := []cluster.Cluster{{Name: "spoke-1"}, {Name: "spoke-2"}}
	current := func() *State {
		return &State{Principal: "127.0.0.1:1", PrincipalService: "127.0.0.1:2", PrincipalServiceHTTP: "127.0.0.1:3",
			Processes: alive, Spokes: []string{"spoke-1", "spoke-2"}}
	}
	if why := restartReason(current(), spokes); why != "" {
		t.Fatalf("a current state with every process alive must be reattached to; got a restart because %q", why)
	}
	for name, tc := range map[string]struct {
		edit func(*State)
		want string
	}{
		"no PrincipalService (agents dial the process)":         {func(s *State) { s.PrincipalService = "" }, "an older tether"},
		"no PrincipalServiceHTTP (webhook goes to the process)": {func(s *State) { s.PrincipalServiceHTTP = "" }, "an older tether"},
		"a process gone": {func(s *State) {
			s.Processes = append(s.Processes, process.Record{Name: "git", PID: os.Getpid(), StartTime: start + 1, Status: "git.status.json"})
		}, "some are gone"},
		"a process without a supervisor (an older up)": {func(s *State) {
			s.Processes = append(s.Processes, process.Record{Name: "git", PID: os.Getpid(), StartTime: start})
		}, "without supervisors"},
		"other spokes": {func(s *State) { s.Spokes = []string{"spoke-1"} }, "the spokes changed"},
	} {
		st := current()
		tc.edit(st)
		if why := restartReason(st, spokes); !strings.Contains(why, tc.want) {
			t.Errorf("%s: restart reason %q, want one saying %q", name, why, tc.want)
		}
	}
	if why := restartReason(nil, spokes); why == "" {
		t.Error("no previous state: nothing to reattach to, yet no reason to start")
	}
}

// TestHubAndSpokes: the hub is the cluster whose role says so, wherever it
// is in the list; none, or two, is an error whose cause tells the command
// what to say to do.
func TestHubAndSpokes(t *testing.T) {
	hub, spokes, err := hubAndSpokes([]cluster.Cluster{{Name: "a", Role: cluster.RoleSpoke}, {Name: "h", Role: cluster.RoleHub}, {Name: "b", Role: cluster.RoleSpoke}})
	if err != nil || hub.Name != "h" || len(spokes) != 2 || spokes[0].Name != "a" || spokes[1].Name != "b" {
		t.Fatalf("hub %q, spokes %v, err %v; want h, [a b]", hub.Name, spokes, err)
	}
	var none *cluster.NoClustersError
	if _, _, err := hubAndSpokes(nil); !errors.As(err, &none) {
		t.Errorf("hubAndSpokes(nil): err %v, want a NoClustersError", err)
	}
	if _, _, err := hubAndSpokes([]cluster.Cluster{{Name: "a", Role: cluster.RoleSpoke}}); !errors.Is(err, ErrNoHub) {
		t.Errorf("hubAndSpokes(spoke only): err %v, want ErrNoHub", err)
	}
	var damaged *DamagedError
	if _, _, err := hubAndSpokes([]cluster.Cluster{{Name: "h", Role: cluster.RoleHub}, {Name: "g", Role: cluster.RoleHub}}); !errors.As(err, &damaged) || !strings.Contains(err.Error(), `"h" and "g"`) {
		t.Errorf("hubAndSpokes(two hubs): err %v, want a DamagedError naming both", err)
	}
}

// What fleet asks of a provider it learns from the provider's traits, for
// the clusters it is given and for a record that only names a provider
// (one an older tether wrote included).
func TestProviderAnswers(t *testing.T) {
	for _, tc := range []struct {
		provider             string
		pods, standIns, keep bool
	}{
		{cluster.ProviderKind, true, false, false},
		{cluster.ProviderEmbedded, false, true, true},
		{cluster.ProviderExisting, false, false, true},
	} {
		tr := providerTraits(t, tc.provider)
		if got := componentsAsPods(tr); got != tc.pods {
			t.Errorf("%s: components as pods %v, want %v", tc.provider, got, tc.pods)
		}
		if got := standsInForSample(tr); got != tc.standIns {
			t.Errorf("%s: sample stand-ins %v, want %v", tc.provider, got, tc.standIns)
		}
		prev := &State{Provider: tc.provider, GitURL: "http://127.0.0.1:1001/sample.git"}
		if recordedTraits(prev) != tr {
			t.Errorf("%s: a record's traits %+v, want the provider's %+v", tc.provider, recordedTraits(prev), tr)
		}
		if got := previousAddrs(prev)[0] != ""; got != tc.keep {
			t.Errorf("%s: keeps the Git server's address %v, want %v", tc.provider, got, tc.keep)
		}
	}
	// Clusters a caller built without traits run the components here, as
	// up always did for anything but kind, and stand nothing in.
	if componentsAsPods(cluster.Traits{}) || standsInForSample(cluster.Traits{}) {
		t.Error("zero traits claim pods or stand-ins")
	}
	if (recordedTraits(&State{Provider: "later"}) != cluster.Traits{}) {
		t.Error("an unknown recorded provider claims traits")
	}
}

// Given the clusters, fleet does not read the workbench's record for them:
// here that record is damaged, and RemoveSpoke still refuses by the given
// clusters, saying what they hold.
func TestGivenClustersAreNotReadAgain(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte("{damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	wb, err := cluster.New(cluster.Options{StateDir: dir, Kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wb.Clusters(); err == nil {
		t.Fatal("the damaged record reads")
	}
	given := []cluster.Cluster{{Name: "spoke-1", Role: cluster.RoleSpoke}, {Name: "hub", Role: cluster.RoleHub}}
	opts := Options{Workbench: wb, Bin: "tether", Clusters: given}
	got, err := opts.clusters()
	if err != nil || len(got) != 2 {
		t.Fatalf("clusters = %v, %v; want the given ones", got, err)
	}
	_, err = RemoveSpoke(context.Background(), opts, "spoke-9")
	if err == nil || !strings.Contains(err.Error(), "no spoke of that name") || !strings.Contains(err.Error(), "spoke-1") {
		t.Errorf("RemoveSpoke(spoke-9) = %v; want the refusal naming spoke-1", err)
	}
}
