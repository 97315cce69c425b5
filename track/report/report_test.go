package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/track/tracktest"
)

func TestPlotLoss(t *testing.T) {
	root := t.TempDir()
	a := tracktest.FakeRun(t, root, "a-lr1e-4", 1e-4, 30, 80, true)
	b := tracktest.FakeRun(t, root, "b-lr3e-4", 3e-4, 12, 80, true)
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
	dir := tracktest.FakeRun(t, root, "report-run", 2e-4, 20, 50, true)
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

// TestPlotLossKeepsUserFiles: files at the plot's names that ftune did not
// write are refused, naming one, before anything is written (they were
// replaced by plots); a plot ftune wrote is replaced; force moves the
// user's files aside and keeps them.
func TestPlotLossKeepsUserFiles(t *testing.T) {
	root := t.TempDir()
	a := tracktest.FakeRun(t, root, "a", 1e-4, 30, 20, true)
	work := t.TempDir()
	out := filepath.Join(work, "loss")
	mine := map[string]string{out + ".png": "my photo", out + ".svg": "my drawing"}
	for p, text := range mine {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := WriteLossPlot([]string{a}, out, false)
	files := res.Files
	if !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), out+".png") || len(files) != 0 {
		t.Fatalf("WriteLossPlot over user files: %v, %v; want ErrNotOurs naming %s.png", files, err, out)
	}
	for p, text := range mine {
		if b, _ := os.ReadFile(p); string(b) != text {
			t.Errorf("%s was overwritten: %q", p, b)
		}
	}
	// Only the .svg is the user's: the .png is not written either.
	if err := os.Remove(out + ".png"); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteLossPlot([]string{a}, out, false); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("WriteLossPlot over a user .svg: %v", err)
	}
	if _, err := os.Stat(out + ".png"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused plot left %s.png: %v", out, err)
	}

	// force: moved aside, kept, and the plots written.
	res, err = WriteLossPlot([]string{a}, out, true)
	files = res.Files
	if err != nil || len(files) != 2 || files[0].Kept != "" || files[1].Kept == "" {
		t.Fatalf("force: %+v, %v", files, err)
	}
	if b, _ := os.ReadFile(files[1].Kept); string(b) != "my drawing" {
		t.Errorf("the user's svg was not kept at %s: %q", files[1].Kept, b)
	}
	if svg, _ := os.ReadFile(out + ".svg"); wellFormed(svg) != nil || !bytes.Contains(svg, []byte("Loss")) {
		t.Errorf("forced svg is not the plot")
	}
	f, err := os.Open(out + ".png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("marked png does not decode: %v", err)
	}

	// Plots ftune wrote are replaced without force, and nothing is moved.
	res, err = WriteLossPlot([]string{a}, out, false)
	files = res.Files
	if err != nil || len(files) != 2 || files[0].Kept != "" || files[1].Kept != "" {
		t.Fatalf("replacing ftune's own plots: %+v, %v", files, err)
	}
	// A folder at a target is refused.
	if err := os.Mkdir(filepath.Join(work, "d.svg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteLossPlot([]string{a}, filepath.Join(work, "d.svg"), true); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Errorf("plot onto a folder: %v", err)
	}
}
