package recipe

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ftune/ftune/train"
)

// dirBytes is the size of the files under dir.
func dirBytes(t *testing.T, dir string) float64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return float64(n)
}

// TestDiskPlan: the run prints what its checkpoints and adapters take, the
// estimate of a checkpoint and of the adapter within 2% of what is
// written (JSON files are the difference) or the line's rounding to whole
// MiB, and warns when the file system has less free.
func TestDiskPlan(t *testing.T) {
	o := quickOptions(t, "disk")
	o.ModulesToSave = []string{"lm_head"} // a trained copy: most of the bytes
	var log bytes.Buffer
	o.Log = &log
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`disk: checkpoints ≈ (\S+) MiB each, up to 1 at once, adapters (\S+) MiB: ≈ \S+ MiB; \S+ \S+ free in ` + regexp.QuoteMeta(res.RunDir)).FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no disk line, or not the one expected:\n%s", log.String())
	}
	est, _ := strconv.ParseFloat(m[1], 64)
	got := dirBytes(t, filepath.Join(res.RunDir, "checkpoints", train.StepDir(o.Steps))) / (1 << 20)
	near := func(est, got float64) bool { return math.Abs(got-est) <= max(0.02*est, 0.5) }
	if est < 1 || !near(est, got) {
		t.Errorf("a checkpoint is estimated at %.0f MiB, written %.1f MiB", est, got)
	}
	adapter, _ := strconv.ParseFloat(m[2], 64)
	if got := dirBytes(t, res.Adapters["default"]) / (1 << 20); !near(adapter, got) {
		t.Errorf("the adapter is estimated at %.0f MiB, written %.1f MiB", adapter, got)
	}

	defer func(f func(string) (uint64, bool)) { freeBytes = f }(freeBytes)
	freeBytes = func(string) (uint64, bool) { return 1 << 20, true }
	o = quickOptions(t, "full")
	log.Reset()
	o.Log = &log
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "MiB free: a checkpoint will fail once it fills up; free space, keep fewer checkpoints (training.checkpointing.keep_last") {
		t.Errorf("no warning with 1 MiB free:\n%s", log.String())
	}
}
