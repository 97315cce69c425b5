// Package report draws a run folder's charts and writes its report.html.
// It holds everything that links the plotting and PDF libraries, apart
// from track (which only records runs), so that a program embedding the
// training does not link them.
package report

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/track"
)

// Plot size: 16:9, readable when a report shows it at page width.
const plotW, plotH = 8 * vg.Inch, 4.5 * vg.Inch

// ErrNoData is returned when there is nothing to plot.
var ErrNoData = errors.New("no data to plot")

// curve is one run's series for one chart.
type curve struct {
	name   string
	series [][]track.Point // one per metric, in the chart's metric order
}

// PlotLoss overlays the loss curves of runs: train/loss solid, val/loss
// dashed with a dot per validation, one colour per run. out is a file
// name: ending in .png or .svg writes that format; otherwise out.png and
// out.svg are both written.
func PlotLoss(dirs []string, out string) error {
	_, err := plotLoss(dirs, out)
	return err
}

// plotLoss is PlotLoss, returning the files written.
func plotLoss(dirs []string, out string) ([]string, error) {
	var curves []curve
	for _, dir := range dirs {
		c, err := loadCurve(dir, []string{"train/loss", "val/loss"})
		if err != nil {
			return nil, err
		}
		curves = append(curves, c)
	}
	p, err := chart("Loss", "loss", []string{"train", "val"}, curves)
	if err != nil {
		return nil, fmt.Errorf("plot %s: %w", strings.Join(dirs, ", "), err)
	}
	var formats []string
	switch ext := strings.ToLower(filepath.Ext(out)); ext {
	case ".png", ".svg":
		formats, out = []string{ext[1:]}, strings.TrimSuffix(out, filepath.Ext(out))
	default:
		formats = []string{"png", "svg"}
	}
	var written []string
	for _, f := range formats {
		data, err := render(p, f)
		if err != nil {
			return written, err
		}
		path := out + "." + f
		if err := fsutil.WriteFileAtomic(path, data, 0o644); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

func loadCurve(dir string, metrics []string) (curve, error) {
	recs, err := track.ReadMetrics(filepath.Join(dir, track.MetricsFile))
	if err != nil {
		return curve{}, err
	}
	c := curve{name: filepath.Base(filepath.Clean(dir))}
	for _, m := range metrics {
		c.series = append(c.series, track.Series(recs, m))
	}
	return c, nil
}

// chart draws each curve's series; labels name the series (train, val)
// and the first is solid, the others dashed with dots.
func chart(title, ylabel string, labels []string, curves []curve) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.X.Min = 0 // steps start at 0; a shared origin makes runs comparable
	drawn := 0
	for ci, c := range curves {
		col := plotutil.Color(ci)
		for si, s := range c.series {
			xys := finitePoints(s)
			if len(xys) == 0 {
				continue
			}
			drawn++
			name := c.name
			if len(labels) > 1 {
				name += " " + labels[si]
			}
			l, err := plotter.NewLine(xys)
			if err != nil {
				return nil, err
			}
			l.Color, l.Width = col, vg.Points(1.5)
			if si > 0 {
				l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
				sc, err := plotter.NewScatter(xys)
				if err != nil {
					return nil, err
				}
				sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
				p.Add(l, sc)
				p.Legend.Add(name, l, sc)
				continue
			}
			if len(xys) == 1 {
				// A line through one point draws nothing: mark the point.
				sc, err := plotter.NewScatter(xys)
				if err != nil {
					return nil, err
				}
				sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(3), Shape: draw.CircleGlyph{}}
				p.Add(l, sc)
				p.Legend.Add(name, l, sc)
				continue
			}
			p.Add(l)
			p.Legend.Add(name, l)
		}
	}
	if drawn == 0 {
		return nil, ErrNoData
	}
	// One point at step 0 (or one value) leaves an empty axis range.
	p.X.Max = max(p.X.Max, p.X.Min+1)
	if p.Y.Max == p.Y.Min {
		pad := max(math.Abs(p.Y.Max)*0.1, 1e-3)
		p.Y.Min, p.Y.Max = p.Y.Min-pad, p.Y.Max+pad
	}
	if drawn == 1 {
		// One line needs no key, and the key would sit on the curve's end.
		p.Legend = plot.NewLegend()
	}
	return p, nil
}

// finitePoints drops NaN and ±Inf, which a skipped (diverged) step can
// log and which plotter rejects.
func finitePoints(s []track.Point) plotter.XYs {
	out := make(plotter.XYs, 0, len(s))
	for _, p := range s {
		if !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
			out = append(out, plotter.XY{X: float64(p.Step), Y: p.Value})
		}
	}
	return out
}

func render(p *plot.Plot, format string) ([]byte, error) {
	wt, err := p.WriterTo(plotW, plotH, format)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("render %s: %w", format, err)
	}
	return buf.Bytes(), nil
}

// writeFile is os.WriteFile made atomic (a report being rewritten is
// never seen half-written).
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, data, 0o644)
}
