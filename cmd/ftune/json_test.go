package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/track/tracktest"
)

// streamsOf runs a command line as main does and returns its exit
// status, its stdout, and its stderr with the error execute prints: what
// a script piping stdout sees apart from what a person reads.
func streamsOf(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runAsMain(t, false, args...)
}

// decodeOne decodes stdout into v as the one JSON document it must be:
// fields v lacks are an error (a renamed field fails here, not in a
// script), and so is anything after the document.
func decodeOne(t *testing.T, stdout string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not the JSON document: %v\n%s", err, stdout)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON document (%v):\n%s", err, stdout)
	}
}

// The documents as a script reads them: the field names are the contract.
type (
	jsonRun struct {
		Name         string        `json:"name"`
		Folder       string        `json:"folder"`
		Status       string        `json:"status"`
		Reason       string        `json:"reason"`
		Started      *time.Time    `json:"started"`
		Ended        *time.Time    `json:"ended"`
		Steps        *int          `json:"steps"`
		KeptVersions *int          `json:"kept_versions"`
		FinalMetrics *track.Values `json:"final_metrics"`
	}
	jsonRunsList struct {
		Root string    `json:"root"`
		Runs []jsonRun `json:"runs"`
	}
	jsonVersion struct {
		Kind    string           `json:"kind"`
		Path    string           `json:"path"`
		Step    int              `json:"step"`
		Time    time.Time        `json:"time"`
		Files   []track.FileHash `json:"files"`
		Metrics track.Values     `json:"metrics"`
		Removed *time.Time       `json:"removed"`
	}
	jsonRunShow struct {
		jsonRun
		Machine  *string       `json:"machine"`
		Adapters []string      `json:"adapters"`
		Versions []jsonVersion `json:"versions"`
		Config   *string       `json:"config"`
	}
)

// runFromFolder is what a run folder holds, read without the code the
// runs commands use to read it: its metrics.jsonl line by line, its
// manifest and config.yaml as files.
type runFromFolder struct {
	final    map[string]float64
	steps    int
	manifest track.Manifest
	config   string
}

func readRunFolder(t *testing.T, dir string) runFromFolder {
	t.Helper()
	r := runFromFolder{final: map[string]float64{}}
	data, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		var rec struct {
			Step    int          `json:"step"`
			Metrics track.Values `json:"metrics"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%s: %v: %q", dir, err, line)
		}
		r.steps = max(r.steps, rec.Step)
		for k, v := range rec.Metrics {
			r.final[k] = v
		}
	}
	m, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(m, &r.manifest); err != nil {
		t.Fatal(err)
	}
	c, _ := os.ReadFile(filepath.Join(dir, "config.yaml"))
	r.config = string(c)
	return r
}

// TestRunsJSON: runs list and runs show print one JSON document on
// stdout with --json, holding what the run folders hold and what the
// text says (its status, steps and losses); a damaged and an unreadable
// run are in the list with their problem, as the table has them, and the
// warnings stay on stderr. runs show of a damaged or missing run fails
// as without --json: exit 1, the message on stderr, nothing on stdout.
func TestRunsJSON(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"a", "damaged", "unreadable"} {
		tracktest.FakeRun(t, root, name, 1e-4, 30, 20, true)
	}
	tracktest.FakeRun(t, root, "running", 3e-4, 12, 10, false)
	metrics := tracktest.DamageMetrics(t, filepath.Join(root, "damaged"))
	if err := os.WriteFile(filepath.Join(root, "unreadable", "summary.json"), []byte("{\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	code, text, textErr := streamsOf(t, "runs", "list", "--output", root)
	if code != 0 {
		t.Fatalf("runs list: exit %d\n%s%s", code, text, textErr)
	}
	code, stdout, stderr := streamsOf(t, "runs", "list", "--output", root, "--json")
	if code != 0 {
		t.Fatalf("runs list --json: exit %d\n%s%s", code, stdout, stderr)
	}
	if stderr != textErr || !strings.Contains(stderr, "warning: run "+filepath.Join(root, "damaged")+" is damaged") {
		t.Errorf("runs list --json warns %q, want the text's warnings %q", stderr, textErr)
	}
	var list jsonRunsList
	decodeOne(t, stdout, &list)
	if list.Root != root || len(list.Runs) != 4 {
		t.Fatalf("runs list --json: root %q, %d runs, want %q and 4:\n%s", list.Root, len(list.Runs), root, stdout)
	}
	rows := map[string][]string{} // the table's rows by name
	for l := range strings.Lines(text) {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	for _, r := range list.Runs {
		row := rows[r.Name]
		if r.Folder != filepath.Join(root, r.Name) || row == nil {
			t.Errorf("run %q: folder %q, row %q", r.Name, r.Folder, row)
			continue
		}
		// The table clips the status with its reason.
		status := []rune(track.RunSummary{Status: r.Status, Reason: r.Reason}.StatusText())
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(r.Name) + ` +` + regexp.QuoteMeta(string(status[:min(len(status), 40)]))).MatchString(text) {
			t.Errorf("run %s: status %q, reason %q, not the table's:\n%s", r.Name, r.Status, r.Reason, text)
		}
		switch r.Name {
		case "unreadable":
			if r.Status != track.StatusUnreadable || !strings.Contains(r.Reason, "summary.json") || r.Steps != nil || r.FinalMetrics != nil || r.KeptVersions != nil {
				t.Errorf("the unreadable run: %+v, want status unreadable naming summary.json, steps and metrics null", r)
			}
			continue
		case "damaged":
			if r.Status != statusDamaged || !strings.HasPrefix(r.Reason, "metrics.jsonl:3: ") {
				t.Errorf("the damaged run: status %q reason %q, want damaged at metrics.jsonl:3", r.Status, r.Reason)
			}
			// Its metrics.jsonl does not read: summary.json's are the
			// ones the table shows.
			if r.FinalMetrics == nil || track.MetricText(*r.FinalMetrics, "val/loss") != row[len(row)-2] {
				t.Errorf("the damaged run's val/loss %v, the table's %s", r.FinalMetrics, row[len(row)-2])
			}
			continue
		}
		want := readRunFolder(t, r.Folder)
		if r.Steps == nil || *r.Steps != want.steps || r.FinalMetrics == nil || !maps2Equal(*r.FinalMetrics, want.final) {
			t.Errorf("run %s: steps %v, final %v; metrics.jsonl: %d, %v", r.Name, r.Steps, r.FinalMetrics, want.steps, want.final)
			continue
		}
		if r.KeptVersions == nil || *r.KeptVersions != want.manifest.Kept() || r.Started == nil || !r.Started.Equal(want.manifest.Created) {
			t.Errorf("run %s: kept_versions %v, started %v; manifest: %d, %v", r.Name, r.KeptVersions, r.Started, want.manifest.Kept(), want.manifest.Created)
		}
		if (r.Status == track.StatusRunning) != (r.Ended == nil) {
			t.Errorf("run %s: status %s, ended %v", r.Name, r.Status, r.Ended)
		}
		// STEPS, TRAIN LOSS and VAL LOSS are the fourth from last on.
		n := len(row)
		if row[n-4] != fmt.Sprint(*r.Steps) || row[n-3] != track.MetricText(*r.FinalMetrics, "train/loss") || row[n-2] != track.MetricText(*r.FinalMetrics, "val/loss") {
			t.Errorf("run %s: the table's row %q, the JSON's steps %d and losses %v", r.Name, row, *r.Steps, *r.FinalMetrics)
		}
	}

	code, text, _ = streamsOf(t, "runs", "show", "a", "--output", root)
	if code != 0 {
		t.Fatalf("runs show: exit %d\n%s", code, text)
	}
	code, stdout, stderr = streamsOf(t, "runs", "show", "a", "--output", root, "--json")
	if code != 0 || stderr != "" {
		t.Fatalf("runs show --json: exit %d, stderr %q\n%s", code, stderr, stdout)
	}
	var show jsonRunShow
	decodeOne(t, stdout, &show)
	want := readRunFolder(t, filepath.Join(root, "a"))
	if show.Name != "a" || show.Steps == nil || *show.Steps != want.steps || show.FinalMetrics == nil || !maps2Equal(*show.FinalMetrics, want.final) {
		t.Errorf("runs show --json: %+v, want run a with metrics.jsonl's %d steps and %v", show.jsonRun, want.steps, want.final)
	}
	if show.Config == nil || *show.Config != want.config || want.config == "" {
		t.Errorf("runs show --json: config %v, config.yaml %q", show.Config, want.config)
	}
	if len(show.Versions) != len(want.manifest.Versions) || len(show.Versions) == 0 {
		t.Fatalf("runs show --json: %d versions, the manifest %d", len(show.Versions), len(want.manifest.Versions))
	}
	for i, v := range show.Versions {
		m := want.manifest.Versions[i]
		if v.Kind != m.Kind || v.Path != m.Path || v.Step != m.Step || !slices.Equal(v.Files, m.Files) || !maps2Equal(v.Metrics, m.Metrics) || (v.Removed == nil) != m.Removed.IsZero() {
			t.Errorf("version %d: %+v, the manifest's %+v", i, v, m)
		}
		if !strings.Contains(text, fmt.Sprintf("%s  %s  step %d", v.Kind, v.Path, v.Step)) {
			t.Errorf("version %d (%s %s step %d) is not in the text:\n%s", i, v.Kind, v.Path, v.Step, text)
		}
	}
	if len(show.Adapters) != 0 { // FakeRun exports none; a trained run's are in TestEvalJSON
		t.Errorf("runs show --json: adapters %q of a run that exported none", show.Adapters)
	}
	for _, l := range []string{fmt.Sprintf("run      %s (%s)\n", show.Name, show.Status), fmt.Sprintf("steps    %d\n", *show.Steps), "folder   " + show.Folder + "\n"} {
		if !strings.Contains(text, l) {
			t.Errorf("runs show's text lacks %q, which --json says:\n%s", l, text)
		}
	}

	for _, c := range []struct{ run, want string }{
		{"damaged", "run " + filepath.Join(root, "damaged") + " is damaged: " + metrics + ":3: "},
		{"missing", filepath.Join(root, "missing") + " is not a run folder"},
	} {
		_, _, textErr := streamsOf(t, "runs", "show", c.run, "--output", root)
		code, stdout, stderr := streamsOf(t, "runs", "show", c.run, "--output", root, "--json")
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "ftune: ") || !strings.Contains(stderr, c.want) || stderr != textErr {
			t.Errorf("runs show %s --json: exit %d, stdout %q, stderr %q; want 1, nothing, and the text's error %q", c.run, code, stdout, stderr, textErr)
		}
	}
}

// maps2Equal says two metric sets hold the same names and values (NaN
// equal to NaN: a diverged loss is recorded as such).
func maps2Equal(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || x != y && !(math.IsNaN(x) && math.IsNaN(y)) {
			return false
		}
	}
	return true
}

// TestEnvJSON: env --json is one document holding what env's text says.
func TestEnvJSON(t *testing.T) {
	code, text, _ := streamsOf(t, "env")
	code2, stdout, stderr := streamsOf(t, "env", "--json")
	if code != 0 || code2 != 0 || stderr != "" {
		t.Fatalf("env: exit %d; env --json: exit %d, stderr %q", code, code2, stderr)
	}
	var e struct {
		CPU   string `json:"cpu"`
		Cores struct {
			Usable     int `json:"usable"`
			GOMAXPROCS int `json:"gomaxprocs"`
			Machine    int `json:"machine"`
		} `json:"cores"`
		Features []string `json:"features"`
		Kernels  struct {
			Current   string   `json:"current"`
			Available []string `json:"available"`
		} `json:"kernels"`
		CPUBF16 struct {
			Available bool   `json:"available"`
			ISA       string `json:"isa"`
		} `json:"cpu_bf16"`
		CUDA struct {
			Available bool   `json:"available"`
			Path      string `json:"path"`
			Reason    string `json:"reason"`
		} `json:"cuda"`
		Memory *struct {
			TotalBytes     uint64 `json:"total_bytes"`
			AvailableBytes uint64 `json:"available_bytes"`
			GoHeapLimit    string `json:"go_heap_limit"`
		} `json:"memory"`
		Go struct {
			Version    string `json:"version"`
			OS         string `json:"os"`
			Arch       string `json:"arch"`
			GOMAXPROCS int    `json:"gomaxprocs"`
		} `json:"go"`
	}
	decodeOne(t, stdout, &e)
	lines := map[string]string{} // env's text by its label
	for l := range strings.Lines(text) {
		k, v, _ := strings.Cut(l, ":")
		lines[k] = strings.TrimSpace(v)
	}
	cuda := e.CUDA.Path
	if !e.CUDA.Available {
		cuda = "unavailable (" + e.CUDA.Reason + ")"
	}
	for label, want := range map[string]string{
		"cpu":      e.CPU,
		"cores":    fmt.Sprintf("%d usable (GOMAXPROCS %d)", e.Cores.Usable, e.Cores.GOMAXPROCS),
		"features": strings.Join(e.Features, " "),
		"kernels":  fmt.Sprintf("%s (available: [%s])", e.Kernels.Current, strings.Join(e.Kernels.Available, " ")),
		"cuda":     cuda,
		"go":       fmt.Sprintf("%s %s/%s, GOMAXPROCS %d", e.Go.Version, e.Go.OS, e.Go.Arch, e.Go.GOMAXPROCS),
	} {
		if !strings.HasPrefix(lines[label], want) || want == "" {
			t.Errorf("env's %s line %q, the JSON's %q", label, lines[label], want)
		}
	}
	if bf := lines["cpu bf16"]; e.CPUBF16.Available == strings.HasPrefix(bf, "unavailable") || !strings.Contains(bf, e.CPUBF16.ISA) {
		t.Errorf("env's cpu bf16 line %q, the JSON's %+v", bf, e.CPUBF16)
	}
	if e.Memory != nil && (lines["go heap"] != "soft limit "+e.Memory.GoHeapLimit ||
		!strings.HasPrefix(lines["memory"], fmt.Sprintf("%.1f GiB", float64(e.Memory.TotalBytes)/(1<<30)))) {
		t.Errorf("env's memory %q and go heap %q, the JSON's %+v", lines["memory"], lines["go heap"], *e.Memory)
	}
}

// TestEvalJSON: an adapter a run trained, evaluated with the run's
// settings: eval prints its scores on stdout and its notes on stderr
// (all went to stdout); with --json, stdout is one document holding the
// metrics by the names the run logged them (eval_after/NAME in its
// metrics.jsonl), with the values the run measured and the text prints,
// the adapter, data, split and questions; runs show --json of the run
// names the adapter.
func TestEvalJSON(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	work := t.TempDir()
	sumsFile(t, work, "sums", 0, 40)
	adapter := sumsRun(t, work, "sums.jsonl")
	runDir := filepath.Dir(adapter)

	code, text, textErr := streamsOf(t, "eval", "--adapter", adapter, "--questions", "0")
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s%s", code, text, textErr)
	}
	score := regexp.MustCompile(`(?m)^validation: loss (\S+)  perplexity (\S+)  token accuracy (\S+)$`).FindStringSubmatch(text)
	if score == nil || strings.Contains(text, "note:") || strings.Contains(text, "warning:") {
		t.Errorf("eval's stdout is not its scores alone:\n%s", text)
	}
	if !strings.Contains(textErr, "note: the settings of the run that trained the adapter: ") || strings.Contains(textErr, "validation: loss") {
		t.Errorf("eval's stderr is not its notes:\n%s", textErr)
	}

	code, stdout, stderr := streamsOf(t, "runs", "show", runDir, "--json")
	var show jsonRunShow
	decodeOne(t, stdout, &show)
	if code != 0 || !slices.Equal(show.Adapters, []string{adapter}) {
		t.Errorf("runs show --json of a trained run: exit %d, adapters %q, want [%s]\n%s", code, show.Adapters, adapter, stderr)
	}
	if _, err := os.Stat(filepath.Join(adapter, "adapter_config.json")); err != nil {
		t.Errorf("the adapter runs show --json names: %v", err)
	}

	code, stdout, stderr = streamsOf(t, "eval", "--adapter", adapter, "--questions", "0", "--json")
	if code != 0 {
		t.Fatalf("eval --json: exit %d\n%s%s", code, stdout, stderr)
	}
	var ev struct {
		Adapter   *string `json:"adapter"`
		Objective string  `json:"objective"`
		Data      struct {
			Files    []string `json:"files"`
			Root     string   `json:"root"`
			Subjects []string `json:"subjects"`
			ValSplit float64  `json:"val_split"`
			Seed     uint64   `json:"seed"`
		} `json:"data"`
		Split     string       `json:"split"`
		Metrics   track.Values `json:"metrics"`
		Questions *struct {
			Scored     int            `json:"scored"`
			BySubject  map[string]int `json:"by_subject"`
			PerSubject int            `json:"per_subject"`
		} `json:"questions"`
	}
	decodeOne(t, stdout, &ev)
	if ev.Adapter == nil || *ev.Adapter != adapter || ev.Split != splitHeldOut || ev.Objective != "sft" {
		t.Errorf("eval --json: adapter %v, split %q, objective %q", ev.Adapter, ev.Split, ev.Objective)
	}
	if !strings.Contains(stderr, "validation: loss") || !strings.Contains(stderr, "note: the settings of the run") {
		t.Errorf("eval --json's stderr lacks the scores' text or the notes:\n%s", stderr)
	}
	// Questions: none asked (--questions 0), as the text says nothing.
	if q := ev.Questions; q == nil || q.Scored != 0 || len(q.BySubject) != 0 || q.PerSubject != 0 || strings.Contains(text, "questions scored") {
		t.Errorf("eval --json: questions %+v", ev.Questions)
	}
	run, err := config.Load(filepath.Join(runDir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Data.Files) != len(run.Data.Files) || filepath.Base(ev.Data.Files[0]) != filepath.Base(run.Data.Files[0]) ||
		ev.Data.ValSplit != run.Data.ValSplit || ev.Data.Seed != run.Data.Seed || ev.Data.Root != run.Data.Root {
		t.Errorf("eval --json: data %+v, the run's %+v", ev.Data, run.Data)
	}
	logged := map[string]float64{}
	for k, v := range readRunFolder(t, runDir).final {
		if name, ok := strings.CutPrefix(k, track.EvalAfterPrefix); ok {
			logged[name] = v
		}
	}
	if len(logged) == 0 || !slices.Equal(slices.Sorted(maps.Keys(ev.Metrics)), slices.Sorted(maps.Keys(logged))) {
		t.Fatalf("eval --json metrics %v, the run logged %v after training", ev.Metrics, logged)
	}
	for k, v := range ev.Metrics {
		// The same adapter on the same rows: the run's numbers, to
		// float32 sums' rounding.
		if math.Abs(v-logged[k]) > 1e-4*math.Max(1, math.Abs(logged[k])) {
			t.Errorf("eval --json %s = %v, the run logged %v", k, v, logged[k])
		}
	}
	if score != nil {
		for i, k := range []string{"val/loss", "val/perplexity", "val/token_accuracy"} {
			if got := fmt.Sprintf([]string{"%.4f", "%.2f", "%.3f"}[i], ev.Metrics[k]); got != score[i+1] {
				t.Errorf("eval --json %s %s, the text's %s", k, got, score[i+1])
			}
		}
	}
}

// TestExportImatrixStreams: export and imatrix print the file they
// wrote on stdout, one line, and their notes (what was replaced or kept,
// progress) on stderr; they printed the notes on stdout.
func TestExportImatrixStreams(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	model := filepath.Join(dir, "m.gguf")
	for i := range 2 { // the second replaces the first, and says so
		code, stdout, stderr := streamsOf(t, "export", "--format", "gguf", "--quant", "f16", "--out", model)
		if code != 0 || !regexp.MustCompile(`^wrote `+regexp.QuoteMeta(model)+` \(gguf of [^\n]+\)\n$`).MatchString(stdout) {
			t.Errorf("export %d: exit %d, stdout %q, want the file written alone\n%s", i, code, stdout, stderr)
		}
		if i == 1 && !strings.Contains(stderr, "note: replaced "+model) {
			t.Errorf("export over its own file: stderr %q lacks the note", stderr)
		}
	}

	text := filepath.Join(dir, "calibration.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("Question: Which element has atomic number 6?\nAnswer: carbon.\n\n", 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(dir, "mine.gguf")
	if err := os.WriteFile(mine, []byte("my notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := streamsOf(t, "imatrix", "--text", text, "--ctx", "64", "--chunks", "1", "--out", mine, "--force")
	if code != 0 || !regexp.MustCompile(`^wrote `+regexp.QuoteMeta(mine)+`: \d+ weights, 1 chunks of 64 tokens [^\n]+\n$`).MatchString(stdout) {
		t.Errorf("imatrix: exit %d, stdout %q, want the file written alone\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "note: --force: the file that was at "+mine) || !strings.Contains(stderr, "imatrix: 1/1 chunks") {
		t.Errorf("imatrix's stderr lacks the --force note or the progress:\n%s", stderr)
	}
}
