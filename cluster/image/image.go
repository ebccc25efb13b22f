package image

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Paths and identity inside the image. The layout follows ko's, so anyone who
// has debugged a ko-built image finds the binary where they expect it.
const (
	// AppDir holds the binary.
	AppDir = "/ko-app"
	// BinaryPath is the image's entrypoint.
	BinaryPath = AppDir + "/tether"
	// User is distroless' "nonroot" user: the components need no privileges,
	// and a numeric UID lets runAsNonRoot be verified without an /etc/passwd.
	User = "65532:65532"
	// DefaultRepository names tether's image in the nodes' image stores. The
	// ".local" domain cannot be resolved, so a node that somehow lacks the
	// image fails to pull it instead of fetching a stranger's image.
	DefaultRepository = "tether.local/tether"
	// DefaultCACertFile is where the image carries the CA bundle (and
	// where Debian and Ubuntu keep theirs): the first place Go's
	// crypto/x509 looks on Linux, so the components find it without
	// configuration.
	DefaultCACertFile = "/etc/ssl/certs/ca-certificates.crt"
	// DefaultPackage is tether's main package, relative to the module root.
	DefaultPackage = "./cmd/tether"
)

// Options describe the image around the binary.
type Options struct {
	// Arch is the GOARCH the binary was built for. Empty means: read it from
	// the binary's ELF header. A mismatch is refused, since it would only
	// surface as "exec format error" in a crash-looping pod.
	Arch string
	// Created stamps the config, the history and every file in the layer.
	// Zero means the Unix epoch; like SOURCE_DATE_EPOCH, set it to the
	// commit time to carry meaning without losing reproducibility.
	Created time.Time
	// Source, Revision and Version fill the matching
	// org.opencontainers.image.* labels when set.
	Source, Revision, Version string
	// CACertFile is copied to DefaultCACertFile in the image so the
	// components can reach TLS endpoints outside the workbench (a Git
	// forge, say). Empty means: the build machine's bundle, found as
	// CACertBundle says. A missing file is skipped and the image gets no
	// bundle, which is harmless for in-workbench traffic: that uses the
	// workbench CA, mounted from the components' TLS Secrets.
	CACertFile string
	// Logger hears, at Debug, which CA bundle went into the image or why
	// none did. Nil discards.
	Logger *slog.Logger
}

// CACertFiles lists where crypto/x509 reads the system roots from a file on
// goos, in its order: Linux's list, or the BSDs'. Elsewhere (macOS, Windows)
// the roots live in the keychain or the certificate store, not in a file,
// and the list is empty.
func CACertFiles(goos string) []string {
	switch goos {
	case "linux":
		return []string{
			"/etc/ssl/certs/ca-certificates.crt",                // Debian/Ubuntu/Gentoo etc.
			"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora/RHEL 6
			"/etc/ssl/ca-bundle.pem",                            // OpenSUSE
			"/etc/pki/tls/cacert.pem",                           // OpenELEC
			"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS/RHEL 7
			"/etc/ssl/cert.pem",                                 // Alpine Linux
		}
	case "freebsd", "openbsd", "netbsd", "dragonfly":
		return []string{
			"/usr/local/etc/ssl/cert.pem",            // FreeBSD
			"/etc/ssl/cert.pem",                      // OpenBSD
			"/usr/local/share/certs/ca-root-nss.crt", // DragonFly
			"/etc/openssl/certs/ca-certificates.crt", // NetBSD
		}
	}
	return nil
}

// CACertBundle finds the build machine's CA bundle as crypto/x509 would on
// goos: $SSL_CERT_FILE when set, then CACertFiles(goos); the first
// non-empty readable file wins. It returns the bundle and its path, or nil
// and "" when there is none (always so on macOS and Windows, where the
// roots are not in a file), saying why on logger at Debug.
func CACertBundle(goos string, getenv func(string) string, readFile func(string) ([]byte, error), logger *slog.Logger) ([]byte, string) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	files := CACertFiles(goos)
	if len(files) == 0 {
		logger.Debug("no CA bundle for tether's image: on this OS the system roots are not in a file; the image gets none (in-workbench TLS uses the workbench CA)", "goos", goos)
		return nil, ""
	}
	if f := getenv("SSL_CERT_FILE"); f != "" {
		files = append([]string{f}, files...)
	}
	for _, f := range files {
		data, err := readFile(f)
		switch {
		case err == nil && len(bytes.TrimSpace(data)) > 0:
			logger.Debug("CA bundle for tether's image", "file", f)
			return data, f
		case err == nil:
			logger.Debug("CA bundle candidate is empty", "file", f)
		case !errors.Is(err, fs.ErrNotExist):
			logger.Debug("CA bundle candidate unreadable", "file", f, "err", err)
		}
	}
	logger.Debug("no CA bundle found for tether's image; the image gets none (in-workbench TLS uses the workbench CA)", "looked", files)
	return nil, ""
}

// BuildBinary compiles the main package pkg (DefaultPackage when empty) of the
// module at moduleRoot into outPath for goos/goarch (linux and the build
// machine's architecture when empty). cgo is off so the binary is static: the
// image has no libc for it to link against.
func BuildBinary(ctx context.Context, moduleRoot, pkg, outPath, goos, goarch string) error {
	if pkg == "" {
		pkg = DefaultPackage
	}
	if goos == "" {
		goos = "linux"
	}
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	// The command runs in moduleRoot, so a relative outPath would land there.
	out, err := filepath.Abs(outPath)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s", "-o", out, pkg)
	cmd.Dir = moduleRoot
	// Later entries win, so these override whatever the caller's environment
	// says (a CGO_ENABLED=1 there would produce a binary the image cannot run).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if output, err := cmd.CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(output))
		if ctx.Err() != nil {
			return fmt.Errorf("go build %s: %w", pkg, ctx.Err())
		}
		return fmt.Errorf("go build %s for %s/%s: %w\n%s", pkg, goos, goarch, err, msg)
	}
	return nil
}

// Build wraps the static Linux binary at binaryPath into an image: one layer
// on top of nothing, with the binary as the entrypoint.
func Build(binaryPath string, opts Options) (v1.Image, error) {
	arch, err := checkBinary(binaryPath, opts.Arch)
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(binaryPath)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var ca []byte
	if opts.CACertFile == "" {
		ca, _ = CACertBundle(runtime.GOOS, os.Getenv, os.ReadFile, logger)
	} else {
		ca, err = os.ReadFile(opts.CACertFile)
		if errors.Is(err, fs.ErrNotExist) {
			logger.Debug("CA bundle missing; the image gets none", "file", opts.CACertFile)
			ca = nil
		} else if err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
	}

	created := opts.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	// Whole seconds in UTC keep the tar headers in plain ustar form: a
	// fractional or zoned time would add PAX records for no benefit.
	created = created.UTC().Truncate(time.Second)

	layerTar, err := layerTar(bin, ca, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressedCaching) // the digest and the archive writer both read the compressed bytes
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}

	base, err := empty.Image.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg := base.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = arch
	cfg.Config.Entrypoint = []string{BinaryPath}
	cfg.Config.User = User
	cfg.Config.WorkingDir = "/"
	cfg.Config.Env = []string{
		"PATH=" + AppDir + ":/usr/local/bin:/usr/bin:/bin",
		// The user has no home directory; /tmp is the one writable place.
		"HOME=/tmp",
	}
	if ca != nil {
		cfg.Config.Env = append(cfg.Config.Env, "SSL_CERT_FILE="+DefaultCACertFile)
	}
	cfg.Config.Labels = labels(opts)

	// The config must be set before the layer is appended: Append extends
	// the base's config with the layer's diff ID and history.
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "tether image build", Comment: BinaryPath},
	})
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: created})
}

func labels(opts Options) map[string]string {
	l := map[string]string{"org.opencontainers.image.title": "tether"}
	for k, v := range map[string]string{
		"org.opencontainers.image.source":   opts.Source,
		"org.opencontainers.image.revision": opts.Revision,
		"org.opencontainers.image.version":  opts.Version,
	} {
		if v != "" {
			l[k] = v
		}
	}
	return l
}

// layerTar lays out the image's only filesystem. Entries are written in a
// fixed order with fixed owners and times, so equal inputs give equal bytes.
func layerTar(bin, ca []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: mtime})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{}
	if ca != nil {
		steps = append(steps,
			func() error { return dir("etc/", 0o755) },
			func() error { return dir("etc/ssl/", 0o755) },
			func() error { return dir("etc/ssl/certs/", 0o755) },
			func() error { return file(strings.TrimPrefix(DefaultCACertFile, "/"), 0o644, ca) },
		)
	}
	steps = append(steps,
		func() error { return dir(strings.TrimPrefix(AppDir, "/")+"/", 0o755) },
		// Root-owned and not writable by the runtime user: a compromised
		// component cannot replace its own binary.
		func() error { return file(strings.TrimPrefix(BinaryPath, "/"), 0o755, bin) },
		// World-writable with the sticky bit, as on any Linux system: HOME
		// points here and the non-root user must be able to write.
		func() error { return dir("tmp/", 0o1777) },
	)
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// goarchOf names the GOARCH of an ELF machine for the architectures kind
// runs on and a few more; "" means unknown.
func goarchOf(f *elf.File) string {
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64"
	case elf.EM_AARCH64:
		return "arm64"
	case elf.EM_ARM:
		return "arm"
	case elf.EM_386:
		return "386"
	case elf.EM_PPC64:
		if f.ByteOrder == binary.LittleEndian {
			return "ppc64le"
		}
		return "ppc64"
	case elf.EM_S390:
		return "s390x"
	case elf.EM_RISCV:
		return "riscv64"
	}
	return ""
}

// Platform is an OS/architecture pair, spelled as Docker and Go spell them
// ("linux/arm64").
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// ParsePlatform reads "os/arch" (a variant such as "arm/v7" is refused: no
// kind node image needs one).
func ParsePlatform(s string) (Platform, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" || strings.ContainsAny(s, " \t<>") {
		return Platform{}, fmt.Errorf("platform %q is not os/arch", s)
	}
	return Platform{OS: parts[0], Arch: parts[1]}, nil
}

// Runnable returns nil when the file at path can be the entrypoint of an
// image for p as it is: a statically linked Linux ELF binary (no PT_INTERP,
// since the image has no loader or libc) for p.Arch. Otherwise the error
// says what is wrong, for example that a binary built with cgo is
// dynamically linked.
func Runnable(path string, p Platform) error {
	if p.OS != "linux" {
		return fmt.Errorf("images for %s cannot be built: tether's image is a Linux image", p)
	}
	_, err := checkBinary(path, p.Arch)
	return err
}

// checkBinary refuses what could not run in an empty Linux image (anything
// but a Linux ELF, or a dynamically linked binary, which would need a loader
// and a libc the image does not have) and returns the binary's GOARCH.
// Catching this here beats a pod that fails with "no such file or
// directory" for a file that is plainly there.
func checkBinary(path, arch string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s is not a Linux (ELF) binary: %w", path, err)
	}
	defer f.Close()
	if other := otherELFOS(f); other != "" {
		return "", fmt.Errorf("%s is an ELF binary for %s, not Linux", path, other)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked (built with cgo); build it with CGO_ENABLED=0 (BuildBinary does) so it runs in an image without libc", path)
		}
	}
	got := goarchOf(f)
	switch {
	case arch == "" && got == "":
		return "", fmt.Errorf("%s: cannot tell the GOARCH of ELF machine %s; set Options.Arch", path, f.Machine)
	case arch == "":
		return got, nil
	case got != "" && got != arch:
		return "", fmt.Errorf("%s is built for %s, not %s", path, got, arch)
	}
	return arch, nil
}

// otherELFOS names the OS of an ELF binary that is not for Linux, or "".
// Go marks FreeBSD binaries in the ELF header and NetBSD and OpenBSD ones
// with a note section; Linux binaries carry neither.
func otherELFOS(f *elf.File) string {
	switch f.OSABI {
	case elf.ELFOSABI_NONE, elf.ELFOSABI_LINUX:
	default:
		return strings.TrimPrefix(strings.ToLower(f.OSABI.String()), "elfosabi_")
	}
	for _, s := range []struct{ section, os string }{{".note.netbsd.ident", "netbsd"}, {".note.openbsd.ident", "openbsd"}} {
		if f.Section(s.section) != nil {
			return s.os
		}
	}
	return ""
}

// Digest is the image's manifest digest ("sha256:…"), the identity that
// stays the same across rebuilds of the same binary.
func Digest(img v1.Image) (string, error) {
	h, err := img.Digest()
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// Ref names img in DefaultRepository with a tag taken from its digest, so a
// changed binary changes the reference (and rolls the Deployments using it)
// while an unchanged one does not. Kubernetes image references cannot use a
// digest here: a digest reference must match a registry manifest, and an
// image imported from an archive has none the kubelet could check.
func Ref(img v1.Image) (string, error) {
	h, err := img.Digest()
	if err != nil {
		return "", err
	}
	return DefaultRepository + ":" + h.Hex[:12], nil
}

// WriteArchive writes img as a docker-archive tarball (docker save's format,
// which `ctr images import` and so kind's nodeutils.LoadImageArchive accept)
// tagged ref; an empty ref means Ref(img). The archive is written next to
// path and renamed into place, so a reader never loads half an image.
func WriteArchive(img v1.Image, ref, path string) error {
	if ref == "" {
		var err error
		if ref, err = Ref(img); err != nil {
			return err
		}
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	_ = tmp.Close()
	defer os.Remove(tmpName) // a no-op after the rename
	if err := tarball.WriteToFile(tmpName, tag, img); err != nil {
		return fmt.Errorf("write image archive: %w", err)
	}
	return os.Rename(tmpName, path)
}
