package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/internal/shell"
)

func newInitCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init [FILE]",
		Short: "Write a commented run configuration with every default (stdout, or FILE)",
		Example: `  ftune init run.yaml
  ftune init > run.yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return config.WriteInit(cmd.OutOrStdout())
			}
			// --force replaces a file; a folder (or a device, a pipe) is
			// no run file, and a rename cannot replace it anyway.
			if st, err := os.Stat(args[0]); err == nil {
				switch {
				case st.IsDir():
					return usageError{fmt.Errorf("%s is a folder: give the file to write, e.g. %s", args[0], shell.Command(shell.Program(), "init", filepath.Join(args[0], "run.yaml")))}
				case !st.Mode().IsRegular():
					return usageError{fmt.Errorf("%s is not a regular file: give the file to write", args[0])}
				case !force:
					return fmt.Errorf("%s exists (use --force to overwrite)", args[0])
				}
			}
			if err := fsutil.WriteAtomic(args[0], 0o644, config.WriteInit); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s; run it with: ftune train -c %s\n", args[0], args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite FILE (a file, not a folder)")
	return cmd
}
