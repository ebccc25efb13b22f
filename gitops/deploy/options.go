package deploy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Names, ports and paths the components share with their command lines and
// with whoever connects to them.
const (
	// DefaultNamespace holds tether's components in every cluster; `tether
	// up` creates it.
	DefaultNamespace = "tether-system"

	PrincipalName = "tether-principal"
	// PrincipalMaxStreamAge bounds an agent connection's life when the
	// principal runs as a pod (principal.Options.MaxStreamAge).
	PrincipalMaxStreamAge = time.Minute
	AgentName             = "tether-agent"
	GitName               = "tether-git"

	// PrincipalPort is where agents connect (gRPC over mTLS).
	PrincipalPort int32 = 8443
	// GitPort serves Git's smart HTTP protocol.
	GitPort int32 = 3000
	// DefaultHealthPort serves /healthz for the readiness probes. It is
	// apart from the service ports so a probe needs no client certificate.
	DefaultHealthPort int32 = 8080

	// CACertKey holds the workbench CA in the TLS Secrets, next to
	// kubernetes.io/tls's tls.crt and tls.key: both ends verify the other
	// against it.
	CACertKey = "ca.crt"

	// TLSMountPath holds the component's tls.crt, tls.key and ca.crt.
	TLSMountPath = "/etc/tether/tls"
	// GitDataPath holds the Git server's bare repositories.
	GitDataPath = "/var/lib/tether/git"
	// GitHostPath is the folder on the hub's node mounted at GitDataPath,
	// so the repositories outlive the Git server's pod.
	GitHostPath = "/var/lib/tether/git"

	// FieldManager owns the fields Apply sets.
	FieldManager = "tether"

	// Label keys, from Kubernetes' recommended set.
	LabelName      = "app.kubernetes.io/name"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelComponent = "app.kubernetes.io/component"

	// TLSChecksumAnnotation on the pod template carries a hash of the TLS
	// Secret, so new certificates roll the pods instead of waiting for a
	// process that read its certificates at start to be restarted.
	TLSChecksumAnnotation = "gitops.tether.dev/tls-checksum"
)

// Options describe one component's installation. Each of Principal, Agent and
// GitServer reads the fields it needs and ignores the rest, so a caller fills
// one Options per component.
type Options struct {
	// Image is tether's image reference (cluster/image.Ref), required.
	Image string
	// PullPolicy defaults to IfNotPresent: images are loaded into the nodes
	// and never pulled, and Always would fail on a reference no registry
	// serves.
	PullPolicy corev1.PullPolicy
	// Namespace defaults to DefaultNamespace.
	Namespace string

	// Spoke names the agent's cluster (Agent only). The principal knows an
	// agent by its client certificate's common name, so TLS must carry a
	// certificate for exactly this name.
	Spoke string
	// PrincipalAddress is the host:port where the agent reaches the
	// principal (Agent only, required).
	PrincipalAddress string
	// GitURL is the Git server's base URL as the component sees it, passed
	// on as TETHER_GIT_URL when set.
	GitURL string

	// TLS is the component's Secret data: tls.crt, tls.key and ca.crt, PEM.
	// Nil leaves the Secret out, for callers who manage it themselves (the
	// Deployment still mounts it by name).
	TLS map[string][]byte

	// Args replace the component's default arguments (DefaultArgs).
	Args []string
	// HealthPort serves /healthz; DefaultHealthPort when zero.
	HealthPort int32
	// NodePort, when set, makes the component's Service a NodePort on this
	// port. On kind the spokes are other clusters: they reach the hub
	// through its node's IP on the kind network, never through a ClusterIP.
	NodePort int32
	// Resources replace the component's default requests.
	Resources *corev1.ResourceRequirements
	// PodAnnotations are added to the pod template. The embedded provider
	// puts the loopback address of the process standing in for the pod
	// here (svcproxy's tether.dev/local-address), so its Service routes to
	// that process; on kind the pods are real and this stays empty.
	PodAnnotations map[string]string
}

// withDefaults fills the zero fields and checks what cannot be defaulted.
func (o Options) withDefaults() (Options, error) {
	if o.Image == "" {
		return o, errors.New("deploy: Options.Image is empty")
	}
	if o.PullPolicy == "" {
		o.PullPolicy = corev1.PullIfNotPresent
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.HealthPort == 0 {
		o.HealthPort = DefaultHealthPort
	}
	if o.NodePort < 0 || o.NodePort > 65535 {
		return o, fmt.Errorf("deploy: NodePort %d is out of range", o.NodePort)
	}
	return o, nil
}

// checkTLS refuses Secret data the component could not start with, naming
// the problem now rather than in a crash-looping pod's log. For an agent,
// wantCN is the spoke name its certificate must carry.
func checkTLS(data map[string][]byte, wantCN string) error {
	if data == nil {
		return nil
	}
	for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey, CACertKey} {
		if len(data[k]) == 0 {
			return fmt.Errorf("deploy: TLS data lacks %s", k)
		}
	}
	pair, err := tls.X509KeyPair(data[corev1.TLSCertKey], data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return fmt.Errorf("deploy: TLS certificate and key: %w", err)
	}
	if block, _ := pem.Decode(data[CACertKey]); block == nil || block.Type != "CERTIFICATE" {
		return fmt.Errorf("deploy: %s is not a PEM certificate", CACertKey)
	}
	if wantCN == "" {
		return nil
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("deploy: TLS certificate: %w", err)
	}
	if leaf.Subject.CommonName != wantCN {
		return fmt.Errorf("deploy: agent certificate is for %q, not spoke %q: the principal would take it for another spoke", leaf.Subject.CommonName, wantCN)
	}
	return nil
}

// requests builds default resource requests. There are no limits: on a
// workbench the nodes share one machine, and a memory limit nobody tuned
// would OOM-kill an agent in the middle of a large sync.
func requests(cpu, memory string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse(memory),
	}}
}
