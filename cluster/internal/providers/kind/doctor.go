package kind

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// What kind needs of the machine for a hub and a couple of spokes. Every
// node runs systemd, containerd and a kubelet, which watch many files:
// kind's known-issues page asks for these inotify limits, below which
// pods fail with "too many open files".
const (
	minInotifyWatches   = 524288
	minInotifyInstances = 512
	// minEngineMemory is about what a hub and two spokes use with the
	// GitOps system on them.
	minEngineMemory = 4 << 30
)

// Doctor says what `up` would find here beyond a Docker engine answering:
// which node image it would use or how it would get one, and the inotify
// limits and engine memory several kind clusters need. facts describe the
// machine; each warning says what may go wrong and what to do. It pulls
// and builds nothing.
func (p *Provider) Doctor(ctx context.Context) (facts, warnings []string) {
	img, warn := p.nodeImagePlan(ctx)
	facts = append(facts, img)
	if warn != "" {
		warnings = append(warnings, warn)
	}
	if w := p.inotifyWarning(); w != "" {
		warnings = append(warnings, w)
	}
	mem, w := p.engineMemory(ctx)
	if mem != "" {
		facts = append(facts, mem)
	}
	if w != "" {
		warnings = append(warnings, w)
	}
	return facts, warnings
}

// nodeImagePlan follows NodeImage's order without pulling or building.
func (p *Provider) nodeImagePlan(ctx context.Context) (fact, warning string) {
	kindest := shortImage(NodeImage)
	switch {
	case p.env.NodeImage != "" && p.imagePresent(ctx, p.env.NodeImage):
		return fmt.Sprintf("node image %s (given) is in Docker", p.env.NodeImage), ""
	case p.env.NodeImage != "":
		return fmt.Sprintf("node image %s (given) is not in Docker: up pulls it", p.env.NodeImage), ""
	case p.images.Present(ctx):
		return fmt.Sprintf("node image %s (built offline) is in Docker: up uses it", p.images.Ref()), ""
	case p.imagePresent(ctx, NodeImage):
		return fmt.Sprintf("node image %s is in Docker: up uses it", kindest), ""
	}
	if err := p.images.CanBuild(); err != nil {
		return fmt.Sprintf("no node image in Docker yet: up pulls %s", kindest),
			fmt.Sprintf("should pulling %s fail, this machine cannot build a node image offline (%v): give up --node-image <an image Docker has>", kindest, err)
	}
	return fmt.Sprintf("no node image in Docker yet: up pulls %s, or, if that fails within %s, builds %s offline (minutes, once)", kindest, seconds(defaultPullTimeout), p.images.Ref()), ""
}

// inotifyWarning checks the Linux inotify limits; elsewhere the engine
// runs in a VM whose limits Docker Desktop sets.
func (p *Provider) inotifyWarning() string {
	if p.goos != "linux" {
		return ""
	}
	var low []string
	for _, l := range []struct {
		key  string
		want int
	}{{"max_user_watches", minInotifyWatches}, {"max_user_instances", minInotifyInstances}} {
		b, err := p.readFile("/proc/sys/fs/inotify/" + l.key)
		if err != nil {
			return fmt.Sprintf("could not read fs.inotify.%s (%v): kind needs at least %d", l.key, err, l.want)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Sprintf("fs.inotify.%s is %q, not a number: kind needs at least %d", l.key, strings.TrimSpace(string(b)), l.want)
		}
		if n < l.want {
			low = append(low, fmt.Sprintf("fs.inotify.%s is %d (kind needs %d)", l.key, n, l.want))
		}
	}
	if len(low) == 0 {
		return ""
	}
	return fmt.Sprintf("%s: several clusters fail with \"too many open files\"; run sudo sysctl -w fs.inotify.max_user_watches=%d fs.inotify.max_user_instances=%d (and put both in /etc/sysctl.d/ to keep them)",
		strings.Join(low, ", "), minInotifyWatches, minInotifyInstances)
}

// engineMemory reads the memory of the Docker engine, which on macOS and
// Windows is its VM's and often less than the machine's.
func (p *Provider) engineMemory(ctx context.Context) (fact, warning string) {
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	out, stderr, err := p.run(ctx, "docker", "info", "--format", "{{.MemTotal}}")
	if err != nil {
		why := firstLine(stderr)
		if why == "" {
			why = err.Error()
		}
		return "", fmt.Sprintf("could not read the Docker engine's memory (docker info: %s): a hub and 2 spokes need about %s", why, gib(minEngineMemory))
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return "", fmt.Sprintf("could not read the Docker engine's memory (docker info printed %q): a hub and 2 spokes need about %s", strings.TrimSpace(string(out)), gib(minEngineMemory))
	}
	fact = fmt.Sprintf("the engine has %s of memory", gib(n))
	if n < minEngineMemory {
		warning = fmt.Sprintf("the Docker engine has %s of memory; a hub and 2 spokes need about %s: give it more (Docker Desktop: Settings, Resources) or run fewer spokes (--spokes 1)", gib(n), gib(minEngineMemory))
	}
	return fact, warning
}

func gib(n int64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }
