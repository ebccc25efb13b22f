package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tether-dev/tether/gitops/gitserver"
)

func newGit(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "git",
		Short: "The embedded Git server",
	}
	var root, addr, health string
	var webhooks, repos []string
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve bare repositories over smart HTTP (clone, fetch and push with any Git client)",
		Example: `  tether git serve --root ./repos --addr 127.0.0.1:3000 --repo demo
  git clone http://127.0.0.1:3000/demo.git`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := gitserver.New(root, gitserver.Options{Logger: g.logger(), Webhooks: webhooks, AutoCreate: true})
			if err != nil {
				return err
			}
			for _, r := range repos {
				if err := s.CreateRepo(r); err != nil {
					return fmt.Errorf("create repository %q: %w", r, err)
				}
			}
			if err := serveHealth(cmd.Context(), health, nil); err != nil {
				return err
			}
			bound, err := s.ListenAndServe(cmd.Context(), addr)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Serving %s at http://%s/<repo>.git (Ctrl-C stops)\n", s.Root(), bound)
			<-cmd.Context().Done()
			return s.Close()
		},
	}
	serve.Flags().StringVar(&root, "root", "repos", "folder holding the bare repositories")
	serve.Flags().StringVar(&addr, "addr", "127.0.0.1:3000", "address to listen on")
	serve.Flags().StringVar(&health, "health-addr", "", "address for /healthz (empty: none)")
	serve.Flags().StringArrayVar(&webhooks, "webhook", nil, "URL that receives a JSON POST per accepted push (repeatable)")
	serve.Flags().StringArrayVar(&repos, "repo", nil, "create this repository if missing (repeatable; pushes to a missing one create it too)")
	cmd.AddCommand(serve)
	return cmd
}
