package main

import (
	"path/filepath"
	"time"

	"github.com/ftune/ftune/track"
)

// runsListJSON is `ftune runs list --json`.
type runsListJSON struct {
	Root string    `json:"root"` // --output
	Runs []runJSON `json:"runs"` // oldest first, as the table lists them
}

// runJSON is one run as runs list knows it: its row of the table, whole
// (every final metric; the reason unclipped).
type runJSON struct {
	Name   string `json:"name"`
	Folder string `json:"folder"`
	// Status is track's (finished, running, died, failed, interrupted,
	// unreadable) or damaged; Reason is why the run stopped early, or
	// what makes it unreadable or damaged ("" when nothing).
	Status  string     `json:"status"`
	Reason  string     `json:"reason"`
	Started *time.Time `json:"started"`
	Ended   *time.Time `json:"ended"` // null while running, or not recorded
	// Steps, KeptVersions and FinalMetrics are null for an unreadable
	// run: unknown, where 0 and {} would say none.
	Steps        *int          `json:"steps"`
	KeptVersions *int          `json:"kept_versions"` // checkpoints and exports not removed (keep_last)
	FinalMetrics *track.Values `json:"final_metrics"` // the last value of each metric metrics.jsonl logs
}

// runOf is s as runs list --json prints it.
func runOf(s track.RunSummary) runJSON {
	r := runJSON{Name: s.Name, Folder: s.Dir, Status: s.Status, Reason: s.Reason, Started: jsonTime(s.Started), Ended: jsonTime(s.Ended)}
	if s.Status != track.StatusUnreadable {
		final := s.Final
		if final == nil {
			final = track.Values{}
		}
		r.Steps, r.KeptVersions, r.FinalMetrics = &s.Steps, &s.Versions, &final
	}
	return r
}

// runShowJSON is `ftune runs show --json`: the run as the list has it,
// and what runs show prints besides.
type runShowJSON struct {
	runJSON
	Machine  *string       `json:"machine"` // env.json's summary; null without one
	Adapters []string      `json:"adapters"`
	Versions []versionJSON `json:"versions"`
	Config   *string       `json:"config"` // config.yaml as written; null without one
}

// versionJSON is one checkpoint or export of manifest.json.
type versionJSON struct {
	Kind    string           `json:"kind"` // checkpoint, export/peft, export/gguf, ...
	Path    string           `json:"path"` // as recorded: relative to the run folder when inside it
	Step    int              `json:"step"`
	Time    time.Time        `json:"time"`
	Files   []track.FileHash `json:"files"`
	Metrics track.Values     `json:"metrics"`
	Removed *time.Time       `json:"removed"` // when keep_last deleted it; null while it is there
}

// showOf is d as runs show --json prints it.
func showOf(d *track.Details) runShowJSON {
	out := runShowJSON{runJSON: runOf(d.RunSummary), Adapters: []string{}, Versions: []versionJSON{}}
	if d.Env != nil {
		m := d.Env.Summary()
		out.Machine = &m
	}
	if len(d.Config) > 0 {
		c := string(d.Config)
		out.Config = &c
	}
	for _, v := range d.Manifest.Versions {
		files := v.Files
		if files == nil {
			files = []track.FileHash{}
		}
		metrics := v.Metrics
		if metrics == nil {
			metrics = track.Values{}
		}
		out.Versions = append(out.Versions, versionJSON{Kind: v.Kind, Path: v.Path, Step: v.Step, Time: v.Time, Files: files, Metrics: metrics, Removed: jsonTime(v.Removed)})
		// The adapters a run exported (recipe records each as
		// export/peft, in the run folder): the folders to hand to eval,
		// generate and export --adapter, so as paths from here.
		if v.Kind == "export/peft" && v.Removed.IsZero() {
			p := filepath.FromSlash(v.Path)
			if !filepath.IsAbs(p) {
				p = filepath.Join(d.Dir, p)
			}
			out.Adapters = append(out.Adapters, p)
		}
	}
	return out
}

// runsCompareJSON is `ftune runs compare --json`: each run as runs list
// --json has it (its final metrics among them), and the settings that
// differ.
type runsCompareJSON struct {
	Runs []runJSON `json:"runs"` // in the order named
	// SettingsThatDiffer holds each config.yaml key whose value is not
	// the same in every run, values in the runs' order.
	SettingsThatDiffer []settingJSON `json:"settings_that_differ"`
	// PlotFiles are the files --plot wrote; null without --plot.
	PlotFiles []string `json:"plot_files"`
}

// settingJSON is one key of config.yaml across the compared runs: its
// value as the file writes it, null in a run whose file lacks the key.
type settingJSON struct {
	Key    string    `json:"key"`
	Values []*string `json:"values"`
}

// compareOf is the comparison of runs (their summaries, in c's order) as
// runs compare --json prints it.
func compareOf(runs []track.RunSummary, c track.RunComparison) runsCompareJSON {
	out := runsCompareJSON{Runs: make([]runJSON, len(runs)), SettingsThatDiffer: []settingJSON{}}
	for i, s := range runs {
		out.Runs[i] = runOf(s)
	}
	for _, r := range c.Params {
		s := settingJSON{Key: r.Key, Values: make([]*string, len(r.Values))}
		for i := range r.Values {
			if !r.Absent[i] {
				s.Values[i] = &r.Values[i]
			}
		}
		out.SettingsThatDiffer = append(out.SettingsThatDiffer, s)
	}
	return out
}
