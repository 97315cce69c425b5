package track

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/fsutil"
)

// TestRunLogsBounded: a run folder's logs are read under bounds (a run
// folder may come from anywhere): a metrics.jsonl over maxLogBytes is
// refused before it is read (a sparse file here: nothing is allocated),
// and a line over maxLogLine is refused naming its line, not decoded; a
// log of ordinary lines still reads.
func TestRunLogsBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.jsonl")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxLogBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := ReadMetrics(big); !errors.Is(err, fsutil.ErrTooLarge) || !strings.Contains(err.Error(), big) {
		t.Errorf("a log over %d bytes: %v", maxLogBytes, err)
	}
	if err := rewindJSONL(big, 1); !errors.Is(err, fsutil.ErrTooLarge) {
		t.Errorf("rewinding a log over %d bytes: %v", maxLogBytes, err)
	}

	long := filepath.Join(dir, "long.jsonl")
	ok := `{"step": 1, "metrics": {"train/loss": 2.5}}` + "\n"
	huge := `{"step": 2, "metrics": {"train/loss": 2.4}, "pad": "` + strings.Repeat("x", maxLogLine) + `"}` + "\n"
	if err := os.WriteFile(long, []byte(ok+huge+ok), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMetrics(long); err == nil || !strings.Contains(err.Error(), long+":2: a line of 1.0 MiB, over the 1.0 MiB a log line of a run holds") {
		t.Errorf("a line over %d bytes: %v", maxLogLine, err)
	}
	if err := os.WriteFile(long, []byte(ok+ok), 0o644); err != nil {
		t.Fatal(err)
	}
	if recs, err := ReadMetrics(long); err != nil || len(recs) != 2 {
		t.Errorf("an ordinary log: %d records, %v", len(recs), err)
	}
}
