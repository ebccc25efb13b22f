package tui

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/intercept"
	"github.com/tether-dev/tether/tui/keys"
)

// TestErrText: where the tether command says what to type, a screen says
// what to press.
func TestErrText(t *testing.T) {
	c := &common{keys: keys.New()}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("boom"), "boom"},
		{fmt.Errorf("commit: %w", fleet.ErrNotUp), "commit: the GitOps system is not up: press u to bring the workbench up"},
		{fmt.Errorf("no cluster %q: %w", "x", &cluster.NoClustersError{}), `no cluster "x": the workbench has no clusters: press u to bring the workbench up`},
		{&fleet.IncompleteError{Err: errors.New("spoke s is removed, but the GitOps system did not come back up"), Up: true},
			"spoke s is removed, but the GitOps system did not come back up; press u to bring the GitOps system back"},
		{&intercept.ConflictError{Names: []string{"web-80"}, Err: errors.New(`port 80 is intercepted globally by "web-80"`)},
			`port 80 is intercepted globally by "web-80" (stop web-80 first with x on this screen)`},
	} {
		if got := c.errText(tc.err); got != tc.want {
			t.Errorf("errText(%v)\n got %q\nwant %q", tc.err, got, tc.want)
		}
	}
}
