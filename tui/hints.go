package tui

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/intercept"
)

// errText is err as a screen shows it. The domain packages say what
// failed in their own words and mark the cause; what to do about it here
// is a key to press, not the command a terminal user types (an intercept
// field keeps the package's words, as the form's own checks use). It is
// the screen's counterpart of the tether command's hints.
func (c *common) errText(err error) string {
	if err == nil {
		return ""
	}
	text := err.Error()
	up := c.keys.WorkbenchUp.Help().Key
	down := c.keys.WorkbenchDown.Help().Key
	var (
		noClusters *cluster.NoClustersError
		damaged    *fleet.DamagedError
		incomplete *fleet.IncompleteError
		conflict   *intercept.ConflictError
		repair     *cluster.RepairError
		stateErr   *cluster.StateError
	)
	switch {
	case errors.As(err, &incomplete) && incomplete.Up:
		return text + fmt.Sprintf("; press %s to bring the GitOps system back", up)
	case errors.As(err, &damaged), errors.As(err, &stateErr), errors.As(err, &repair) && repair.Down:
		return text + fmt.Sprintf(": press %s twice to take the workbench down, then %s", down, up)
	case errors.Is(err, fleet.ErrNotUp), errors.Is(err, fleet.ErrNoHub), errors.Is(err, cluster.ErrNoCA),
		errors.Is(err, intercept.ErrNoAgentImage), errors.As(err, &noClusters), errors.As(err, &repair):
		return text + fmt.Sprintf(": press %s to bring the workbench up", up)
	case errors.As(err, &conflict):
		return text + fmt.Sprintf(" (stop %s first with %s on this screen)", strings.Join(conflict.Names, ", "), c.keys.StopIntercept.Help().Key)
	}
	return text
}
