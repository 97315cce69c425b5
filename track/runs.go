package track

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
)

// IsRun says whether dir looks like a run folder.
func IsRun(dir string) bool {
	for _, f := range []string{ManifestFile, MetricsFile, SummaryFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// NotARunFolder refuses a training run's folder given where an adapter
// folder is meant (--adapter, training.lora.init_from), naming the adapter
// it holds (taken as a folder of per-subject adapters, or as an adapter,
// it failed on a missing adapter_config.json); nil when adapter is not a
// run folder.
func NotARunFolder(adapter string) error {
	if !IsRun(adapter) {
		return nil
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	switch one, many := filepath.Join(adapter, "adapter"), filepath.Join(adapter, "adapters"); {
	case exists(one):
		return fmt.Errorf("adapter %s: this is a training run's folder; its adapter is %s", adapter, one)
	case exists(many):
		return fmt.Errorf("adapter %s: this is a training run's folder; its per-subject adapters are %s", adapter, many)
	}
	return fmt.Errorf("adapter %s: this is a training run's folder, which holds no adapter yet (the run exports it when it ends)", adapter)
}

// Summarize reads a run folder at a glance: summary.json when the run was
// closed, else what metrics.jsonl and manifest.json say, with status
// "running", or "died" when the process that held it (LockFile) is gone
// from this host.
func Summarize(dir string) (RunSummary, error) {
	var s RunSummary
	data, err := fsutil.ReadFileLimit(filepath.Join(dir, SummaryFile), maxManifestBytes)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return s, err // a pipe, a device, a folder, or too large: named
	}
	if err == nil {
		if err := json.Unmarshal(data, &s); err != nil {
			return s, fmt.Errorf("%s: %w", filepath.Join(dir, SummaryFile), err)
		}
		// The folder names the run, as `ftune runs show NAME` finds it:
		// a copied run folder is not listed under the original's name.
		s.Name, s.Dir = filepath.Base(filepath.Clean(dir)), dir
		return s, nil
	}
	if !IsRun(dir) {
		return s, fmt.Errorf("%s is not a run folder (no %s or %s)", dir, ManifestFile, MetricsFile)
	}
	s = RunSummary{Name: filepath.Base(dir), Dir: dir, Status: StatusRunning}
	if h, ok := readHolder(dir); ok && h.gone() {
		s.Status, s.Reason = StatusDied, h.String()+" is gone"
	}
	if m, err := ReadManifest(filepath.Join(dir, ManifestFile)); err == nil {
		s.Started, s.Versions = m.Created, m.Kept()
	}
	recs, err := ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return s, err
	}
	s.Steps, s.Final = LastStep(recs), Final(recs)
	return s, nil
}

// List summarizes every run folder directly under root, oldest first. A
// folder that cannot be read (a corrupt summary.json or metrics.jsonl) is
// listed with status StatusUnreadable and the error, which names the file,
// as its Reason: one broken run does not hide the others. The error is
// only for root itself.
func List(root string) ([]RunSummary, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []RunSummary
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if !e.IsDir() || !IsRun(dir) {
			continue
		}
		s, err := Summarize(dir)
		if err != nil {
			s = RunSummary{Name: e.Name(), Dir: dir, Status: StatusUnreadable, Reason: err.Error()}
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// FormatList is List's result as a table.
func FormatList(runs []RunSummary) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSTATUS\tSTARTED\tSTEPS\tTRAIN LOSS\tVAL LOSS\tVERSIONS")
	for _, s := range runs {
		started := "-"
		if !s.Started.IsZero() {
			started = s.Started.Local().Format("2006-01-02 15:04")
		}
		steps, versions := strconv.Itoa(s.Steps), strconv.Itoa(s.Versions)
		if s.Status == StatusUnreadable {
			steps, versions = "-", "-" // unknown, not 0
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, clip(s.StatusText(), listStatusWidth), started, steps,
			MetricText(s.Final, "train/loss"), MetricText(s.Final, "val/loss"), versions)
	}
	w.Flush()
	return b.String()
}

// listStatusWidth caps the STATUS column of the list (a failure's error
// can be long; `ftune runs show` prints it whole).
const listStatusWidth = 48

// clip shortens s to n runes, ending in "…" when cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// MetricText is m[k] for a table: "-" when absent, else FormatValue.
func MetricText(m Values, k string) string {
	v, ok := m[k]
	if !ok {
		return "-"
	}
	return FormatValue(v)
}

// FormatValue prints a metric with 5 significant digits (NaN and ±Inf as
// such).
func FormatValue(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', 5, 64)
}

// Details is everything about one run (for `ftune runs show`).
type Details struct {
	RunSummary
	Config   []byte
	Env      *Env
	Manifest Manifest
	Samples  []Sample
	Records  []Record
}

// maxEnvBytes bounds env.json (a few kilobytes; more per rank).
const maxEnvBytes = 16 << 20

// ReadEnv reads a run folder's env.json (nil and an error when it is
// missing, unreadable, not a regular file or past maxEnvBytes).
func ReadEnv(dir string) (*Env, error) {
	path := filepath.Join(dir, EnvFile)
	data, err := fsutil.ReadFileLimit(path, maxEnvBytes)
	if err != nil {
		return nil, err
	}
	var e Env
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &e, nil
}

// readConfig reads a run folder's config.yaml: nil when there is none,
// and an error naming it when it is not a regular file or is larger than
// a run file may be (fsutil.MaxRunFileBytes, config's bound).
func readConfig(dir string) ([]byte, error) {
	data, err := fsutil.ReadFileLimit(filepath.Join(dir, ConfigFile), fsutil.MaxRunFileBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// Show reads a run folder.
func Show(dir string) (*Details, error) {
	s, err := Summarize(dir)
	if err != nil {
		return nil, err
	}
	d := &Details{RunSummary: s}
	if d.Config, err = readConfig(dir); err != nil {
		return nil, err
	}
	d.Env, _ = ReadEnv(dir)
	if m, err := ReadManifest(filepath.Join(dir, ManifestFile)); err == nil {
		d.Manifest = m
	}
	if d.Samples, err = ReadSamples(filepath.Join(dir, SamplesFile)); err != nil {
		return nil, err
	}
	if d.Records, err = ReadMetrics(filepath.Join(dir, MetricsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return d, nil
}

// String is the text `ftune runs show` prints.
func (d *Details) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run      %s (%s)\nfolder   %s\n", d.Name, d.StatusText(), d.Dir)
	if !d.Started.IsZero() {
		fmt.Fprintf(&b, "started  %s", d.Started.Local().Format(time.DateTime))
		if !d.Ended.IsZero() {
			fmt.Fprintf(&b, ", took %s", d.Ended.Sub(d.Started).Round(time.Second))
		}
		b.WriteByte('\n')
	}
	if d.Env != nil {
		fmt.Fprintf(&b, "machine  %s\n", d.Env.Summary())
	}
	fmt.Fprintf(&b, "steps    %d\n", d.Steps)
	if ev := BeforeAfter(d.Final).String(); ev != "" {
		fmt.Fprintf(&b, "\nbefore → after training\n%s", ev)
	}
	b.WriteString("\nfinal metrics\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, k := range sortedKeys(d.Final) {
		if strings.HasPrefix(k, EvalBeforePrefix) || strings.HasPrefix(k, EvalAfterPrefix) {
			continue // in the table above
		}
		fmt.Fprintf(w, "  %s\t%s\n", k, FormatValue(d.Final[k]))
	}
	w.Flush()
	if len(d.Manifest.Versions) > 0 {
		b.WriteString("\nversions\n")
		w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, v := range d.Manifest.Versions {
			sum := ""
			if f, ok := v.WeightsFile(); ok && len(f.SHA256) >= 12 {
				sum = f.SHA256[:12]
			}
			gone := ""
			if !v.Removed.IsZero() {
				gone = "\t(removed)"
			}
			fmt.Fprintf(w, "  %s\t%s\tstep %d\t%d files\t%s\tval/loss %s%s\n", v.Kind, v.Path, v.Step, len(v.Files), sum, MetricText(v.Metrics, "val/loss"), gone)
		}
		w.Flush()
	}
	if len(d.Config) > 0 {
		fmt.Fprintf(&b, "\nconfiguration (%s)\n%s", ConfigFile, d.Config)
		if d.Config[len(d.Config)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Comparison is several runs side by side: the settings that differ and
// the final metrics.
type Comparison struct {
	Runs    []string // run names, one column each
	Params  []Row    // configuration keys whose values differ
	Metrics []Row    // final value of every metric any run logged
}

// Row is one key across the compared runs ("-" where a run lacks it).
type Row struct {
	Key    string
	Values []string
	// Absent[i] says run i lacks the key (Values[i] is then "-", which
	// a run could also have set): set on Comparison.Params rows only.
	Absent []bool
}

// Compare reads the runs' config.yaml and metrics.
func Compare(dirs []string) (Comparison, error) {
	var c Comparison
	params := map[string][]string{}
	absent := map[string][]bool{}
	var paramOrder []string
	finals := make([]Values, len(dirs))
	for i, dir := range dirs {
		s, err := Summarize(dir)
		if err != nil {
			return c, err
		}
		c.Runs = append(c.Runs, s.Name)
		finals[i] = s.Final
		data, err := readConfig(dir)
		if err != nil {
			return c, err
		}
		ps, err := flattenConfig(data)
		if err != nil {
			return c, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
		}
		for _, p := range ps {
			if _, ok := params[p.key]; !ok {
				params[p.key] = make([]string, len(dirs))
				absent[p.key] = make([]bool, len(dirs))
				for j := range params[p.key] {
					params[p.key][j] = "-"
					absent[p.key][j] = true
				}
				paramOrder = append(paramOrder, p.key)
			}
			params[p.key][i] = p.text
			absent[p.key][i] = false
		}
	}
	for _, k := range paramOrder {
		vals, gone := params[k], absent[k]
		for j, v := range vals[1:] {
			if v != vals[0] || gone[j+1] != gone[0] {
				c.Params = append(c.Params, Row{Key: k, Values: vals, Absent: gone})
				break
			}
		}
	}
	names := map[string]bool{}
	for _, f := range finals {
		for k := range f {
			names[k] = true
		}
	}
	for _, k := range sortedKeys(names) {
		row := Row{Key: k, Values: make([]string, len(dirs))}
		for i, f := range finals {
			row.Values[i] = MetricText(f, k)
		}
		c.Metrics = append(c.Metrics, row)
	}
	return c, nil
}

// String is the comparison as a text table (RunComparison's, without the
// progress rows).
func (c Comparison) String() string { return RunComparison{Comparison: c}.String() }
