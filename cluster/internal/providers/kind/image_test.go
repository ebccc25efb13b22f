package kind

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/cluster/internal/providers"
)

const userImage = "registry.example/kind-node:v1.37.0"

// TestNodeImageSelection walks the provider's order of choice: the user's
// image, tether's offline image, kind's image in Docker, kind's image
// pulled, and tether's image built offline. Whatever is chosen is what the
// kind config's nodes boot, and tether's image gets its own CNI.
func TestNodeImageSelection(t *testing.T) {
	pullFailed := fakeAnswer{stderr: "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host\n", err: errors.New("exit status 1")}
	const reason = "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host"
	tests := []struct {
		name string
		// user is --node-image; kindHere says whether Docker has kind's
		// image; tetherHere whether it has tether's.
		user       string
		userHere   bool
		userPull   *fakeAnswer
		tetherHere bool
		kindHere   bool
		kindPull   *fakeAnswer
		canBuild   error
		buildErr   error

		want       string
		wantPulls  []string
		wantBuilds int32
		wantErr    []string
		wantStep   string
	}{
		{name: "user's image in Docker, tether's too", user: userImage, userHere: true, tetherHere: true, kindHere: true, want: userImage},
		{name: "user's image pulled", user: userImage, userPull: &fakeAnswer{}, want: userImage, wantPulls: []string{"docker pull " + userImage}},
		{
			name: "user's image neither here nor pullable", user: userImage, userPull: &pullFailed,
			wantPulls: []string{"docker pull " + userImage},
			wantErr:   []string{"node image " + userImage + " is not in Docker and cannot be pulled", "no such host", "kind.nodeImage"},
		},
		{name: "tether's image in Docker", tetherHere: true, kindHere: true, want: fakeTetherImage},
		{name: "kind's image in Docker", kindHere: true, want: NodeImage},
		{name: "kind's image pulled", kindPull: &fakeAnswer{}, want: NodeImage, wantPulls: []string{"docker pull " + NodeImage}},
		{
			name: "pull fails, built offline", kindPull: &pullFailed,
			want: fakeTetherImage, wantPulls: []string{"docker pull " + NodeImage}, wantBuilds: 1,
			wantStep: "kindest/node cannot be pulled (" + reason + "); building a node image offline",
		},
		{
			name: "pull fails, cannot build", kindPull: &pullFailed, canBuild: errors.New("debootstrap is not installed: apt-get install debootstrap"),
			wantPulls: []string{"docker pull " + NodeImage},
			wantErr:   []string{"kindest/node:v1.37", "cannot be pulled", "no such host", "cannot build one offline", "debootstrap is not installed", "kind.nodeImage"},
		},
		{
			name: "pull fails, build fails", kindPull: &pullFailed, buildErr: errors.New("debootstrap: exit status 1"),
			wantPulls: []string{"docker pull " + NodeImage}, wantBuilds: 1,
			wantErr: []string{"build node image " + fakeTetherImage + " offline", "no such host", "debootstrap: exit status 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "hub")
			f.p.env.NodeImage = tt.user
			delete(f.run.answers, "docker image inspect --format {{.Id}} "+NodeImage)
			if tt.kindHere {
				f.run.answers["docker image inspect --format {{.Id}} "+NodeImage] = fakeAnswer{stdout: "sha256:1\n"}
			}
			if tt.userHere {
				f.run.answers["docker image inspect --format {{.Id}} "+userImage] = fakeAnswer{stdout: "sha256:2\n"}
			}
			if tt.userPull != nil {
				f.run.answers["docker pull "+userImage] = *tt.userPull
			}
			if tt.kindPull != nil {
				f.run.answers["docker pull "+NodeImage] = *tt.kindPull
			}
			f.images.present, f.images.canBuild, f.images.buildErr = tt.tetherHere, tt.canBuild, tt.buildErr

			_, err := f.p.Ensure(context.Background(), providers.Spec{Name: "hub", Role: providers.RoleHub}, nil)
			if got := f.run.callsWith("docker pull"); fmt.Sprint(got) != fmt.Sprint(tt.wantPulls) {
				t.Errorf("pulls %q, want %q", got, tt.wantPulls)
			}
			if n := f.images.ensures.Load(); n != tt.wantBuilds {
				t.Errorf("offline builds %d, want %d", n, tt.wantBuilds)
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("Ensure succeeded, want an error")
				}
				// The command adds "or pass --node-image" for this cause.
				var ie *NodeImageError
				if strings.Contains(err.Error(), "kind.nodeImage") && !errors.As(err, &ie) {
					t.Errorf("error %v is not a NodeImageError", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if tt.canBuild != nil && !errors.Is(err, tt.canBuild) {
					t.Errorf("error %q does not wrap why the image cannot be built", err)
				}
				if len(f.lib.creates) != 0 {
					t.Errorf("created a cluster without a node image")
				}
				return
			}
			if err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			if len(f.lib.creates) != 1 {
				t.Fatalf("%d creates, want 1", len(f.lib.creates))
			}
			req := f.lib.creates[0].req
			if req.Image != tt.want {
				t.Errorf("create image %q, want %q", req.Image, tt.want)
			}
			checkConfig(t, req.Config, f.kindNm, 0, tt.want)
			if tt.wantStep != "" {
				if s := f.prog.step(tt.wantStep); s == nil || !s.done || s.err != nil {
					t.Errorf("steps %q, want a finished %q", f.prog.titles(), tt.wantStep)
				}
			}
			if tt.wantBuilds > 0 && (f.images.opts.CacheDir != f.p.env.CacheDir || f.images.opts.Progress == nil) {
				t.Errorf("build options %+v, want the cache folder and a progress reporter", f.images.opts)
			}
		})
	}
}

// The default image's pull is bounded, so an unreachable registry that
// hangs rather than fails falls through to the offline build.
func TestNodeImagePullIsBounded(t *testing.T) {
	f := newFixture(t, "hub")
	delete(f.run.answers, "docker image inspect --format {{.Id}} "+NodeImage)
	f.run.answers["docker pull "+NodeImage] = fakeAnswer{}
	if _, err := f.p.NodeImage(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, c := range f.run.calls {
		if c == "docker pull "+NodeImage {
			if !f.run.deadlines[i] || f.run.budgets[i] > defaultPullTimeout || f.run.budgets[i] < defaultPullTimeout-10*time.Second {
				t.Errorf("pull ran with deadline %v, budget %v; want about %v", f.run.deadlines[i], f.run.budgets[i], defaultPullTimeout)
			}
		}
	}
	if defaultPullTimeout != 60*time.Second {
		t.Errorf("defaultPullTimeout = %v, want 60s", defaultPullTimeout)
	}
}

// Clusters are created in parallel; the node image is pulled or built once
// and every cluster boots the same one.
func TestNodeImageChosenOnce(t *testing.T) {
	f := newFixture(t, "hub")
	delete(f.run.answers, "docker image inspect --format {{.Id}} "+NodeImage)
	f.run.answers["docker pull "+NodeImage] = fakeAnswer{err: errors.New("exit status 1"), stderr: "timeout\n"}
	names := []string{"hub", "spoke-1", "spoke-2", "spoke-3"}
	for _, n := range names[1:] {
		k := f.p.ClusterName(n)
		f.lib.nodes[k] = f.lib.nodes[f.kindNm]
		f.lib.kubeconfig[k+"/false"] = kubeconfigFor(k, 7000)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Go(func() {
			_, errs[i] = f.p.Ensure(context.Background(), providers.Spec{Name: n, Role: providers.RoleSpoke}, nil)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Ensure(%s): %v", names[i], err)
		}
	}
	if n := f.images.ensures.Load(); n != 1 {
		t.Errorf("offline image built %d times, want once", n)
	}
	if pulls := f.run.callsWith("docker pull"); len(pulls) != 1 {
		t.Errorf("pulls %q, want one", pulls)
	}
	if len(f.lib.creates) != len(names) {
		t.Fatalf("%d creates, want %d", len(f.lib.creates), len(names))
	}
	for _, c := range f.lib.creates {
		if c.req.Image != fakeTetherImage || c.req.Config.Nodes[0].Image != fakeTetherImage {
			t.Errorf("%s boots %s / %s, want %s", c.name, c.req.Image, c.req.Config.Nodes[0].Image, fakeTetherImage)
		}
	}
}
