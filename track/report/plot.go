// Package report draws a run folder's charts and writes its report.html.
// It holds everything that links the plotting and PDF libraries, apart
// from track (which only records runs), so that a program embedding the
// training does not link them.
package report

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

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
// name: ending in .png or .svg writes that file only; without an
// extension out.png and out.svg are both written; any other extension is
// ErrPlotFormat. A file already there that ftune did not write is
// refused (WriteLossPlot can move it aside).
func PlotLoss(dirs []string, out string) error {
	_, err := WriteLossPlot(dirs, out, false)
	return err
}

// ErrNotOurs is returned for a file in the way of a plot or a report that
// ftune did not write: it is the user's, and is not replaced.
var ErrNotOurs = errors.New("the file there was not written by ftune")

// ErrPlotFormat is returned for a plot name whose extension is neither
// .png nor .svg (x.jpg wrote x.jpg.png and x.jpg.svg).
var ErrPlotFormat = errors.New("a plot is written as .png or .svg")

// PlotFile is a file WriteLossPlot wrote.
type PlotFile struct {
	Path string
	// Kept is where the file that was at Path, not written by ftune, was
	// moved with force ("" when there was none).
	Kept string
}

// LossPlot is what WriteLossPlot did.
type LossPlot struct {
	Files []PlotFile
	// NoLoss lists the runs (as their folders were given) that logged no
	// finite train/loss or val/loss: they are not drawn, and the legend
	// does not name them.
	NoLoss []string
}

// PlotPaths is the files a loss plot named out is written to: out itself
// when it ends in .png or .svg (in any case), out.png and out.svg when it
// has no extension. Any other extension is ErrPlotFormat: it was taken
// for part of the name, and x.jpg wrote x.jpg.png and x.jpg.svg.
// The error names out first, for a caller to say where it came from.
func PlotPaths(out string) ([]string, error) {
	if out == "" || strings.HasSuffix(out, string(filepath.Separator)) || strings.HasSuffix(out, "/") {
		return nil, fmt.Errorf("%q names no file (for example %s)", out, filepath.Join(out, "loss"))
	}
	switch ext := filepath.Ext(out); strings.ToLower(ext) {
	case ".png", ".svg":
		return []string{out}, nil
	case "":
		return []string{out + ".png", out + ".svg"}, nil
	default:
		return nil, fmt.Errorf("%s: %w, not %s: end the name in .png or .svg for that file, or give no extension for both", out, ErrPlotFormat, ext)
	}
}

// WriteLossPlot is PlotLoss returning the files it wrote and the runs it
// had no loss to draw for (no run with a loss is ErrNoData). Each file is
// written atomically and carries a mark saying ftune wrote it (a PNG text
// chunk, an SVG comment): a later plot replaces it, but any other file at
// a target is the user's and is refused, before anything is written,
// unless force: it is then moved aside, kept beside the target under a
// new name (PlotFile.Kept), as `ftune export --force` does.
func WriteLossPlot(dirs []string, out string, force bool) (LossPlot, error) {
	var res LossPlot
	paths, err := PlotPaths(out)
	if err != nil {
		return res, fmt.Errorf("plot %w", err)
	}
	var curves []curve
	for _, dir := range dirs {
		c, err := loadCurve(dir, []string{"train/loss", "val/loss"})
		if err != nil {
			return res, err
		}
		if !c.hasPoints() {
			res.NoLoss = append(res.NoLoss, dir)
		}
		curves = append(curves, c)
	}
	p, err := chart("Loss", "loss", []string{"train", "val"}, curves)
	if errors.Is(err, ErrNoData) {
		return res, fmt.Errorf("plot %s: %w: no run logged a finite train/loss or val/loss", strings.Join(dirs, ", "), err)
	}
	if err != nil {
		return res, fmt.Errorf("plot %s: %w", strings.Join(dirs, ", "), err)
	}
	// Everything is rendered and every target checked first: a refused
	// .svg must not leave a new .png beside the user's files.
	type target struct {
		path  string
		data  []byte
		aside bool // a file of the user's is there (force)
	}
	var targets []target
	for _, path := range paths {
		f := strings.ToLower(filepath.Ext(path))[1:]
		data, err := render(p, f)
		if err != nil {
			return res, err
		}
		aside, err := checkTarget("plot", path, force, plotWrittenByFtune)
		if err != nil {
			return res, err
		}
		targets = append(targets, target{path, markPlot(f, data), aside})
	}
	for _, t := range targets {
		pf, err := replaceFile(t.path, t.data, t.aside)
		if err != nil {
			return res, err
		}
		res.Files = append(res.Files, pf)
	}
	return res, nil
}

// replaceFile writes data to path atomically; aside moves the file there
// (the user's) aside first, and back if the write fails.
func replaceFile(path string, data []byte, aside bool) (PlotFile, error) {
	pf := PlotFile{Path: path}
	if aside {
		var err error
		if pf.Kept, err = moveAside(path); err != nil {
			return PlotFile{}, err
		}
	}
	if err := fsutil.WriteFileAtomic(path, data, 0o644); err != nil {
		if pf.Kept != "" {
			if rerr := os.Rename(pf.Kept, path); rerr != nil {
				return PlotFile{}, fmt.Errorf("%w (and the previous file stays at %s: %v)", err, pf.Kept, rerr)
			}
		}
		return PlotFile{}, err
	}
	return pf, nil
}

// plotLoss is PlotLoss, returning the paths written.
func plotLoss(dirs []string, out string) ([]string, error) {
	res, err := WriteLossPlot(dirs, out, false)
	var paths []string
	for _, f := range res.Files {
		paths = append(paths, f.Path)
	}
	return paths, err
}

// checkTarget says whether path may be written: nothing there, or a file
// ftune wrote, as ours says (aside false); a file of the user's with
// force (aside true); anything else is an error naming it. what names the
// file in errors ("plot", "report").
func checkTarget(what, path string, force bool, ours func(path string) bool) (aside bool, err error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%s: %w", what, err)
	case fi.IsDir() && what == "plot":
		return false, fmt.Errorf("plot: %s is a folder; name the plot's file (for example %s)", path, filepath.Join(path, "loss"))
	case fi.IsDir():
		return false, fmt.Errorf("%s: %s is a folder", what, path)
	case fi.Mode().IsRegular() && ours(path):
		return false, nil
	case !force:
		other := "choose another name"
		if what != "plot" {
			other = "rename it"
		}
		return false, fmt.Errorf("%s: %s: %w; refusing to replace it: %s, or pass --force to move it aside (kept, not deleted)", what, path, ErrNotOurs, other)
	}
	return true, nil
}

// moveAside renames the user's file at path to a free name beside it,
// path.replaced-<time>[-N] (a rename onto an existing name would replace
// that file), and returns the name.
func moveAside(path string) (string, error) {
	base := fmt.Sprintf("%s.replaced-%s", path, time.Now().Format("20060102-150405"))
	kept := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(kept); errors.Is(err, fs.ErrNotExist) {
			break
		}
		kept = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, kept); err != nil {
		return "", fmt.Errorf("move %s aside: %w", path, err)
	}
	return kept, nil
}

// The marks a plot carries to say ftune wrote it: an SVG comment after
// the XML declaration, a PNG tEXt chunk right after the header chunk.
// Both lie in the file's first bytes, which plotWrittenByFtune reads.
const (
	svgMark     = "<!-- ftune: loss plot -->\n"
	pngKeyword  = "Software"
	pngMarkText = "ftune: loss plot"
	pngHeadLen  = 8 + 4 + 4 + 13 + 4 // signature, IHDR length, type, data, CRC
	markWindow  = 512
)

// markPlot adds ftune's mark to a rendered plot.
func markPlot(format string, data []byte) []byte {
	switch format {
	case "svg":
		at := 0
		if bytes.HasPrefix(data, []byte("<?xml")) {
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				at = i + 1
			}
		}
		return slices.Concat(data[:at], []byte(svgMark), data[at:])
	case "png":
		if len(data) < pngHeadLen || !bytes.HasPrefix(data, []byte(pngSignature)) {
			return data
		}
		return slices.Concat(data[:pngHeadLen], pngTextChunk(), data[pngHeadLen:])
	}
	return data
}

const pngSignature = "\x89PNG\r\n\x1a\n"

// pngTextChunk is the tEXt chunk of the mark: length, type, keyword NUL
// text, CRC of type and data.
func pngTextChunk() []byte {
	body := []byte("tEXt" + pngKeyword + "\x00" + pngMarkText)
	c := binary.BigEndian.AppendUint32(nil, uint32(len(body)-4))
	c = append(c, body...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(body))
}

// readHead is the first markWindow bytes of f (fewer in a shorter file),
// where ftune's marks are.
func readHead(f *os.File) []byte {
	head := make([]byte, markWindow)
	n, _ := io.ReadFull(f, head)
	return head[:n]
}

// plotWrittenByFtune says whether the file at path carries ftune's mark.
func plotWrittenByFtune(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := readHead(f)
	if bytes.HasPrefix(head, []byte(pngSignature)) {
		return len(head) > pngHeadLen && bytes.HasPrefix(head[pngHeadLen:], pngTextChunk())
	}
	return bytes.Contains(head, []byte(svgMark))
}

// hasPoints says whether any of c's series has a point chart draws.
func (c curve) hasPoints() bool {
	for _, s := range c.series {
		if len(finitePoints(s)) > 0 {
			return true
		}
	}
	return false
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
	// Labels that say the tick's value (gonum's round narrow ranges to one
	// digit), on whole steps.
	p.X.Tick.Marker, p.Y.Tick.Marker = stepTicks{}, valueTicks{}
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
