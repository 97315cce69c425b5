package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/track"
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

// fakeRun writes a run whose loss decays as 3·exp(-step/tau)+0.5 with
// validation every 10 steps; lr differs in the config.
func fakeRun(t *testing.T, root, name string, lr float64, tau float64, steps int, close bool) string {
	t.Helper()
	cfg := fmt.Sprintf("model:\n  path: tiny-base\ntraining:\n  optimizer:\n    lr: %g\n  batch_size: 8\n  seed: 42\n", lr)
	r, err := track.NewRun(root, name, []byte(cfg), track.WithClock(clock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= steps; s++ {
		loss := 3*math.Exp(-float64(s)/tau) + 0.5 + 0.05*math.Sin(float64(s))
		if err := r.Log(s, map[string]float64{"train/loss": loss, "train/lr": lr * math.Min(1, float64(s)/5)}); err != nil {
			t.Fatal(err)
		}
		if s%10 == 0 {
			if err := r.Log(s, map[string]float64{"val/loss": loss + 0.1, "val/token_accuracy": 1 - loss/4}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.LogText(steps, "samples/0", "Q: <b>2+2</b>?\nA: 4 <script>alert(1)</script>"); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(r.Dir, "checkpoints", "last")
	if err := os.MkdirAll(ck, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ck, "adapter_model.safetensors"), []byte(name), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.AddVersion("checkpoint", ck, nil, nil); err != nil {
		t.Fatal(err)
	}
	if close {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return r.Dir
}

func TestPlotLoss(t *testing.T) {
	root := t.TempDir()
	a := fakeRun(t, root, "a-lr1e-4", 1e-4, 30, 80, true)
	b := fakeRun(t, root, "b-lr3e-4", 3e-4, 12, 80, true)
	out := filepath.Join(root, "loss")
	written, err := plotLoss([]string{a, b}, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 2 || written[0] != out+".png" || written[1] != out+".svg" {
		t.Fatalf("wrote %v", written)
	}
	f, err := os.Open(out + ".png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// 8 x 4.5 inches at gonum's default 96 dpi.
	if b := img.Bounds(); b.Dx() != 768 || b.Dy() != 432 {
		t.Errorf("png is %v", b)
	}
	// Not blank: some pixels are coloured (the curves), not only grey/white.
	coloured := 0
	for y := 0; y < 432; y += 2 {
		for x := 0; x < 768; x += 2 {
			r, g, bb, _ := img.At(x, y).RGBA()
			if max(r, g, bb)-min(r, g, bb) > 0x4000 {
				coloured++
			}
		}
	}
	if coloured < 200 {
		t.Errorf("only %d coloured pixels: curves missing?", coloured)
	}
	svg, err := os.ReadFile(out + ".svg")
	if err != nil {
		t.Fatal(err)
	}
	if err := wellFormed(svg); err != nil {
		t.Errorf("svg is not well-formed XML: %v", err)
	}
	for _, want := range []string{"a-lr1e-4 train", "b-lr3e-4 val", "step", "Loss"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("svg lacks %q", want)
		}
	}

	// One format by extension.
	if w, err := plotLoss([]string{a}, filepath.Join(root, "only.svg")); err != nil || len(w) != 1 || !strings.HasSuffix(w[0], "only.svg") {
		t.Errorf("svg only: %v %v", w, err)
	}
	// A run with no loss at all.
	empty, err := track.NewRun(root, "empty", nil, track.WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	empty.Close()
	if err := PlotLoss([]string{empty.Dir}, filepath.Join(root, "x")); !errors.Is(err, ErrNoData) {
		t.Errorf("empty run: %v, want ErrNoData", err)
	}
}

func wellFormed(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func TestHTMLReport(t *testing.T) {
	root := t.TempDir()
	dir := fakeRun(t, root, "report-run", 2e-4, 20, 50, true)
	if err := HTMLReport(dir); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, track.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	for _, want := range []string{
		"<title>ftune run report-run</title>",
		`<svg class="chart"`, // inline charts
		"Learning rate",
		"val/token_accuracy",
		"lr: 0.0002",                            // the config
		"&lt;script&gt;alert(1)&lt;/script&gt;", // samples escaped
		"checkpoints/last",
		"finished",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(s, "<script>") || strings.Contains(s, "<?xml") {
		t.Error("report holds a script tag or an XML prolog")
	}
	if n := strings.Count(s, "<svg"); n != 3 {
		t.Errorf("%d charts, want 3 (loss, lr, accuracy)", n)
	}
	if err := HTMLReport(filepath.Join(root, "nope")); err == nil {
		t.Error("report of a missing run must fail")
	}
}
