package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print ftune's version, Go version and build commit",
		Example: `  ftune version    # version, Go version, OS/architecture and build commit (for a bug report)`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			commit := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						commit = s.Value
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ftune %s (%s, %s/%s, commit %s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, commit)
			return nil
		},
	}
}
