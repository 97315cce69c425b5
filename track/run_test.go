package track

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// clock is a fake time source advancing one second per call.
func clock(start time.Time) func() time.Time {
	t := start
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

const testConfig = `model:
  path: tiny-base
training:
  optimizer:
    lr: 0.0002
  lora:
    r: 8
    targets: [q_proj, v_proj]
  gradient_checkpointing: false
`

func mkFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestRunLifecycle(t *testing.T) {
	root := t.TempDir()
	gpu := func() (string, error) { return "Test GPU 1GB", nil }
	r, err := NewRun(root, "lr2e-4", []byte(testConfig), WithClock(clock(t0)), WithSyncEvery(0),
		WithEnv(EnvOptions{Version: "v0.1.0-test", GPU: gpu}))
	if err != nil {
		t.Fatal(err)
	}
	if r.Dir != filepath.Join(root, "lr2e-4") {
		t.Fatalf("dir %s", r.Dir)
	}
	for step := 1; step <= 4; step++ {
		m := map[string]float64{"train/loss": 3 - 0.5*float64(step), "train/lr": 2e-4}
		if err := r.Log(step, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Log(4, map[string]float64{"val/loss": 1.25, "val/perplexity": math.Exp(1.25)}); err != nil {
		t.Fatal(err)
	}
	if err := r.Log(5, map[string]float64{"train/loss": math.NaN()}); err != nil {
		t.Fatalf("a NaN loss must be recordable: %v", err)
	}
	if err := r.LogText(4, "samples/0", "Q: capital of France?\nA: Paris"); err != nil {
		t.Fatal(err)
	}

	// Inputs and a version.
	base := filepath.Join(t.TempDir(), "model")
	mkFile(t, filepath.Join(base, "config.json"), `{"a":1}`)
	mkFile(t, filepath.Join(base, "model.safetensors"), "weights")
	data := filepath.Join(t.TempDir(), "math.jsonl")
	mkFile(t, data, `{"q":"1+1","a":"2"}`+"\n")
	if err := r.SetInputs([]string{base}, []string{data}); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(r.Dir, "checkpoints", "step-00000004")
	mkFile(t, filepath.Join(ckpt, "adapter_model.safetensors"), "adapter")
	mkFile(t, filepath.Join(ckpt, "adapter_config.json"), "{}")
	if err := r.AddVersion("checkpoint", ckpt, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.AddVersion("export/peft", ckpt, []string{filepath.Join(ckpt, "adapter_model.safetensors")}, map[string]float64{"val/loss": 1.0}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := r.Log(6, map[string]float64{"x": 1}); err == nil {
		t.Fatal("Log after Close must fail")
	}

	// config.yaml is the bytes given.
	if b, _ := os.ReadFile(filepath.Join(r.Dir, ConfigFile)); string(b) != testConfig {
		t.Errorf("config.yaml = %q", b)
	}

	// metrics.jsonl: one object per Log, NaN as a string.
	recs, err := ReadMetrics(filepath.Join(r.Dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 || recs[0].Step != 1 || recs[0].Metrics["train/loss"] != 2.5 || recs[4].Metrics["val/loss"] != 1.25 {
		t.Fatalf("records: %+v", recs)
	}
	if !math.IsNaN(recs[5].Metrics["train/loss"]) {
		t.Errorf("NaN did not round-trip: %v", recs[5].Metrics)
	}
	raw, _ := os.ReadFile(filepath.Join(r.Dir, MetricsFile))
	if !strings.Contains(string(raw), `{"step":5,"wall_time":`) || !strings.Contains(string(raw), `"train/loss":"NaN"`) {
		t.Errorf("metrics.jsonl text:\n%s", raw)
	}
	if recs[1].WallTime <= recs[0].WallTime {
		t.Errorf("wall times not increasing: %v, %v", recs[0].WallTime, recs[1].WallTime)
	}

	// TensorBoard: version, hparams, scalars, text, session end, in order.
	files, err := EventFiles(filepath.Join(r.Dir, TensorBoard))
	if err != nil || len(files) != 1 {
		t.Fatalf("event files %v, %v", files, err)
	}
	evs, err := ReadEvents(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1+1+6+1+1 {
		t.Fatalf("%d events, want 10", len(evs))
	}
	if evs[0].FileVersion != "brain.Event:2" || evs[1].Values[0].Tag != "_hparams_/session_start_info" {
		t.Errorf("head events: %+v %+v", evs[0], evs[1])
	}
	hp, err := decodeHParamsStart(evs[1].Values[0].PluginContent)
	if err != nil || hp["training.optimizer.lr"] != 0.0002 || hp["training.lora.targets"] != "[q_proj, v_proj]" || hp["training.gradient_checkpointing"] != false {
		t.Errorf("hparams %v, %v", hp, err)
	}
	if e := evs[2]; e.Step != 1 || len(e.Values) != 2 || e.Values[0].Tag != "train/loss" || e.Values[0].Simple != 2.5 {
		t.Errorf("first scalar event: %+v", e)
	}
	if e := evs[8]; e.Step != 4 || e.Values[0].Plugin != "text" || e.Values[0].Strings[0] != "Q: capital of France?\nA: Paris" {
		t.Errorf("text event: %+v", e)
	}
	if st, err := decodeHParamsEndStatus(evs[9].Values[0].PluginContent); err != nil || st != hpStatusSuccess {
		t.Errorf("end status %d %v", st, err)
	}

	// env.json.
	var env Env
	if b, err := os.ReadFile(filepath.Join(r.Dir, EnvFile)); err != nil || json.Unmarshal(b, &env) != nil {
		t.Fatalf("env.json: %v", err)
	}
	if env.GOOS != runtime.GOOS || env.GoVersion != runtime.Version() || env.FtuneVersion != "v0.1.0-test" || env.GPU != "Test GPU 1GB" || env.NumCPU < 1 {
		t.Errorf("env: %+v", env)
	}
	if wd, _ := os.Getwd(); env.WorkingDir != wd {
		t.Errorf("env.json working_dir %q, want the folder the run started in, %q", env.WorkingDir, wd)
	}
	if runtime.GOARCH == "amd64" && len(env.CPU.Features) == 0 {
		t.Errorf("no CPU features on amd64: %+v", env.CPU)
	}

	// manifest.json: hashes equal sha256 of the contents.
	m, err := ReadManifest(filepath.Join(r.Dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Versions) != 2 || m.Run != "lr2e-4" {
		t.Fatalf("manifest: %+v", m)
	}
	v := m.Versions[0]
	wantFiles := []FileHash{{"adapter_config.json", 2, sha("{}")}, {"adapter_model.safetensors", 7, sha("adapter")}}
	if v.Kind != "checkpoint" || v.Path != "checkpoints/step-00000004" || v.Step != 5 || len(v.Files) != 2 || v.Files[0] != wantFiles[0] || v.Files[1] != wantFiles[1] {
		t.Errorf("checkpoint version: %+v", v)
	}
	if len(v.BaseModel) != 2 || v.BaseModel[1].SHA256 != sha("weights") || len(v.Data) != 1 || v.Data[0].SHA256 != sha(`{"q":"1+1","a":"2"}`+"\n") {
		t.Errorf("inputs: base %+v data %+v", v.BaseModel, v.Data)
	}
	if v.Metrics["val/loss"] != 1.25 || v.Metrics["train/lr"] != 2e-4 || !math.IsNaN(v.Metrics["train/loss"]) {
		t.Errorf("version metrics default to the latest values: %v", v.Metrics)
	}
	if e := m.Versions[1]; e.Kind != "export/peft" || len(e.Files) != 1 || e.Files[0].Path != "adapter_model.safetensors" || len(e.Metrics) != 1 {
		t.Errorf("export version: %+v", e)
	}

	// summary.json.
	s, err := Summarize(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "finished" || s.Steps != 5 || s.Versions != 2 || s.Final["val/loss"] != 1.25 || !s.Started.Equal(t0.Add(time.Second)) {
		t.Errorf("summary: %+v", s)
	}
}

func TestRunNames(t *testing.T) {
	root := t.TempDir()
	now := func() time.Time { return t0 }
	a, err := NewRun(root, "", nil, WithClock(now), WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewRun(root, "", nil, WithClock(now), WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	if a.Name != "20261126-120000" || b.Name != "20261126-120000-2" {
		t.Errorf("names %q, %q", a.Name, b.Name)
	}
	if _, err := os.Stat(filepath.Join(a.Dir, TensorBoard)); !os.IsNotExist(err) {
		t.Errorf("WithTensorBoard(false) still made %s", TensorBoard)
	}
	if _, err := NewRun(root, a.Name, nil); !errors.Is(err, ErrRunExists) {
		t.Errorf("reusing a name: %v, want ErrRunExists", err)
	}
	for _, bad := range []string{"../x", "a/b", ".hidden", "sp ace"} {
		if _, err := NewRun(root, bad, nil); err == nil || !strings.Contains(err.Error(), "plain folder name") {
			t.Errorf("name %q: %v", bad, err)
		}
	}
}

func TestResumeSupersedesOrphanedRecords(t *testing.T) {
	root := t.TempDir()
	r, err := NewRun(root, "crash", []byte(testConfig), WithClock(clock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	for step := 1; step <= 5; step++ {
		if err := r.Log(step, map[string]float64{"train/loss": float64(10 - step)}); err != nil {
			t.Fatal(err)
		}
	}
	// A crash: no Close. Records were written to the OS at each Log.
	if s, err := Summarize(r.Dir); err != nil || s.Status != "running" || s.Steps != 5 {
		t.Fatalf("unclosed run summary: %+v %v", s, err)
	}
	crash(r)
	r2, err := ResumeRun(r.Dir, 3, WithClock(clock(t0.Add(time.Hour))))
	if err != nil {
		t.Fatal(err)
	}
	if last := r2.Last(); last["train/loss"] != 7 {
		t.Errorf("resumed Last() = %v, want the value at step 3", last)
	}
	for step := 4; step <= 6; step++ {
		if err := r2.Log(step, map[string]float64{"train/loss": float64(100 + step)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadMetrics(filepath.Join(r.Dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	got := Series(recs, "train/loss")
	want := []Point{{1, 9}, {2, 8}, {3, 7}, {4, 104}, {5, 105}, {6, 106}}
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("series %v, want %v", got, want)
		}
	}
	files, _ := EventFiles(filepath.Join(r.Dir, TensorBoard))
	if len(files) != 2 {
		t.Fatalf("want a second event file after resume, got %v", files)
	}
	evs, err := ReadEvents(files[1])
	if err != nil {
		t.Fatal(err)
	}
	if evs[1].SessionStatus != sessionStart || evs[1].Step != 3 {
		t.Errorf("resumed file starts with %+v, want a session START at step 3", evs[1])
	}
	if end := evs[len(evs)-1]; len(end.Values) != 1 || end.Values[0].Tag != "_hparams_/session_end_info" {
		t.Errorf("resumed file ends with %+v, want the hparams session end", end)
	}
	if s, err := Summarize(r.Dir); err != nil || s.Status != "finished" || s.Steps != 6 || s.Final["train/loss"] != 106 {
		t.Errorf("summary after resume: %+v %v", s, err)
	}
}

// crash drops r as a killed process would: its files closed (the kernel
// does that), its lock released, no summary written.
func crash(r *Run) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.metrics.Close()
	r.samples.Close()
	if r.tb != nil {
		r.tb.close()
	}
	releaseLock(r.lock)
}

func TestReadMetricsDamage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, text string
		n          int
		err        string
	}{
		{"torn last line", `{"step":1,"wall_time":1,"metrics":{"a":1}}` + "\n" + `{"step":2,"wall`, 1, ""},
		{"bad middle line", `{"step":1,"wall_time":1,"metrics":{"a":1}}` + "\nnot json\n" + `{"step":2,"wall_time":1,"metrics":{}}` + "\n", 0, "metrics.jsonl:2:"},
		{"bad value", `{"step":1,"wall_time":1,"metrics":{"a":"lots"}}` + "\n", 0, `"lots" is not a number`},
		{"infinities", `{"step":1,"wall_time":1,"metrics":{"a":"+Inf","b":"-Inf"}}` + "\n", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name, MetricsFile)
			mkFile(t, p, tc.text)
			recs, err := ReadMetrics(p)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(recs) != tc.n {
				t.Fatalf("%d records, %v; want %d", len(recs), err, tc.n)
			}
			if tc.name == "infinities" && (!math.IsInf(recs[0].Metrics["a"], 1) || !math.IsInf(recs[0].Metrics["b"], -1)) {
				t.Fatalf("infinities: %v", recs[0].Metrics)
			}
		})
	}
}

func TestVersionErrors(t *testing.T) {
	r, err := NewRun(t.TempDir(), "v", nil, WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.AddVersion("checkpoint", filepath.Join(r.Dir, "missing"), nil, nil); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing checkpoint: %v", err)
	}
	if err := r.SetInputs([]string{"/nonexistent/model"}, nil); err == nil || !strings.Contains(err.Error(), "base model") {
		t.Errorf("missing base model: %v", err)
	}
	if err := r.SetInputs(nil, []string{""}); err != nil {
		t.Errorf("an empty data path (embedded data) must be skipped: %v", err)
	}
}

func TestHashCacheRehashesChangedFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	mkFile(t, p, "one")
	c := hashCache{}
	if _, s, _ := c.hashFile(p); s != sha("one") {
		t.Fatal("first hash wrong")
	}
	mkFile(t, p, "two!")
	if _, s, _ := c.hashFile(p); s != sha("two!") {
		t.Fatal("a changed file (size differs) must be rehashed")
	}
}

func TestConcurrentLogging(t *testing.T) {
	r, err := NewRun(t.TempDir(), "conc", nil, WithSyncEvery(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 25
	done := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				var err error
				if w%2 == 0 {
					err = r.Log(w*each+i, map[string]float64{"x": float64(i)})
				} else {
					err = r.LogText(w*each+i, "t", "text")
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for w := 0; w < writers; w++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadMetrics(filepath.Join(r.Dir, MetricsFile))
	samples, err2 := ReadSamples(filepath.Join(r.Dir, SamplesFile))
	if err != nil || err2 != nil || len(recs) != 2*each || len(samples) != 2*each {
		t.Fatalf("%d records (%v), %d samples (%v); want %d each", len(recs), err, len(samples), err2, 2*each)
	}
	files, _ := EventFiles(filepath.Join(r.Dir, TensorBoard))
	evs, err := ReadEvents(files[0])
	if err != nil || len(evs) != 1+4*each {
		t.Fatalf("%d events (%v), want %d: interleaved writes must not tear records", len(evs), err, 1+4*each)
	}
}
