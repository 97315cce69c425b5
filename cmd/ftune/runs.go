package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/track/report"
)

func newRunsCmd() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List, show and compare training runs; plot their loss curves",
	}
	cmd.PersistentFlags().StringVar(&root, "output", "runs", "folder of run folders")
	// A run is named by its path, or by its folder's name under --output;
	// a path (absolute, or with a separator) is never looked up there.
	dirOf := func(name string) string {
		if st, err := os.Stat(name); err == nil && st.IsDir() || filepath.IsAbs(name) || strings.ContainsRune(name, filepath.Separator) {
			return name
		}
		return filepath.Join(root, name)
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "One line per run: status, steps, final metrics",
		Example: "  ftune runs list --output /tmp/runs",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			runs, err := track.List(root)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), track.FormatList(runs))
			return nil
		},
	}
	show := &cobra.Command{
		Use:     "show RUN",
		Short:   "Configuration, environment, versions and final metrics of one run",
		Example: "  ftune runs show 20261126-114016",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := track.Show(dirOf(args[0]))
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), d.String())
			return nil
		},
	}
	var plot string
	compare := &cobra.Command{
		Use:   "compare RUN RUN...",
		Short: "Settings that differ and final metrics side by side (and an overlaid loss plot with --plot)",
		Example: `  ftune runs compare run-a run-b
  ftune runs compare run-a run-b --plot loss   # writes loss.png and loss.svg`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dirs := make([]string, len(args))
			for i, a := range args {
				dirs[i] = dirOf(a)
			}
			c, err := track.Compare(dirs)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), c.String())
			if plot != "" {
				if err := report.PlotLoss(dirs, plot); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "loss curves: %s.png, %s.svg\n", plot, plot)
			}
			return nil
		},
	}
	compare.Flags().StringVar(&plot, "plot", "", "write the overlaid loss curves to this path (.png and .svg)")
	report := &cobra.Command{
		Use:     "report RUN",
		Short:   "Write the run's report.html (plots, configuration, final metrics)",
		Example: "  ftune runs report 20261126-114016",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirOf(args[0])
			if err := report.HTMLReport(dir); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", filepath.Join(dir, track.ReportFile))
			return nil
		},
	}
	cmd.AddCommand(list, show, compare, report)
	return cmd
}

// writeReport writes a closed run's report.html (after recipe.Run returned:
// the report reads the status the run ended with) and prints where it is.
// The run's outcome does not depend on it: a failure is a warning.
func writeReport(w io.Writer, runDir string) {
	if err := report.HTMLReport(runDir); err != nil {
		fmt.Fprintf(w, "warning: report: %v\n", err)
		return
	}
	fmt.Fprintf(w, "report:     %s\n", filepath.Join(runDir, track.ReportFile))
}
