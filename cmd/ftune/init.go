package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/internal/shell"
)

func newInitCmd() *cobra.Command {
	var force bool
	var from string
	cmd := &cobra.Command{
		Use:   "init [FILE]",
		Short: "Write a commented run configuration with every default (stdout, or FILE)",
		Long: `Write a commented run configuration with every default (stdout, or FILE).

--from converts another trainer's config (Axolotl's, LLaMA-Factory's, or
transformers' TrainingArguments as YAML or JSON): each key with an ftune
equivalent is set from its value as that trainer reads it, the line marked
with where it came from. A setting the file leaves out takes that
trainer's default where it is not ftune's (transformers' learning rate
5e-05 on a linear schedule without warmup for 3 epochs, Axolotl's 1 epoch
of unpacked 512-token rows, LLaMA-Factory's LoRA rank 8 ...), the line
marked as that trainer's default; what is not converted, and a default
with no ftune equivalent, is listed, with the reason, at the top of the
file and on stderr. A value that cannot be converted is
an error naming its line. Relative paths (the model, data files) are kept
as written: run ftune from the folder the other trainer ran in.`,
		Example: `  ftune init run.yaml
  ftune init > run.yaml
  ftune init --from axolotl.yaml run.yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				// Said before converting; the write would fail naming
				// the temporary file it could not make beside FILE.
				if err := folderOf(args[0]); err != nil {
					return err
				}
			}
			write := config.WriteInit
			if from != "" {
				conv, err := convertFrom(from, args)
				if err != nil {
					return err
				}
				for _, n := range conv.Notes {
					fmt.Fprintln(cmd.ErrOrStderr(), n)
				}
				write = conv.Write
			}
			if len(args) == 0 {
				return write(cmd.OutOrStdout())
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
			if err := fsutil.WriteAtomic(args[0], 0o644, write); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s; run it with: ftune train -c %s\n", args[0], args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite FILE (a regular file: not a folder nor a symbolic link)")
	cmd.Flags().StringVar(&from, "from", "", "convert `CONFIG`, another trainer's (Axolotl, LLaMA-Factory, transformers), into the run file")
	return cmd
}

// folderOf refuses a FILE whose folder does not exist, or is not a
// folder.
func folderOf(file string) error {
	dir := filepath.Dir(file)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usageError{fmt.Errorf("folder %s does not exist: create it first (%s), or give a FILE in a folder that does", dir, shell.Command("mkdir", "-p", dir))}
	case err == nil && !st.IsDir():
		return usageError{fmt.Errorf("%s is not a folder: give the FILE to write in a folder", dir)}
	}
	return nil // another error: the write says it
}

// convertFrom reads and converts the --from config. FILE naming the same
// file is refused, --force or not: the conversion would replace the
// user's config.
func convertFrom(from string, args []string) (*config.Conversion, error) {
	if len(args) == 1 {
		a, errA := os.Stat(from)
		b, errB := os.Stat(args[0])
		if errA == nil && errB == nil && os.SameFile(a, b) {
			return nil, usageError{fmt.Errorf("%s is the config to convert: give another file to write", args[0])}
		}
	}
	data, err := fsutil.ReadFileLimit(from, config.MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	return config.Convert(data, from)
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
