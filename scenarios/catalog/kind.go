package catalog

import (
	"strings"

	"github.com/tether-dev/tether/gitops/deploy"
)

// On kind the GitOps components are Deployments (gitops/deploy): the
// principal and the Git server on the hub, an agent on every spoke. What
// the embedded scenarios do to processes, the kind ones do to pods.

// kindComponent maps a component's embedded name (git, principal,
// agent-<spoke>) to the cluster and Deployment that run it on kind.
func kindComponent(name string) (clusterName, deployment string) {
	switch {
	case name == "principal":
		return Hub, deploy.PrincipalName
	case name == "git":
		return Hub, deploy.GitName
	case strings.HasPrefix(name, "agent-"):
		return strings.TrimPrefix(name, "agent-"), deploy.AgentName
	}
	return Hub, name
}

// kindLogCommand is how a user reads a component's log on kind.
func kindLogCommand(name string) string {
	c, d := kindComponent(name)
	return "`kubectl --context tether-" + c + " -n " + deploy.DefaultNamespace + " logs deploy/" + d + "`"
}
