package report

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ftune/ftune/track"
)

// samplesPerTag caps the generation samples shown per tag (one tag per
// subject): the latest ones.
const samplesPerTag = 4

// HTMLReport writes dir/report.html: one self-contained page (no scripts,
// no external files) with the run's status and machine, the evaluation
// before and after training per subject, loss and learning-rate charts as
// inline SVG, versions, generation samples of every subject, the other
// final metrics, and the resolved config. Write it after the run closed:
// it reads summary.json.
func HTMLReport(dir string) error {
	d, err := track.Show(dir)
	if err != nil {
		return err
	}
	page := reportPage{Details: d, Generated: time.Now().Format(time.DateTime), Eval: track.BeforeAfter(d.Final)}
	if d.Env != nil {
		page.Machine = d.Env.Summary()
	}
	if !d.Ended.IsZero() && !d.Started.IsZero() {
		page.Took = d.Ended.Sub(d.Started).Round(time.Second).String()
	}
	for _, k := range slices.Sorted(maps.Keys(d.Final)) {
		if strings.HasPrefix(k, track.EvalBeforePrefix) || strings.HasPrefix(k, track.EvalAfterPrefix) {
			continue // in the before/after table
		}
		page.Final = append(page.Final, track.Row{Key: k, Values: []string{track.FormatValue(d.Final[k])}})
	}
	for _, v := range d.Manifest.Versions {
		row := versionRow{Version: v}
		if f, ok := v.WeightsFile(); ok {
			row.Hash, row.HashOf = f.SHA256, f.Path
		}
		page.Versions = append(page.Versions, row)
	}
	name := filepath.Base(filepath.Clean(dir))
	charts := []struct {
		title, ylabel string
		metrics       []string
		labels        []string
	}{
		{"Loss", "loss", []string{"train/loss", "val/loss"}, []string{"train", "val"}},
		{"Learning rate", "lr", []string{"train/lr"}, []string{"lr"}},
		{"Validation token accuracy", "accuracy", []string{"val/token_accuracy"}, []string{"val"}},
	}
	for _, ch := range charts {
		c := curve{name: name}
		for _, m := range ch.metrics {
			c.series = append(c.series, track.Series(d.Records, m))
		}
		p, err := chart(ch.title, ch.ylabel, ch.labels, []curve{c})
		if errors.Is(err, ErrNoData) {
			continue
		}
		if err != nil {
			return err
		}
		svg, err := render(p, "svg")
		if err != nil {
			return err
		}
		page.Charts = append(page.Charts, inlineSVG(svg))
	}
	page.Samples = latestPerTag(d.Samples, samplesPerTag)

	var buf bytes.Buffer
	if err := reportTmpl.Execute(&buf, page); err != nil {
		return fmt.Errorf("report %s: %w", dir, err)
	}
	return writeFile(filepath.Join(dir, track.ReportFile), buf.Bytes())
}

// latestPerTag keeps the newest n samples of each tag, tags in order,
// newest first within a tag: every subject's answers are shown, not only
// the last subject's.
func latestPerTag(samples []track.Sample, n int) []track.Sample {
	byTag := map[string][]track.Sample{}
	for _, s := range samples {
		byTag[s.Tag] = append(byTag[s.Tag], s)
	}
	var out []track.Sample
	for _, tag := range slices.Sorted(maps.Keys(byTag)) {
		ss := byTag[tag]
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].Step > ss[j].Step })
		out = append(out, ss[:min(len(ss), n)]...)
	}
	return out
}

// inlineSVG drops the XML prolog so the SVG can sit inside HTML, and lets
// CSS size it (it keeps its viewBox).
func inlineSVG(svg []byte) template.HTML {
	s := string(svg)
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	s = strings.Replace(s, "<svg ", `<svg class="chart" `, 1)
	// The SVG is our own renderer's output, not user text: safe to inline.
	return template.HTML(s)
}

type reportPage struct {
	*track.Details
	Generated string
	Machine   string
	Took      string
	Eval      track.EvalTable
	Final     []track.Row
	Versions  []versionRow
	Charts    []template.HTML
	Samples   []track.Sample
}

// versionRow is a manifest version with the hash of its weights file.
type versionRow struct {
	track.Version
	Hash, HashOf string
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"metric": track.MetricText,
	"time":   func(t time.Time) string { return t.Local().Format(time.DateTime) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ftune run {{.Name}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; } td, th { padding: .25em .8em; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; white-space: pre-wrap; }
svg.chart { width: 100%; height: auto; display: block; margin: 1em 0; }
.meta { color: #666; }
</style>
</head>
<body>
<h1>Run {{.Name}}</h1>
<p class="meta">{{.StatusText}}{{if not .Started.IsZero}} · started {{time .Started}}{{end}}{{if .Took}} · took {{.Took}}{{end}} · {{.Steps}} steps</p>
{{if .Machine}}<p class="meta">{{.Machine}}</p>{{end}}

<h2>Before and after training</h2>
{{if .Eval.Rows}}<table>
<tr><th rowspan="2">subject</th>{{range .Eval.Metrics}}<th colspan="2">{{.}}</th>{{end}}</tr>
<tr>{{range .Eval.Metrics}}<th>before</th><th>after</th>{{end}}</tr>
{{range .Eval.Rows}}{{$r := .}}<tr><td>{{.Subject}}</td>{{range $i, $b := .Before}}<td class="num">{{$b}}</td><td class="num">{{index $r.After $i}}</td>{{end}}</tr>
{{end}}</table>{{else}}<p>No evaluation before and after training was logged.</p>{{end}}

{{range .Charts}}{{.}}
{{end}}
{{with .Versions}}<h2>Versions</h2>
<table>
<tr><th>kind</th><th>path</th><th>step</th><th>files</th><th>sha256 of the weights</th><th>val/loss</th></tr>
{{range .}}<tr><td>{{.Kind}}</td><td>{{.Path}}{{if not .Removed.IsZero}} <span class="meta">(removed)</span>{{end}}</td><td class="num">{{.Step}}</td><td class="num">{{len .Files}}</td><td><code title="{{.HashOf}}">{{short .Hash}}</code></td><td class="num">{{metric .Metrics "val/loss"}}</td></tr>
{{end}}</table>{{end}}

{{with .Samples}}<h2>Generation samples</h2>
{{range .}}<p><b>{{.Tag}}</b> <span class="meta">step {{.Step}}</span></p>
<pre>{{.Text}}</pre>
{{end}}{{end}}

<h2>Final metrics</h2>
{{if .Final}}<table>
{{range .Final}}<tr><td>{{.Key}}</td><td class="num">{{index .Values 0}}</td></tr>
{{end}}</table>{{else}}<p>No metrics logged.</p>{{end}}

<h2>Configuration</h2>
{{if .Config}}<pre>{{printf "%s" .Config}}</pre>{{else}}<p>No config.yaml.</p>{{end}}

<p class="meta">Generated by ftune on {{.Generated}}.</p>
</body>
</html>
`))
