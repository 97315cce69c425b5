package track

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
)

// Files of a run folder.
const (
	ConfigFile   = "config.yaml"
	MetricsFile  = "metrics.jsonl"
	SamplesFile  = "samples.jsonl"
	EnvFile      = "env.json"
	ManifestFile = "manifest.json"
	SummaryFile  = "summary.json"
	TensorBoard  = "tensorboard" // folder of tfevents files
	ReportFile   = "report.html"
)

// ErrRunExists is returned by NewRun for a named run whose folder holds a
// run already (resume it with ResumeRun, or pick another name).
var ErrRunExists = errors.New("run folder exists")

// Run is one training run's folder. Its methods are safe for concurrent
// use (the trainer logs from its loop, an evaluator may log text).
type Run struct {
	Dir  string
	Name string

	mu        sync.Mutex
	o         options
	metrics   *os.File
	samples   *os.File
	tb        *eventWriter
	lastSync  time.Time
	lastStep  int
	last      Values
	manifest  Manifest
	hashes    hashCache
	closed    bool
	lock      *os.File // LockFile, flock'd while the run is open
	removed   []string // leftovers of killed writes, deleted by ResumeRun
	hparams   map[string]any
	startTime time.Time
}

type options struct {
	tensorboard bool
	env         EnvOptions
	now         func() time.Time
	syncEvery   time.Duration
}

// Option changes how NewRun and ResumeRun set a run up.
type Option func(*options)

// WithTensorBoard turns the tfevents files on (the default) or off.
func WithTensorBoard(on bool) Option { return func(o *options) { o.tensorboard = on } }

// WithEnv supplies the version and GPU description for env.json.
func WithEnv(e EnvOptions) Option { return func(o *options) { o.env = e } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithSyncEvery sets how often logged records are fsync'd (default 10 s;
// 0 = every record). Records are written to the OS at once either way; the
// fsync bounds what a power cut can lose.
func WithSyncEvery(d time.Duration) Option { return func(o *options) { o.syncEvery = d } }

func buildOptions(opts []Option) options {
	o := options{tensorboard: true, now: time.Now, syncEvery: 10 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	return o
}

var runNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// NewRun creates the folder root/name and writes config.yaml (cfg, the
// resolved configuration; nil writes none), env.json, an empty manifest,
// and the first TensorBoard events (including the hyper-parameters read
// from cfg). An empty name becomes the start time, 20060102-150405, with
// -2, -3... added if taken.
func NewRun(root, name string, cfg []byte, opts ...Option) (*Run, error) {
	o := buildOptions(opts)
	now := o.now()
	if name != "" && !runNameRE.MatchString(name) {
		return nil, fmt.Errorf("track: run name %q must be a plain folder name (letters, digits, . _ + -)", name)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("track: %w", err)
	}
	dir, err := claimDir(root, name, now)
	if err != nil {
		return nil, err
	}
	r := &Run{Dir: dir, Name: filepath.Base(dir), o: o, last: Values{}, hashes: hashCache{}, startTime: now}
	r.manifest = Manifest{Run: r.Name, Created: now.UTC(), Versions: []Version{}}
	if r.lock, err = acquireLock(dir, thisHolder(now)); err != nil {
		return nil, err // a folder just made by Mkdir: only a racing resume holds it
	}
	if err := r.setUp(cfg); err != nil {
		// The folder exists: record why it holds no run rather than
		// leave it looking like one still running.
		_ = r.End(StatusFailed, err.Error())
		return nil, err
	}
	return r, nil
}

// setUp writes a new run folder's first files and opens the logs.
func (r *Run) setUp(cfg []byte) error {
	dir := r.Dir
	if cfg != nil {
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, ConfigFile), cfg, 0o644); err != nil {
			return fmt.Errorf("track: %w", err)
		}
		var err error
		if r.hparams, err = hparamsOf(cfg); err != nil {
			return fmt.Errorf("track: %s: %w", ConfigFile, err)
		}
	}
	if err := r.writeJSON(EnvFile, CaptureEnv(r.o.env)); err != nil {
		return err
	}
	if err := r.writeJSON(ManifestFile, r.manifest); err != nil {
		return err
	}
	return r.open(0, false)
}

// claimDir creates a new run folder; Mkdir (not MkdirAll) makes two runs
// started in the same second take different names.
func claimDir(root, name string, now time.Time) (string, error) {
	if name != "" {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			if errors.Is(err, os.ErrExist) {
				return "", fmt.Errorf("track: %s: %w", dir, ErrRunExists)
			}
			return "", fmt.Errorf("track: %w", err)
		}
		return dir, nil
	}
	base := now.Format("20060102-150405")
	for i := 1; i < 1000; i++ {
		n := base
		if i > 1 {
			n = fmt.Sprintf("%s-%d", base, i)
		}
		dir := filepath.Join(root, n)
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("track: %w", err)
		}
	}
	return "", fmt.Errorf("track: no free run name for %s in %s", base, root)
}

// ResumeRun reopens an existing run folder for appending, after training
// resumed from a checkpoint at step: ResumeRunFrom with that step.
func ResumeRun(dir string, step int, opts ...Option) (*Run, error) {
	return ResumeRunFrom(dir, func() (int, error) { return step, nil }, opts...)
}

// ResumeRunFrom reopens an existing run folder for appending. It takes the
// folder's lock first (a second process is refused, naming the holder),
// then calls restore, which loads the checkpoint and returns its step
// (under the lock, no other process prunes or rewrites the checkpoints
// meanwhile; if restore fails the folder is left as it was). It then
// deletes the leftovers of writes the killed process left (Removed lists
// them), and cuts metrics.jsonl and samples.jsonl back to the step (and
// before the final evaluation), which the resumed run logs again. The new
// TensorBoard file starts with a session START at the step so TensorBoard
// drops the orphaned points too.
func ResumeRunFrom(dir string, restore func() (step int, err error), opts ...Option) (*Run, error) {
	o := buildOptions(opts)
	if !IsRun(dir) {
		return nil, fmt.Errorf("track: resume %s: not a run folder (no %s or %s)", dir, ManifestFile, MetricsFile)
	}
	r := &Run{Dir: dir, Name: filepath.Base(dir), o: o, last: Values{}, hashes: hashCache{}, startTime: o.now()}
	var err error
	if r.lock, err = acquireLock(dir, thisHolder(r.startTime)); err != nil {
		return nil, err
	}
	if r.manifest, err = ReadManifest(filepath.Join(dir, ManifestFile)); err != nil {
		releaseLock(r.lock)
		return nil, fmt.Errorf("track: resume %s: %w", dir, err)
	}
	step, err := restore()
	if err != nil {
		releaseLock(r.lock)
		return nil, err
	}
	fail := func(err error) (*Run, error) {
		_ = r.End(StatusFailed, err.Error())
		return nil, err
	}
	if r.removed, err = removeLeftovers(dir); err != nil {
		return fail(err)
	}
	if err := rewind(dir, step); err != nil {
		return fail(err)
	}
	if recs, err := ReadMetrics(filepath.Join(dir, MetricsFile)); err == nil {
		var kept []Record
		for _, rec := range recs {
			if rec.Step <= step {
				kept = append(kept, rec)
			}
		}
		r.last, r.lastStep = Final(kept), step
	}
	if cfg, err := readConfig(dir); err == nil && cfg != nil {
		// Only to close the hparams session at the end; the start is in
		// the first event file.
		r.hparams, _ = hparamsOf(cfg)
	}
	_ = os.Remove(filepath.Join(dir, SummaryFile)) // running again
	if err := r.open(step, true); err != nil {
		return fail(err)
	}
	return r, nil
}

func (r *Run) open(step int, resumed bool) error {
	var err error
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if r.metrics, err = os.OpenFile(filepath.Join(r.Dir, MetricsFile), flags, 0o644); err != nil {
		return fmt.Errorf("track: %w", err)
	}
	if r.samples, err = os.OpenFile(filepath.Join(r.Dir, SamplesFile), flags, 0o644); err != nil {
		return fmt.Errorf("track: %w", err)
	}
	r.lastSync = r.o.now()
	if !r.o.tensorboard {
		return nil
	}
	now := r.o.now()
	if r.tb, err = newEventWriter(filepath.Join(r.Dir, TensorBoard), now); err != nil {
		return fmt.Errorf("track: %w", err)
	}
	if resumed {
		err = r.tb.write(encodeSessionStart(now, step))
	} else if r.hparams != nil {
		err = r.tb.write(encodeHParamsStart(now, r.hparams))
	}
	if err == nil {
		err = r.tb.flush()
	}
	return err
}

func (r *Run) writeJSON(name string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("track: %s: %w", name, err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(r.Dir, name), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("track: %w", err)
	}
	return nil
}

// Log appends one record of metrics at step to metrics.jsonl and the
// TensorBoard file. It has the shape of train.Sink's method; the map is
// copied, so the caller may reuse it.
func (r *Run) Log(step int, m map[string]float64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("track: run %s: Log after Close", r.Name)
	}
	now := r.o.now()
	vals := Values(maps.Clone(m))
	line, err := json.Marshal(Record{Step: step, WallTime: secs(now), Metrics: vals})
	if err != nil {
		return fmt.Errorf("track: %w", err)
	}
	if _, err := r.metrics.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("track: %s: %w", MetricsFile, err)
	}
	for k, v := range m {
		r.last[k] = v
	}
	r.lastStep = max(r.lastStep, step)
	if r.tb != nil {
		if err := r.tb.write(encodeScalars(now, step, m)); err != nil {
			return fmt.Errorf("track: %w", err)
		}
		if err := r.tb.flush(); err != nil {
			return fmt.Errorf("track: %w", err)
		}
	}
	return r.maybeSync(now)
}

// SetStep records that training completed step without logging a record
// (a step LogEvery skips): summary.json's steps and the step of a later
// version are the last completed step, not the last logged one (a run
// interrupted after step 142 with records every 10 said 140; an adapter
// saved after 4 steps, before any record at step 4, said step 0).
func (r *Run) SetStep(step int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastStep = max(r.lastStep, step)
}

// LogText records a text (a generated answer, a sample) at step under tag:
// samples.jsonl, and a TensorBoard text summary.
func (r *Run) LogText(step int, tag, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("track: run %s: LogText after Close", r.Name)
	}
	now := r.o.now()
	line, err := json.Marshal(Sample{Step: step, WallTime: secs(now), Tag: tag, Text: text})
	if err != nil {
		return fmt.Errorf("track: %w", err)
	}
	if _, err := r.samples.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("track: %s: %w", SamplesFile, err)
	}
	if r.tb != nil {
		if err := r.tb.write(encodeText(now, step, tag, text)); err != nil {
			return fmt.Errorf("track: %w", err)
		}
		if err := r.tb.flush(); err != nil {
			return fmt.Errorf("track: %w", err)
		}
	}
	return r.maybeSync(now)
}

func (r *Run) maybeSync(now time.Time) error {
	if now.Sub(r.lastSync) < r.o.syncEvery {
		return nil
	}
	r.lastSync = now
	return r.syncLocked()
}

func (r *Run) syncLocked() error {
	for _, f := range []*os.File{r.metrics, r.samples} {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("track: sync %s: %w", f.Name(), err)
		}
	}
	if r.tb != nil {
		if err := r.tb.sync(); err != nil {
			return fmt.Errorf("track: sync %s: %w", r.tb.path, err)
		}
	}
	return nil
}

// Sync forces logged records to disk now.
func (r *Run) Sync() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	return r.syncLocked()
}

// Last returns the latest value of every metric logged so far.
func (r *Run) Last() Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.last)
}
