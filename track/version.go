package track

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// SetInputs hashes the base model files and the data files (directories
// stand for the files below them) once; every later version in the
// manifest carries these hashes.
func (r *Run) SetInputs(baseModel, data []string) error {
	_, err := r.SetInputsRead(baseModel, data, nil)
	return err
}

// SetInputsRead is SetInputs told what the run read of its data files:
// read holds a file's path, size and sha256 as it was read (hashed while
// it was parsed). Such a file is recorded as read, the bytes trained on,
// not as it is when hashed here: a file written to since it was read (a
// log appended to) would otherwise be recorded at its later size, which
// no one trained on. changed says which files differ now from what was
// read ("PATH: N bytes read, M bytes now").
func (r *Run) SetInputsRead(baseModel, data []string, read []FileHash) (changed []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	base, err := r.hashes.hashPaths(baseModel, "")
	if err != nil {
		return nil, fmt.Errorf("track: base model: %w", err)
	}
	d, changed, err := r.hashData(data, read)
	if err != nil {
		return nil, err
	}
	r.manifest.BaseModel, r.manifest.Data = base, d
	return changed, r.writeJSON(ManifestFile, r.manifest)
}

// hashData hashes the data files as SetInputs does, then puts in what was
// read of those that read names (matched by absolute path), listing the
// ones that changed since.
func (r *Run) hashData(data []string, read []FileHash) ([]FileHash, []string, error) {
	d, err := r.hashes.hashPaths(data, "")
	if err != nil {
		return nil, nil, fmt.Errorf("track: data: %w", err)
	}
	byPath := make(map[string]FileHash, len(read))
	for _, f := range read {
		byPath[absPath(f.Path)] = f
	}
	var changed []string
	for i, f := range d {
		got, ok := byPath[absPath(f.Path)]
		if !ok {
			continue
		}
		if got.Size != f.Size || got.SHA256 != f.SHA256 {
			changed = append(changed, fmt.Sprintf("%s: %d bytes read, %d bytes now", f.Path, got.Size, f.Size))
		}
		d[i].Size, d[i].SHA256 = got.Size, got.SHA256
	}
	return d, changed, nil
}

// absPath is p absolute and clean, to match a path given two ways.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// AddVersion records a checkpoint or export in manifest.json: kind (e.g.
// "checkpoint", "export/peft", "export/gguf"), its folder or file, the
// sha256 of its files (files empty: every file under path), the base
// model and data hashes from SetInputs, the last step (logged, or given
// to SetStep), and metrics (nil: the latest value of every metric logged).
func (r *Run) AddVersion(kind, path string, files []string, metrics map[string]float64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(files) == 0 {
		files = []string{path}
	}
	base := path
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		base = filepath.Dir(path)
	}
	hashed, err := r.hashes.hashPaths(files, base)
	if err != nil {
		return fmt.Errorf("track: version %s %s: %w", kind, path, err)
	}
	if metrics == nil {
		metrics = r.last
	}
	// A new checkpoint is where keep_last deletes older ones (train's
	// Checkpointer prunes before the caller records the new one).
	r.markRemoved()
	v := Version{
		Kind: kind, Path: relTo(r.Dir, path), Step: r.lastStep, Time: r.o.now().UTC(),
		Files: hashed, BaseModel: r.manifest.BaseModel, Data: r.manifest.Data,
		Metrics: Values(maps.Clone(metrics)),
	}
	r.manifest.Versions = append(r.manifest.Versions, v)
	if err := r.writeJSON(ManifestFile, r.manifest); err != nil {
		return err
	}
	// A version is a point worth not losing: make the records up to it durable.
	return r.syncLocked()
}

// markRemoved sets Removed on the checkpoint versions whose folder is
// gone, and reports whether it set any. Checkpoints are the versions a
// run deletes as it goes (keep_last) and live in its folder, which a
// relative path is relative to; an export's relative path may be the
// caller's working directory's (relTo keeps a path outside the run
// folder as given), so exports are not checked.
func (r *Run) markRemoved() bool {
	marked := false
	for i := range r.manifest.Versions {
		v := &r.manifest.Versions[i]
		if v.Kind != "checkpoint" || !v.Removed.IsZero() {
			continue
		}
		p := filepath.FromSlash(v.Path)
		if !filepath.IsAbs(p) {
			p = filepath.Join(r.Dir, p)
		}
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			v.Removed, marked = r.o.now().UTC(), true
		}
	}
	return marked
}

// Statuses of a run (RunSummary.Status).
const (
	StatusRunning     = "running"     // not closed, its process alive (or on another host)
	StatusFinished    = "finished"    // ran to its end, or stopped by a rule (Reason says which)
	StatusInterrupted = "interrupted" // Ctrl-C or SIGTERM; resumable
	StatusFailed      = "failed"      // an error ended it (Reason holds it)
	StatusDied        = "died"        // not closed and its process is gone (SIGKILL, power cut)
	StatusUnreadable  = "unreadable"  // List only: the folder's files could not be read (Reason holds the error)
)

// RunSummary is a run at a glance (summary.json, and what List returns).
type RunSummary struct {
	Name     string    `json:"name"`
	Dir      string    `json:"dir"`
	Status   string    `json:"status"`           // one of the Status constants
	Reason   string    `json:"reason,omitempty"` // why it stopped early, or the error that ended it
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended,omitzero"`
	Steps    int       `json:"steps"`
	Versions int       `json:"versions"` // recorded and not removed (Manifest.Kept)
	Final    Values    `json:"final"`
}

// StatusText is the status with its reason: "finished (stopped:
// max_time)", "failed: loss diverged".
func (s RunSummary) StatusText() string {
	switch {
	case s.Reason == "":
		return s.Status
	case s.Status == StatusFailed || s.Status == StatusUnreadable:
		return s.Status + ": " + s.Reason
	default:
		return s.Status + " (" + s.Reason + ")"
	}
}

// Close ends a run that finished normally.
func (r *Run) Close() error { return r.End(StatusFinished, "") }

// CloseWithStatus is End without a reason.
func (r *Run) CloseWithStatus(status string) error { return r.End(status, "") }

// End closes the run, recording status (a Status constant) and reason
// (why it stopped early, or the error that ended it) in summary.json and
// the hparams session end, and syncs and closes every file. Closing twice
// is a no-op: register End right after the run opens (defer) and the
// folder never stays "running" after its process is gone.
func (r *Run) End(status, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	now := r.o.now()
	var errs []error
	if r.tb != nil {
		hs := hpStatusUnknown
		switch status {
		case StatusFinished:
			hs = hpStatusSuccess
		case StatusFailed:
			hs = hpStatusFailure
		}
		if r.hparams != nil {
			errs = append(errs, r.tb.write(encodeHParamsEnd(now, hs)))
		}
		errs = append(errs, r.tb.close())
	}
	for _, f := range []*os.File{r.metrics, r.samples} {
		if f != nil { // nil when the run failed while opening
			errs = append(errs, f.Sync(), f.Close())
		}
	}
	if r.markRemoved() { // a prune whose new checkpoint was not recorded
		errs = append(errs, r.writeJSON(ManifestFile, r.manifest))
	}
	s := RunSummary{
		Name: r.Name, Dir: r.Dir, Status: status, Reason: reason, Started: r.manifest.Created, Ended: now.UTC(),
		Steps: r.lastStep, Versions: r.manifest.Kept(), Final: maps.Clone(r.last),
	}
	errs = append(errs, r.writeJSON(SummaryFile, s))
	errs = append(errs, releaseLock(r.lock)) // last: the folder is complete
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("track: close %s: %w", r.Name, err)
		}
	}
	return nil
}

// param is one flattened configuration value.
type param struct {
	key  string
	val  any // float64, bool or string (lists and maps as their YAML text)
	text string
}

// flattenConfig turns YAML into dotted keys with scalar values, in file
// order: training.optimizer.lr = 0.0002.
func flattenConfig(data []byte) ([]param, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	var out []param
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			if prefix != "" && len(n.Content) == 0 {
				out = append(out, param{prefix, "{}", "{}"})
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if prefix != "" {
					k = prefix + "." + k
				}
				walk(n.Content[i+1], k)
			}
		case yaml.SequenceNode:
			items := make([]string, len(n.Content))
			for i, c := range n.Content {
				items[i] = c.Value
			}
			s := "[" + strings.Join(items, ", ") + "]"
			out = append(out, param{prefix, s, s})
		case yaml.ScalarNode:
			p := param{key: prefix, val: n.Value, text: n.Value}
			switch n.Tag {
			case "!!int", "!!float":
				if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil {
					p.val = f
				}
			case "!!bool":
				p.val = n.Value == "true"
			case "!!null":
				p.val, p.text = "", ""
			}
			out = append(out, p)
		}
	}
	walk(&doc, "")
	return out, nil
}

// hparamsOf is the configuration as TensorBoard hyper-parameters.
func hparamsOf(cfg []byte) (map[string]any, error) {
	ps, err := flattenConfig(cfg)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(ps))
	for _, p := range ps {
		out[p.key] = p.val
	}
	return out, nil
}
