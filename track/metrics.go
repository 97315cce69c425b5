package track

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"

	"github.com/ftune/ftune/internal/fsutil"
)

// Values are metrics by name. They marshal to JSON with NaN and ±Inf as
// the strings "NaN", "+Inf", "-Inf" (a diverged loss must still be
// recorded, and JSON has no NaN), and read either form back.
type Values map[string]float64

func (v Values) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range sortedKeys(v) {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		x := v[k]
		switch {
		case math.IsNaN(x):
			b.WriteString(`"NaN"`)
		case math.IsInf(x, 1):
			b.WriteString(`"+Inf"`)
		case math.IsInf(x, -1):
			b.WriteString(`"-Inf"`)
		default:
			b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (v *Values) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	out := make(Values, len(raw))
	for k, r := range raw {
		var f float64
		if err := json.Unmarshal(r, &f); err == nil {
			out[k] = f
			continue
		}
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return fmt.Errorf("metric %q: %s is not a number", k, r)
		}
		switch s {
		case "NaN":
			out[k] = math.NaN()
		case "+Inf", "Inf":
			out[k] = math.Inf(1)
		case "-Inf":
			out[k] = math.Inf(-1)
		default:
			return fmt.Errorf("metric %q: %q is not a number", k, s)
		}
	}
	*v = out
	return nil
}

// Record is one line of metrics.jsonl.
type Record struct {
	Step     int     `json:"step"`
	WallTime float64 `json:"wall_time"` // seconds since the Unix epoch
	Metrics  Values  `json:"metrics"`
}

// Sample is one line of samples.jsonl: a text logged with LogText.
type Sample struct {
	Step     int     `json:"step"`
	WallTime float64 `json:"wall_time"`
	Tag      string  `json:"tag"`
	Text     string  `json:"text"`
}

// ReadMetrics reads a run's metrics.jsonl. A last line cut short by a
// crash is dropped; any other bad line is an error naming its number.
func ReadMetrics(path string) ([]Record, error) {
	var out []Record
	err := readJSONL(path, func(line []byte) error {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// ReadSamples reads a run's samples.jsonl (no file: no samples).
func ReadSamples(path string) ([]Sample, error) {
	var out []Sample
	err := readJSONL(path, func(line []byte) error {
		var s Sample
		if err := json.Unmarshal(line, &s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	if os.IsNotExist(err) {
		return nil, nil
	}
	return out, err
}

// maxLogBytes and maxLogLine bound what is read of a run's JSONL logs
// (a run folder may come from anywhere): a line is one step's metrics or
// one text sample, a few kilobytes; a run logging every step writes about
// 300 bytes a step, so a gibibyte is some three million steps.
const (
	maxLogBytes = 1 << 30
	maxLogLine  = 1 << 20
)

// readRegular reads a run folder's file that grows with the run (its
// JSONL logs), refusing one that is not a regular file (a named pipe in
// a run folder would be waited on forever) or is over maxLogBytes.
func readRegular(path string) ([]byte, error) {
	return fsutil.ReadFileLimit(path, maxLogBytes)
}

func readJSONL(path string, each func([]byte) error) error {
	data, err := readRegular(path)
	if err != nil {
		return err
	}
	lines := bytes.Split(data, []byte("\n"))
	for i, line := range lines {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(line) > maxLogLine {
			return fmt.Errorf("%s:%d: a line of %s, over the %s a log line of a run holds", path, i+1, fsutil.FormatBytes(int64(len(line))), fsutil.FormatBytes(maxLogLine))
		}
		if err := each(line); err != nil {
			if i == len(lines)-1 {
				return nil // no newline after it: a write torn by a crash
			}
			return fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
	}
	return nil
}

// Point is one value of a metric at a step.
type Point struct {
	Step  int
	Value float64
}

// Series extracts one metric's points in step order. A step that goes
// back (a run resumed from a checkpoint older than its last records)
// replaces the points from that step on, as TensorBoard's purge does.
func Series(recs []Record, metric string) []Point {
	var out []Point
	for _, r := range recs {
		v, ok := r.Metrics[metric]
		if !ok {
			continue
		}
		for len(out) > 0 && out[len(out)-1].Step >= r.Step {
			out = out[:len(out)-1]
		}
		out = append(out, Point{r.Step, v})
	}
	return out
}

// Final is the last value of every metric (after resume replacement).
func Final(recs []Record) Values {
	out := Values{}
	names := map[string]bool{}
	for _, r := range recs {
		for k := range r.Metrics {
			names[k] = true
		}
	}
	for k := range names {
		if s := Series(recs, k); len(s) > 0 {
			out[k] = s[len(s)-1].Value
		}
	}
	return out
}

// LastStep is the largest step recorded (0 for none).
func LastStep(recs []Record) int {
	last := 0
	for _, r := range recs {
		last = max(last, r.Step)
	}
	return last
}
