package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newDoctor(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Say which cluster providers can run here, and what to install for the others",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			wb, err := g.workbench()
			if err != nil {
				return err
			}
			usable := 0
			for _, c := range wb.Doctor(cmd.Context()) {
				mark := "✗"
				if c.OK {
					mark = "✓"
					usable++
				}
				def := ""
				if c.Default {
					def = " (default)"
				}
				fmt.Fprintf(g.out, "%s %-9s%s %s\n", mark, c.Provider, def, c.Detail)
			}
			if usable == 0 {
				return fmt.Errorf("no cluster provider can run here: fix one of the above")
			}
			return nil
		},
	}
}
