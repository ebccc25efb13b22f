package nodeimage

import (
	"archive/tar"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/tether-dev/tether/cluster/internal/providers/embedded"
)

// preloaded is what the node's containerd must hold before it boots.
type preloaded struct {
	archive string   // docker-archive with every image
	refs    []string // the references kubeadm will ask for
	pause   string   // the sandbox image, for containerd's config
}

// componentImages makes the images kubeadm's static pods and add-ons use,
// named exactly as `kubeadm config images list` prints them, so kubeadm and
// the kubelet find them in containerd and never pull.
func (b *builder) componentImages(ctx context.Context, cp, nt embedded.Binaries, small map[string]string, rootfs, work string) (pre preloaded, err error) {
	step := b.prog.Start("make the control-plane, CoreDNS, kube-proxy and pause images")
	defer func() { step.Done(err) }()
	out, err := exec.CommandContext(ctx, nt.Path("kubeadm"), "config", "images", "list", "--kubernetes-version", embedded.KubernetesVersion).Output()
	if err != nil {
		return pre, fmt.Errorf("kubeadm config images list: %w", err)
	}
	images := map[name.Reference]v1.Image{}
	for _, line := range strings.Fields(string(out)) {
		ref, err := name.ParseReference(line)
		if err != nil {
			return pre, fmt.Errorf("kubeadm image %q: %w", line, err)
		}
		component := path.Base(ref.Context().RepositoryStr())
		step.Update(line)
		var img v1.Image
		switch component {
		case "kube-apiserver", "kube-controller-manager", "kube-scheduler":
			img, err = binaryImage(work, component, cp.Path(component), "/usr/local/bin/"+component, nil)
		case "etcd":
			img, err = binaryImage(work, component, cp.Path("etcd"), "/usr/local/bin/etcd", nil)
		case "kube-proxy":
			var extra []fileEntry
			extra, err = iptablesFiles(rootfs)
			if err == nil {
				img, err = binaryImage(work, component, nt.Path("kube-proxy"), "/usr/local/bin/kube-proxy", extra)
			}
		case "coredns":
			img, err = binaryImage(work, component, nt.Path("coredns"), "/coredns", nil)
		case "pause":
			img, err = binaryImage(work, component, small["pause"], "/pause", nil)
			pre.pause = line
		default:
			err = fmt.Errorf("kubeadm asks for image %s, which tether does not know how to build", line)
		}
		if err != nil {
			return pre, fmt.Errorf("image %s: %w", line, err)
		}
		images[ref] = img
		pre.refs = append(pre.refs, line)
	}
	if pre.pause == "" {
		return pre, fmt.Errorf("kubeadm lists no pause image in %q", out)
	}
	pre.archive = filepath.Join(work, "images.tar")
	step.Update("writing " + pre.archive)
	if err := tarball.MultiRefWriteToFile(pre.archive, images); err != nil {
		return pre, fmt.Errorf("write images: %w", err)
	}
	return pre, nil
}

// fileEntry is one entry of an image layer, read from a root filesystem.
type fileEntry struct {
	name   string // path in the image, without a leading slash
	source string // file to copy (regular files)
	link   string // symlink target
	mode   int64
}

// binaryImage is one layer: the static binary at target, plus extra files,
// with the binary as entrypoint and a PATH that finds it.
func binaryImage(work, component, binary, target string, extra []fileEntry) (v1.Image, error) {
	entries := append([]fileEntry{{name: strings.TrimPrefix(target, "/"), source: binary, mode: 0o755}}, extra...)
	layerPath := filepath.Join(work, component+".layer.tar")
	if err := writeLayer(layerPath, entries); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromFile(layerPath)
	if err != nil {
		return nil, err
	}
	cfg, err := empty.Image.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = runtime.GOARCH
	cfg.Config.Entrypoint = []string{target}
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(img, layer)
}

// writeLayer writes entries and the folders above them, in a fixed order
// with fixed times, so equal inputs give equal layers.
func writeLayer(p string, entries []fileEntry) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	addDirs := func(name string) error {
		var parents []string
		for d := path.Dir(name); d != "." && d != "/" && !dirs[d]; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: epoch}); err != nil {
		return err
	}
	dirs["tmp"] = true
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.name] {
			continue
		}
		seen[e.name] = true
		if err := addDirs(e.name); err != nil {
			return err
		}
		if e.link != "" {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: e.name, Linkname: e.link, Mode: 0o777, ModTime: epoch}); err != nil {
				return err
			}
			continue
		}
		src, err := os.Open(e.source)
		if err != nil {
			return err
		}
		st, err := src.Stat()
		if err != nil {
			src.Close()
			return err
		}
		mode := e.mode
		if mode == 0 {
			mode = int64(st.Mode().Perm())
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: mode, Size: st.Size(), ModTime: epoch}); err != nil {
			src.Close()
			return err
		}
		_, err = io.Copy(tw, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// iptablesFiles are the iptables tools kube-proxy runs, taken from the
// node's own Debian root filesystem with every shared library they load, so
// kube-proxy's image needs no distribution of its own. The nf_tables
// backend is used: rules of either backend are applied by the kernel alike.
func iptablesFiles(rootfs string) ([]fileEntry, error) {
	c := newClosure(rootfs)
	if err := c.add("/usr/sbin/xtables-nft-multi"); err != nil {
		return nil, err
	}
	if err := c.add("/usr/sbin/conntrack"); err != nil {
		return nil, err
	}
	// iptables loads its match and target extensions with dlopen.
	exts, _ := filepath.Glob(filepath.Join(rootfs, "usr/lib/*-linux-gnu/xtables/*.so"))
	if len(exts) == 0 {
		return nil, fmt.Errorf("no iptables extensions under %s/usr/lib/*/xtables", rootfs)
	}
	for _, e := range exts {
		if err := c.add("/" + strings.TrimPrefix(e, rootfs+"/")); err != nil {
			return nil, err
		}
	}
	for _, n := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore",
		"iptables-nft", "iptables-nft-save", "iptables-nft-restore", "ip6tables-nft", "ip6tables-nft-save", "ip6tables-nft-restore"} {
		c.entries["usr/sbin/"+n] = fileEntry{name: "usr/sbin/" + n, link: "xtables-nft-multi"}
	}
	return c.list(), nil
}

// closure collects files of a root filesystem with the shared libraries and
// interpreter they need, resolving symlinks inside that root, never on the
// host.
type closure struct {
	root    string
	entries map[string]fileEntry
}

func newClosure(root string) *closure { return &closure{root: root, entries: map[string]fileEntry{}} }

func (c *closure) list() []fileEntry {
	out := make([]fileEntry, 0, len(c.entries))
	for _, k := range sortedKeys(c.entries) {
		out = append(out, c.entries[k])
	}
	return out
}

// resolve follows symlinks of p within the root, recording each link it
// passes, and returns the real path.
func (c *closure) resolve(p string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(path.Clean(p), "/"), "/")
	cur := "/"
	for hops := 0; len(parts) > 0; {
		next := path.Join(cur, parts[0])
		parts = parts[1:]
		fi, err := os.Lstat(filepath.Join(c.root, next))
		if err != nil {
			return "", fmt.Errorf("%s in %s: %w", p, c.root, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many symlinks", p)
		}
		target, err := os.Readlink(filepath.Join(c.root, next))
		if err != nil {
			return "", err
		}
		name := strings.TrimPrefix(next, "/")
		c.entries[name] = fileEntry{name: name, link: target}
		// A relative target is resolved from the link's folder, which is
		// where cur still points.
		if path.IsAbs(target) {
			cur = "/"
		}
		parts = append(strings.Split(strings.TrimPrefix(path.Clean(target), "/"), "/"), parts...)
	}
	return cur, nil
}

func (c *closure) add(p string) error {
	real, err := c.resolve(p)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(real, "/")
	if _, done := c.entries[name]; done {
		return nil
	}
	c.entries[name] = fileEntry{name: name, source: filepath.Join(c.root, real)}
	f, err := elf.Open(filepath.Join(c.root, real))
	if err != nil {
		return nil // not ELF (a script or data): nothing more to follow
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			data, err := io.ReadAll(prog.Open())
			if err != nil {
				return err
			}
			if err := c.add(strings.TrimRight(string(data), "\x00")); err != nil {
				return err
			}
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, lib := range libs {
		found := ""
		for _, dir := range c.libraryDirs() {
			if _, err := os.Lstat(filepath.Join(c.root, dir, lib)); err == nil {
				found = path.Join(dir, lib)
				break
			}
		}
		if found == "" {
			return fmt.Errorf("%s needs %s, which is not in %s", p, lib, c.root)
		}
		if err := c.add(found); err != nil {
			return err
		}
	}
	return nil
}

func (c *closure) libraryDirs() []string {
	dirs, _ := filepath.Glob(filepath.Join(c.root, "usr/lib/*-linux-gnu"))
	out := make([]string, 0, len(dirs)+4)
	for _, d := range dirs {
		out = append(out, "/"+strings.TrimPrefix(d, c.root+"/"))
	}
	return append(out, "/usr/lib64", "/usr/lib", "/lib64", "/lib")
}
