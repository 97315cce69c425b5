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
			st, statErr := os.Stat(args[0])
			if statErr == nil && st.IsDir() { // a link to a folder too
				return usageError{fmt.Errorf("%s is a folder: give the file to write, e.g. %s", args[0], shell.Command(shell.Program(), "init", filepath.Join(args[0], "run.yaml")))}
			}
			if err := refuseLink(args[0], force); err != nil {
				return err
			}
			if statErr == nil {
				switch {
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
	cmd.Flags().BoolVar(&force, "force", false, "overwrite FILE (a regular file: not a folder nor a symbolic link)")
	return cmd
}

// refuseLink refuses a FILE that is a symbolic link, with or without
// --force, dangling or not. The rename that writes FILE atomically would
// replace the link itself (the user's link gone, the file it names left
// as it was: a dangling link was even replaced without --force), and
// writing through it would replace a file elsewhere, perhaps outside the
// folder named, that the user did not name. The message says where the
// link points and the command that writes that file.
func refuseLink(path string, force bool) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		return nil
	}
	to, err := os.Readlink(path)
	if err != nil {
		return fmt.Errorf("%s is a symbolic link: %w", path, err)
	}
	target := to
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(path), target)
	}
	args, missing := []string{"init"}, ""
	if _, err := os.Stat(path); err != nil {
		missing = ", which does not exist"
	} else if force {
		args = append(args, "--force")
	}
	return usageError{fmt.Errorf("%s is a symbolic link to %s%s: init neither writes through a link nor replaces one; name the file itself (%s), or remove the link",
		path, to, missing, shell.Command(shell.Program(), append(args, target)...))}
}
