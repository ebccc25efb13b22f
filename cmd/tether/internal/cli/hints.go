package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/fleet"
	"github.com/tether-dev/tether/intercept"
	"github.com/tether-dev/tether/intercept/record"
)

// The library packages say what failed and what state is needed in their
// own words, and mark the cause (a sentinel or a typed error); what to
// type about it is the command's to say. hint maps each cause to that.

// hintFor returns the hint for one error of a chain, "" when it has none.
// Each hint starts with the punctuation that joins it to the message.
func hintFor(err error) string {
	var (
		noClusters *cluster.NoClustersError
		unknown    *cluster.UnknownClusterError
		switching  *cluster.ProviderSwitchError
		field      *cluster.FieldError
		engine     *cluster.DockerEngineError
		nodeImage  *cluster.NodeImageError
		repair     *cluster.RepairError
		stateErr   *cluster.StateError
		cannot     *cluster.CannotBuildError
		damaged    *fleet.DamagedError
		incomplete *fleet.IncompleteError
		noProxy    *fleet.NoServiceProxyError
		hubNS      *fleet.HubNamespaceError
		notReady   *fleet.AppNotReadyError
		conflict   *intercept.ConflictError
		leftover   *intercept.LeftoverError
		annotation *record.UnreadableError
	)
	switch {
	case err == cluster.ErrIsHub:
		return "; `tether down` removes the whole workbench"
	case err == cluster.ErrNoCA:
		return ": run `tether up` first"
	case asOnly(err, &noClusters):
		return "; run `tether up` first"
	case asOnly(err, &unknown):
		return ": run `tether up` or `tether status`"
	case asOnly(err, &switching):
		return fmt.Sprintf(": run `tether down` before switching to %s", switching.Requested)
	case asOnly(err, &field):
		switch field.Field {
		case "context":
			return fmt.Sprintf("; pass --context %s=<context>", field.Cluster)
		case "kind.nodeImage":
			if field.Provider != "" {
				return fmt.Sprintf(" (--node-image on the command line; --provider %s chooses it)", field.Provider)
			}
			return " (--node-image on the command line)"
		}
	case asOnly(err, &engine):
		return ", or use --provider embedded"
	case asOnly(err, &nodeImage):
		// What the image could not be built for may be mended once.
		if errors.As(nodeImage, &cannot) && cannot.NeedsRoot {
			return ", or pass --node-image; `sudo tether prepare --provider kind` builds one once (the result is cached)"
		}
		return ", or pass --node-image"
	case asOnly(err, &cannot):
		if cannot.NeedsRoot {
			return ": run `sudo tether prepare --provider kind` once (the result is cached), or give --node-image"
		}
		return ", or give --node-image"
	case asOnly(err, &repair):
		switch {
		case repair.Down && repair.Up:
			return "; `tether down` then `tether up` recreates it"
		case repair.Down:
			return "; run `tether down`"
		case repair.Up:
			return "; run `tether up`"
		}
	case asOnly(err, &stateErr):
		if stateErr.Err != nil {
			return ": run `tether down` to clean up, or remove the file"
		}
		return ": run `tether down` with the tether that made it"
	case err == fleet.ErrNotUp, err == fleet.ErrNoHub:
		return ": run `tether up`"
	case asOnly(err, &damaged):
		return ": run `tether down` and `tether up` again"
	case asOnly(err, &incomplete):
		switch {
		case incomplete.Up && incomplete.RemoveSpoke == "*":
			return "; run `tether up` again, or `tether spoke remove <name>` for each"
		case incomplete.Up && incomplete.RemoveSpoke != "":
			return fmt.Sprintf(": run `tether up`, then `tether spoke remove %s` again", incomplete.RemoveSpoke)
		case incomplete.Up:
			return "; run `tether up` to bring it back"
		case incomplete.RemoveSpoke != "":
			return fmt.Sprintf("; fix the cause and run `tether spoke remove %s` again", incomplete.RemoveSpoke)
		}
	case asOnly(err, &noProxy):
		return " `tether status` lists them; `tether up` starts the proxies"
	case asOnly(err, &hubNS):
		return fmt.Sprintf(": run `tether intercept service-proxy %s --namespace %s` for it", hubNS.Hub, hubNS.Namespace)
	case asOnly(err, &notReady):
		return fmt.Sprintf(" and `tether app get %s -n %s --context %s`", notReady.App, notReady.Namespace, notReady.Context)
	case err == intercept.ErrNoAgentImage:
		return ": run `tether up` first, or pass --agent-image with a tether image its nodes can pull"
	case asOnly(err, &conflict):
		if len(conflict.Names) == 1 {
			return " (stop it first: tether intercept stop " + conflict.Names[0] + ")"
		}
		return " (stop them first: tether intercept stop " + strings.Join(conflict.Names, "; tether intercept stop ") + ")"
	case asOnly(err, &leftover):
		return "; run `tether intercept uninstall` and try again"
	case asOnly(err, &annotation):
		return "; remove it by hand or run `tether intercept uninstall`"
	}
	return ""
}

// flagOf is the flag that gives a field of an intercept Request.
func flagOf(field string) string {
	switch field {
	case "To":
		return "--to"
	case "Port":
		return "--port"
	case "Headers":
		return "--header"
	case "Name":
		return "--name"
	case "AgentImage":
		return "--agent-image"
	}
	return intercept.FieldNoun(field)
}

// asOnly is errors.As for err itself, not what it wraps: hint walks the
// chain and asks about each error once.
func asOnly[T error](err error, target *T) bool {
	t, ok := err.(T)
	if ok {
		*target = t
	}
	return ok
}

// hint returns err with the hint of its outermost marked cause appended
// (of each, for joined errors), or err itself when none has one. errors.Is and errors.As still see
// through it.
func hint(err error) error {
	if err == nil {
		return nil
	}
	var hints []string
	seen := map[string]bool{}
	text := err.Error()
	var walk func(e error, hinted bool)
	walk = func(e error, hinted bool) {
		if e == nil {
			return
		}
		// A field the library names in words is named by its flag, at
		// any depth.
		var field *intercept.FieldError
		if asOnly(e, &field) {
			text = strings.Replace(text, field.Error(), field.Say(flagOf(field.Field)), 1)
		}
		// The outermost cause knows the state the whole chain left:
		// what it wraps needs no hint of its own.
		if h := hintFor(e); h != "" && !hinted {
			if !seen[h] {
				seen[h] = true
				hints = append(hints, h)
			}
			hinted = true
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap(), hinted)
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x, hinted)
			}
		}
	}
	walk(err, false)
	if len(hints) == 0 && text == err.Error() {
		return err
	}
	return &hinted{err: err, text: text + strings.Join(hints, "")}
}

type hinted struct {
	err  error
	text string
}

func (h *hinted) Error() string { return h.text }
func (h *hinted) Unwrap() error { return h.err }

// addHints makes every command of the tree return its error with the
// hints appended, so whoever prints it (main, a test) prints them.
func addHints(c *cobra.Command) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error { return hint(run(cmd, args)) }
	}
	for _, sub := range c.Commands() {
		addHints(sub)
	}
}
