package nodeimage

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tether-dev/tether/cluster/internal/providers/embedded"
)

const entrypoint = `["/usr/local/bin/entrypoint", "/sbin/init"]`

// importBase streams the root filesystem with tether's files on top into
// `docker import`: the node image before its images are preloaded.
func (b *builder) importBase(ctx context.Context, rootfs string, nt embedded.Binaries, small map[string]string, pauseImage, ref string) (err error) {
	step := b.prog.Start("import the node's root filesystem into Docker")
	defer func() { step.Done(err) }()
	extra := []fileEntry{
		{name: "usr/bin/kubelet", source: nt.Path("kubelet"), mode: 0o755},
		{name: "usr/bin/kubeadm", source: nt.Path("kubeadm"), mode: 0o755},
		{name: "usr/bin/kubectl", source: nt.Path("kubectl"), mode: 0o755},
		{name: "usr/local/bin/crictl", source: nt.Path("crictl"), mode: 0o755},
		{name: "usr/local/sbin/tether-runc", source: small["tether-runc"], mode: 0o755},
	}
	for _, p := range []string{"ptp", "loopback", "host-local", "portmap"} {
		extra = append(extra, fileEntry{name: "opt/cni/bin/" + p, source: nt.Path(p), mode: 0o755})
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeNodeTar(pw, rootfs, extra, pauseImage))
	}()
	_, _, err = runDocker(ctx, pr, "import",
		"--change", "ENTRYPOINT "+entrypoint,
		"--change", "ENV container=docker",
		"-", ref)
	pr.Close()
	return err
}

// nodeEntry is one of tether's own files in the node image.
type nodeEntry struct {
	name string
	mode int64
	data []byte
	link string
}

// nodeFiles are tether's files of the node: the overlay folder, the
// version kind reads, the binaries, and the systemd links that boot to
// multi-user, start the kubelet (containerd is enabled by its package) and
// leave out what a container cannot use.
func nodeFiles(extra []fileEntry, pauseImage string) ([]nodeEntry, error) {
	var out []nodeEntry
	err := fs.WalkDir(overlay, "files", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := overlay.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "files/")
		mode := int64(0o644)
		if strings.Contains(name, "/bin/") {
			mode = 0o755
		}
		out = append(out, nodeEntry{name: name, mode: mode, data: []byte(strings.ReplaceAll(string(data), "@PAUSE_IMAGE@", pauseImage))})
		return nil
	})
	if err != nil {
		return nil, err
	}
	out = append(out, nodeEntry{name: "kind/version", mode: 0o644, data: []byte(embedded.KubernetesVersion + "\n")})
	for _, e := range extra {
		data, err := os.ReadFile(e.source)
		if err != nil {
			return nil, err
		}
		out = append(out, nodeEntry{name: e.name, mode: e.mode, data: data})
	}
	out = append(out,
		nodeEntry{name: "etc/systemd/system/default.target", link: "/lib/systemd/system/multi-user.target"},
		nodeEntry{name: "etc/systemd/system/multi-user.target.wants/kubelet.service", link: "/etc/systemd/system/kubelet.service"})
	for _, u := range masked {
		out = append(out, nodeEntry{name: "etc/systemd/system/" + u, link: "/dev/null"})
	}
	return out, nil
}

// writeNodeTar writes the root filesystem with tether's files in place of
// any file of the same name (Docker refuses a stream that names a path
// twice).
func writeNodeTar(w io.Writer, rootfs string, extra []fileEntry, pauseImage string) error {
	files, err := nodeFiles(extra, pauseImage)
	if err != nil {
		return err
	}
	replaced := map[string]bool{}
	for _, f := range files {
		replaced[f.name] = true
	}
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	err = filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(rootfs, p)
		rel = filepath.ToSlash(rel)
		if rel == "." || rel == ".complete" || replaced[rel] {
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if info.Mode()&(os.ModeSocket|os.ModeNamedPipe|os.ModeDevice) != 0 {
			return nil
		}
		link := ""
		if info.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if info.IsDir() {
			hdr.Name += "/"
			dirs[rel] = true
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read root filesystem %s: %w", rootfs, err)
	}
	epoch := time.Unix(0, 0)
	for _, f := range files {
		var parents []string
		for d := path.Dir(f.name); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}); err != nil {
				return err
			}
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch}
		if f.link != "" {
			hdr = &tar.Header{Typeflag: tar.TypeSymlink, Name: f.name, Linkname: f.link, Mode: 0o777, ModTime: epoch}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if f.link == "" {
			if _, err := tw.Write(f.data); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// preload starts the base image with nothing but containerd, imports the
// component images into it (unpacked on first use, as kind does), and
// commits the result as the node image. The images land in
// /var/lib/containerd, which Docker copies into each node's /var volume.
func (b *builder) preload(ctx context.Context, base string, pre preloaded, ref string) (err error) {
	step := b.prog.Start(fmt.Sprintf("preload %d images into the node's containerd", len(pre.refs)))
	defer func() { step.Done(err) }()
	container := fmt.Sprintf("tether-node-build-%d", os.Getpid())
	_, _, _ = runDocker(ctx, nil, "rm", "-f", "-v", container)
	if _, _, err := runDocker(ctx, nil, "run", "-d", "--name", container, "--entrypoint", "/bin/sleep", base, "infinity"); err != nil {
		return err
	}
	defer func() { _, _, _ = runDocker(context.WithoutCancel(ctx), nil, "rm", "-f", "-v", container) }()
	if _, _, err := runDocker(ctx, nil, "exec", "-d", container, "containerd"); err != nil {
		return err
	}
	step.Update("waiting for containerd")
	deadline := time.Now().Add(time.Minute)
	for {
		_, _, err := runDocker(ctx, nil, "exec", container, "ctr", "version")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd in the build container did not answer within a minute: %w", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	step.Update("importing " + strings.Join(pre.refs, " "))
	f, err := os.Open(pre.archive)
	if err != nil {
		return err
	}
	_, _, err = runDocker(ctx, f, "exec", "-i", container, "ctr", "--namespace=k8s.io", "images", "import",
		"--label=io.cri-containerd.pinned=pinned", "--all-platforms", "--no-unpack", "--digests", "-")
	f.Close()
	if err != nil {
		return err
	}
	out, _, err := runDocker(ctx, nil, "exec", container, "ctr", "--namespace=k8s.io", "images", "list", "-q")
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		have[l] = true
	}
	for _, r := range pre.refs {
		if !have[r] {
			return fmt.Errorf("image %s missing from the node's containerd after import (it has: %s)", r, strings.Join(strings.Fields(string(out)), " "))
		}
	}
	// containerd must stop cleanly so its database is consistent on disk.
	_, _, _ = runDocker(ctx, nil, "exec", container, "pkill", "-TERM", "-x", "containerd")
	for i := 0; i < 50; i++ {
		if _, _, err := runDocker(ctx, nil, "exec", container, "pgrep", "-x", "containerd"); err != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	step.Update("committing " + ref)
	_, _, err = runDocker(ctx, nil, "commit",
		"--change", "ENTRYPOINT "+entrypoint,
		"--change", "CMD []",
		// No STOPSIGNAL: Docker 20.10 (Debian's) takes it neither in
		// import nor in commit. kind removes nodes with `docker rm -f`;
		// only a `docker stop` waits its 10 s for systemd.
		container, ref)
	return err
}
