package sample

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Paths of the files scenarios refer to.
const (
	// PlainDir holds the raw manifests.
	PlainDir = "plain"
	// PlainDeployment is the single-document file with the Deployment.
	PlainDeployment = "plain/deployment.yaml"
	// PlainConfigAndService is the multi-document file with the ConfigMap
	// and the Service.
	PlainConfigAndService = "plain/config-and-service.yaml"
	// KustomizeBase is the Kustomize base directory.
	KustomizeBase = "kustomize/base"
	// KustomizeDir holds the base and the overlays.
	KustomizeDir = "kustomize"
)

// Names and values of the objects the sample creates, for assertions.
const (
	AppName         = "web"
	ConfigMapName   = "web-config"
	ContainerName   = "web"
	Replicas        = 2
	OverlayReplicas = 1
	SpokeLabel      = "tether.dev/spoke"
	// ServicePort is the Service's port; it maps to the container's port
	// named "http", whatever its number.
	ServicePort = 80
	// ClusterEnv is the ConfigMap key, and so the environment variable,
	// that tells the server which cluster it runs in: each spoke's overlay
	// sets it to the spoke's name.
	ClusterEnv = "TETHER_CLUSTER"
)

// Workload is what the sample's Deployment runs.
type Workload struct {
	// Image is the container image.
	Image string
	// Args replace the image's command arguments; nil keeps them.
	Args []string
	// Port is the container port named "http", the Service's target.
	Port int32
	// ReadyPath is the path of the HTTP readiness probe on Port; empty
	// means no probe.
	ReadyPath string
}

// DefaultImage is the image name the embedded provider gives tether's
// components. Its pods run nothing (kwok plays the kubelet), so the name
// only has to be a valid reference; no registry serves it.
const DefaultImage = "tether.local/tether:workbench"

// ServerPort is where `tether sample serve` listens in the sample's pods.
const ServerPort = 8080

// TetherWorkload runs the sample server of tether's own image (`tether
// sample serve`): on kind that image is loaded into every node, so the
// sample needs no registry, and its pods are Ready only once the server
// answers /healthz. An empty image means DefaultImage.
func TetherWorkload(image string) Workload {
	if image == "" {
		image = DefaultImage
	}
	return Workload{
		Image:     image,
		Args:      []string{"sample", "serve", "--listen", ":" + strconv.Itoa(ServerPort)},
		Port:      ServerPort,
		ReadyPath: "/healthz",
	}
}

// NginxWorkload is a public image for clusters whose nodes cannot have
// tether's image (the existing provider: tether has no image store there,
// and nothing publishes its image), as long as they can pull from Docker Hub.
var NginxWorkload = Workload{Image: "nginx:1.27", Port: 80, ReadyPath: "/"}

func (w Workload) withDefaults() (Workload, error) {
	if w.Image == "" && w.Args == nil && w.Port == 0 && w.ReadyPath == "" {
		return TetherWorkload(""), nil
	}
	if strings.TrimSpace(w.Image) == "" || strings.ContainsAny(w.Image, " \t\n\"'") {
		return w, fmt.Errorf("sample: image %q is not an image reference", w.Image)
	}
	if w.Port < 1 || w.Port > 65535 {
		return w, fmt.Errorf("sample: container port %d is out of range", w.Port)
	}
	if w.ReadyPath != "" && !strings.HasPrefix(w.ReadyPath, "/") {
		return w, fmt.Errorf("sample: readiness path %q does not start with /", w.ReadyPath)
	}
	return w, nil
}

// OverlayDir returns the overlay directory of spoke, the path an Application
// for that spoke points at.
func OverlayDir(spoke string) string { return "kustomize/overlays/" + spoke }

// validSpoke accepts DNS-1123 labels: overlays become directories and the
// name becomes a label value, so both constraints apply.
func validSpoke(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// Files returns the sample repository's content, path to bytes, for the
// given spokes, running w (TetherWorkload("") when zero). The result depends
// only on the set of spoke names and w, so seeding twice produces identical
// trees.
func Files(spokes []string, w Workload) (map[string][]byte, error) {
	names, err := normalise(spokes)
	if err != nil {
		return nil, err
	}
	w, err = w.withDefaults()
	if err != nil {
		return nil, err
	}
	dep := deployment(w)
	files := map[string][]byte{
		"README.md":                           []byte(readme),
		PlainDeployment:                       []byte(dep),
		PlainConfigAndService:                 []byte(configMap("plain") + "---\n" + service),
		KustomizeBase + "/kustomization.yaml": []byte(baseKustomization),
		KustomizeBase + "/deployment.yaml":    []byte(dep),
		KustomizeBase + "/service.yaml":       []byte(service),
		KustomizeBase + "/configmap.yaml":     []byte(configMap("base")),
	}
	for _, s := range names {
		files[OverlayDir(s)+"/kustomization.yaml"] = []byte(overlay(s))
	}
	return files, nil
}

func normalise(spokes []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, s := range spokes {
		if !validSpoke(s) {
			return nil, fmt.Errorf("sample: spoke name %q is not a DNS-1123 label", s)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ownedPath reports whether path belongs to the sample, so Seed may delete
// it when it is not in Files any more (an overlay of a removed spoke) without
// touching anything else a scenario committed.
func ownedPath(path string) bool {
	return path == "README.md" || strings.HasPrefix(path, PlainDir+"/") || strings.HasPrefix(path, KustomizeDir+"/")
}

const readme = `# tether sample application

Seeded by the tether workbench when this repository is created. Later runs of
` + "`tether up`" + ` keep your commits: they only add the overlay of a spoke that
has none, remove the overlays of spokes that are gone, and (on kind) point
the Deployment at the tether image the nodes were given.

- plain/: raw manifests (Deployment web, Service web, ConfigMap web-config).
- kustomize/base: the same application as a Kustomize base.
- kustomize/overlays/<spoke>: one variant per spoke (label tether.dev/spoke,
  one replica, the spoke's name in web-config as TETHER_CLUSTER).

The Deployment runs ` + "`tether sample serve`" + ` from tether's own image: GET /
answers with the cluster, pod and node that served it, /healthz with "ok".
Service web's port 80 maps to the container port named http.
`

// scalar writes s as a YAML scalar: plain when that cannot be misread
// (a word, or a path), double-quoted otherwise (":8080", "true", "a b").
func scalar(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '/' || i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_')) {
			plain = false
		}
	}
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null":
		plain = false
	}
	if plain {
		return s
	}
	return strconv.Quote(s)
}

// deployment is the sample's Deployment for w. The pod learns its own name
// and node from the downward API and its cluster from web-config, so the
// server can say who answered.
func deployment(w Workload) string {
	var b strings.Builder
	b.WriteString(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: web
  template:
    metadata:
      labels:
        app.kubernetes.io/name: web
    spec:
      containers:
      - name: ` + ContainerName + `
        image: ` + w.Image + `
`)
	if w.Args != nil {
		b.WriteString("        args:\n")
		for _, a := range w.Args {
			b.WriteString("        - " + scalar(a) + "\n")
		}
	}
	b.WriteString(`        ports:
        - name: http
          containerPort: ` + strconv.Itoa(int(w.Port)) + `
        env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        envFrom:
        - configMapRef:
            name: web-config
`)
	if w.ReadyPath != "" {
		b.WriteString(`        readinessProbe:
          httpGet:
            path: ` + scalar(w.ReadyPath) + `
            port: http
          periodSeconds: 5
`)
	}
	return b.String()
}

const service = `apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    app.kubernetes.io/name: web
spec:
  selector:
    app.kubernetes.io/name: web
  ports:
  - name: http
    port: 80
    targetPort: http
`

func configMap(variant string) string {
	return `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  labels:
    app.kubernetes.io/name: web
data:
  GREETING: hello from tether
  VARIANT: ` + variant + `
`
}

const baseKustomization = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- deployment.yaml
- service.yaml
- configmap.yaml
`

// overlay keeps selectors out of the spoke label (includeSelectors: false)
// because a Deployment's selector is immutable: relabelling would otherwise
// force a delete and re-create when an Application moves between variants.
func overlay(spoke string) string { return overlayWithReplicas(spoke, OverlayReplicas) }

func overlayWithReplicas(spoke string, replicas int) string {
	return `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../base
labels:
- pairs:
    ` + SpokeLabel + `: ` + spoke + `
  includeSelectors: false
replicas:
- name: web
  count: ` + strconv.Itoa(replicas) + `
patches:
- target:
    kind: ConfigMap
    name: web-config
  patch: |-
    - op: replace
      path: /data/VARIANT
      value: ` + spoke + `
    - op: add
      path: /data/` + ClusterEnv + `
      value: ` + spoke + `
`
}
