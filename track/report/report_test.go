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
