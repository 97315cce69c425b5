package config

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestConvertHugeCounts: a count too large for an int (num_epochs 1e20,
// batch_size 1e30) is refused naming the key and the value as written,
// not wrapped to a negative number that validation then reports.
func TestConvertHugeCounts(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"base_model: x/y\nnum_epochs: 1e20\n", `c.yaml:2: num_epochs: 1e+20: want a whole number of epochs, at most`},
		{"base_model: x/y\nbatch_size: 1e30\nmicro_batch_size: 1\n", `c.yaml:2: batch_size: 1e+30 rows a step: want at most`},
		{"base_model: x/y\nmax_steps: 10\nwarmup_ratio: 1e300\n", `c.yaml:3: training.schedule.warmup_ratio: must be in [0, 1)`},
		{"base_model: x/y\nmax_steps: 10\nwarmup_ratio: -0.5\n", `c.yaml:3: training.schedule.warmup_ratio: must be in [0, 1)`},
		// A key set twice in a dataset's entry is refused as at the top.
		{"base_model: x/y\ndatasets:\n  - path: a.jsonl\n    type: alpaca\n    path: b.jsonl\n", `c.yaml:2: datasets: entry 1 (line 3): path set twice (lines 3 and 5)`},
		{`{"base_model": "x/y", "datasets": [{"path": "a.jsonl", "type": "alpaca", "type": "completion"}]}`, `c.yaml:1: datasets: entry 1 (line 1): type set twice`},
		// A NUL byte in a path kept as written: the file would not load.
		{"base_model: \"a\\0b\"\n", `c.yaml:1: base_model: "a\x00b": a NUL byte at byte 1: no path holds one`},
		{"base_model: m\ndatasets:\n  - path: \"d\\0.jsonl\"\n    type: alpaca\n", `c.yaml:2: datasets: "d\x00.jsonl": a NUL byte at byte 1`},
		{"base_model: m\noutput_dir: \"o\\0\"\n", `a NUL byte at byte 1`},
	} {
		conv, err := Convert([]byte(c.src), "c.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "-9223372036854775808") {
			t.Errorf("%q: %v (conversion %v), want an error saying %q", c.src, err, conv, c.want)
		}
	}
}

// TestConvertWritesControlCharacters: a control character in a value, a
// key or the source's name reaches the written file's comments (the notes,
// the marks) escaped: YAML refuses a raw one anywhere, comments included,
// so the written file would not load; and a newline in the source's name
// cannot split a mark.
func TestConvertWritesControlCharacters(t *testing.T) {
	for _, c := range []struct{ name, src string }{
		{"c.yaml", "base_model: \"a\\x01b\"\n"},
		{"c.yaml", "base_model: m\n\"zz\\x01q\": 1\n"},
		{"dir\x01/c\x7f.yaml", "base_model: m\nlearning_rate: 1e-4\n"},
		{"a\nmax_steps: 1\n.yaml", "base_model: m\nlearning_rate: 1e-4\n"},
	} {
		conv, err := Convert([]byte(c.src), c.name)
		if err != nil {
			t.Fatalf("%q: %v", c.src, err)
		}
		var buf bytes.Buffer
		if err := conv.Write(&buf); err != nil {
			t.Fatal(err)
		}
		cfg, err := Parse(buf.Bytes(), "run.yaml")
		if err != nil {
			t.Errorf("%q from %q: the written file does not load: %v", c.src, c.name, err)
			continue
		}
		if cfg.Model.Path != conv.Config.Model.Path || cfg.Training.Optimizer.LR != conv.Config.Training.Optimizer.LR {
			t.Errorf("%q: loads as model %q lr %v, converted %q %v", c.src, cfg.Model.Path, cfg.Training.Optimizer.LR, conv.Config.Model.Path, conv.Config.Training.Optimizer.LR)
		}
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(c.src, "learning_rate") && strings.HasPrefix(strings.TrimSpace(l), "lr: ") && !convertedMarkRE.MatchString(l) {
				t.Errorf("%q: the lr line lost its mark: %q", c.name, l)
			}
		}
	}
}

// TestConvertWritesAFileThatLoads: the written file is a run file ftune
// reads (at most MaxFileBytes): a source of many keys it does not
// convert lists the first of them in the file's head, not every one (the
// 4 MiB source of 200,000 such keys wrote 14 MB, which train -c
// refused); and a conversion that would still be larger (a 4 MiB data
// path of characters written escaped) is refused, not written.
func TestConvertWritesAFileThatLoads(t *testing.T) {
	var src strings.Builder
	src.WriteString("base_model: m\n")
	for i := range 200000 {
		fmt.Fprintf(&src, "k%d: %d\n", i, i)
	}
	conv, err := Convert([]byte(src.String()), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := conv.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > MaxFileBytes || !strings.Contains(buf.String(), "and 199950 more") {
		t.Errorf("%d keys not converted: wrote %d bytes (at most %d load), head %q", len(conv.Notes), buf.Len(), MaxFileBytes, buf.String()[:min(buf.Len(), 300)])
	}
	if _, err := Parse(buf.Bytes(), "run.yaml"); err != nil {
		t.Errorf("does not load: %v", err)
	}
	path := strings.Repeat("\u2028", 1_200_000)
	conv, err = Convert([]byte("base_model: m\ndatasets:\n  - path: \""+path+"\"\n    type: alpaca\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := conv.Write(&buf); err == nil || !strings.Contains(err.Error(), "ftune reads at most") {
		t.Errorf("a run file of %d bytes: %v, want it refused", buf.Len(), err)
	}
}
