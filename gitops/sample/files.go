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
	Image           = "nginx:1.27"
	Replicas        = 2
	OverlayReplicas = 1
	SpokeLabel      = "tether.dev/spoke"
)

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
// given spokes. The result depends only on the set of spoke names, so seeding
// twice produces identical trees.
func Files(spokes []string) (map[string][]byte, error) {
	names, err := normalise(spokes)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"README.md":                           []byte(readme),
		PlainDeployment:                       []byte(deployment),
		PlainConfigAndService:                 []byte(configMap("plain") + "---\n" + service),
		KustomizeBase + "/kustomization.yaml": []byte(baseKustomization),
		KustomizeBase + "/deployment.yaml":    []byte(deployment),
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

Seeded by the tether workbench. Edits made here by scenarios are overwritten
the next time the workbench seeds the repository.

- plain/: raw manifests (Deployment web, Service web, ConfigMap web-config).
- kustomize/base: the same application as a Kustomize base.
- kustomize/overlays/<spoke>: one variant per spoke (label tether.dev/spoke,
  one replica, the spoke's name in web-config).
`

const deployment = `apiVersion: apps/v1
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
      - name: nginx
        image: nginx:1.27
        ports:
        - name: http
          containerPort: 80
        envFrom:
        - configMapRef:
            name: web-config
`

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
`
}
