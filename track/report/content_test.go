package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/track"
)

// evalRun is a closed run of two subjects that logged the evaluation
// before and after training, a few samples and an adapter export.
func evalRun(t *testing.T) (dir, weightsSum string) {
	t.Helper()
	r, err := track.NewRun(t.TempDir(), "eval", []byte("training:\n  lr: 0.001\n"), track.WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]float64{"eval_before/val/loss": 3.5, "eval_before/val/chemistry/loss": 3.25, "eval_before/val/geography/loss": 3.75,
		"eval_before/exact_match/all": 0, "eval_before/exact_match/chemistry": 0, "eval_before/exact_match/geography": 0,
		"eval_before/multiple_choice/all": 0.25, "eval_before/multiple_choice/chemistry": 0.5, "eval_before/multiple_choice/geography": 0}
	if err := r.Log(0, before); err != nil {
		t.Fatal(err)
	}
	if err := r.Log(1, map[string]float64{"train/loss": 3.4, "train/lr": 1e-3}); err != nil {
		t.Fatal(err)
	}
	after := map[string]float64{}
	for k, v := range before {
		after["eval_after/"+strings.TrimPrefix(k, "eval_before/")] = v / 2
	}
	if err := r.Log(1, after); err != nil {
		t.Fatal(err)
	}
	// Many chemistry samples, then one geography sample at the same step.
	for i := 0; i < 30; i++ {
		if err := r.LogText(1, "samples/chemistry", "Q: chem?"); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.LogText(1, "samples/geography", "Q: capital of France?"); err != nil {
		t.Fatal(err)
	}
	ad := filepath.Join(r.Dir, "adapter")
	weights := "weights of the adapter"
	for name, content := range map[string]string{"adapter_config.json": `{"r": 8}`, "adapter_model.safetensors": weights} {
		if err := os.MkdirAll(ad, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ad, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.AddVersion("export/peft", ad, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(weights))
	return r.Dir, hex.EncodeToString(h[:])
}

// TestReportLeadsWithBeforeAfter: the report opens with the evaluation per
// subject before and after training, keeps those keys out of the flat
// list, shows every subject's samples, and hashes the adapter weights.
func TestReportLeadsWithBeforeAfter(t *testing.T) {
	dir, weightsSum := evalRun(t)
	if err := HTMLReport(dir); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, track.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	table := strings.Index(s, "Before and after training")
	final := strings.Index(s, "Final metrics")
	if table < 0 || final < 0 || table > final {
		t.Fatalf("the before/after table does not lead (at %d, final metrics at %d)", table, final)
	}
	for _, want := range []string{"<h1>Run eval</h1>", "finished", "validation loss", "exact match", "multiple choice",
		"<td>chemistry</td><td class=\"num\">3.25</td><td class=\"num\">1.625</td>", "<td>all</td>",
		"samples/geography", weightsSum[:12], "lr: 0.001"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(s, "<td>eval_before/") || strings.Contains(s, "No metrics logged") {
		t.Error("evaluation keys listed flat, or no metrics")
	}
}

// TestRunsShowPrintsConfigAndTable: `ftune runs show` prints the
// configuration its help promises, the before/after table and the hash of
// the adapter weights.
func TestRunsShowPrintsConfigAndTable(t *testing.T) {
	dir, weightsSum := evalRun(t)
	d, err := track.Show(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := d.String()
	for _, want := range []string{"configuration (config.yaml)", "lr: 0.001", "before → after", "chemistry", "3.25 → 1.625", weightsSum[:12]} {
		if !strings.Contains(s, want) {
			t.Errorf("runs show lacks %q:\n%s", want, s)
		}
	}
}

// TestChartOfOnePoint: a series of one point is drawn (a marker), not an
// empty frame, also at step 0.
func TestChartOfOnePoint(t *testing.T) {
	for _, step := range []int{0, 5} {
		c := curve{name: "one", series: [][]track.Point{{{Step: step, Value: 2.5}}}}
		p, err := chart("Loss", "loss", []string{"train"}, []curve{c})
		if err != nil {
			t.Fatal(err)
		}
		data, err := render(p, "png")
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		coloured := 0
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bb, _ := img.At(x, y).RGBA()
				if max(r, g, bb)-min(r, g, bb) > 0x4000 {
					coloured++
				}
			}
		}
		if coloured < 10 {
			t.Errorf("step %d: %d coloured pixels: the point is not drawn", step, coloured)
		}
	}
}
