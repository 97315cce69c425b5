package recipe

import (
	"fmt"
	"io"
	"math"

	"github.com/schollz/progressbar/v3"

	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/train"
)

func writeJSON(path string, b []byte) error { return fsutil.WriteFileAtomic(path, b, 0o644) }

// progress is a train.Sink drawing a progress bar with loss, learning
// rate, tokens/s and ETA; validation results go on their own lines.
type progress struct {
	w    io.Writer
	bar  *progressbar.ProgressBar
	loss string // a preference objective's loss (train.DescribeValidation)
}

func newProgress(w io.Writer, steps int, loss string) *progress {
	bar := progressbar.NewOptions(steps,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(24),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(0),
		progressbar.OptionClearOnFinish(),
	)
	return &progress{w: w, bar: bar, loss: loss}
}

func (p *progress) Log(step int, m train.Metrics) error {
	if _, ok := m["val/loss"]; ok {
		_ = p.bar.Clear()
		fmt.Fprintf(p.w, "step %d: validation %s\n", step, train.DescribeValidation(m, p.loss))
		return nil
	}
	if l, ok := m["train/loss"]; ok && !math.IsNaN(l) {
		p.bar.Describe(fmt.Sprintf("loss %.3f lr %.2g %4.0f tok/s", l, m["train/lr"], m["train/tokens_per_s"]))
	}
	return p.bar.Set(step)
}
