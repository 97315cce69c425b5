package track

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ftune/ftune/internal/fsutil"
)

// rewind cuts a resumed run's metrics.jsonl and samples.jsonl back to the
// checkpoint's step: the killed process logged steps past it, which the
// resumed one logs again, and its final evaluation (eval_after), which
// the resumed one measures again. Each file is replaced atomically, so a
// crash during the cut leaves the old file. A line torn by the crash goes
// too.
func rewind(dir string, step int) error {
	for _, name := range []string{MetricsFile, SamplesFile} {
		if err := rewindJSONL(filepath.Join(dir, name), step); err != nil {
			return fmt.Errorf("track: resume: %w", err)
		}
	}
	return nil
}

func rewindJSONL(path string, step int) error {
	data, err := readRegular(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var kept bytes.Buffer
	dropped := false
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var rec struct {
			Step    *int                       `json:"step"`
			Metrics map[string]json.RawMessage `json:"metrics"`
		}
		if json.Unmarshal(line, &rec) != nil || rec.Step == nil || *rec.Step > step || hasPrefixKey(rec.Metrics, EvalAfterPrefix) || line[len(line)-1] != '\n' {
			dropped = true
			continue
		}
		kept.Write(line)
	}
	if !dropped {
		return nil
	}
	return fsutil.WriteFileAtomic(path, kept.Bytes(), 0o644)
}

func hasPrefixKey(m map[string]json.RawMessage, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// leftoverName matches the temporary names ftune's own writers use, and
// only those: train.SaveCheckpoint's ".tmp-step-NNNNNNNN-<n>" folders, and
// internal/fsutil's (and export's) ".<name>.tmp-<n>" files and folders.
// A process killed mid-write leaves them behind.
var leftoverName = regexp.MustCompile(`^(\.tmp-step-\d{8}-\d+|\..+\.tmp-\d+)$`)

// removeLeftovers deletes the temporary files and folders of writes that
// a killed process left in the run folder dir, and returns them. Call it
// only with the run's lock held: a live writer's temporaries look the same.
func removeLeftovers(dir string) ([]string, error) {
	var removed []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir || !leftoverName.MatchString(d.Name()) {
			return nil
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
		removed = append(removed, relTo(dir, p))
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("track: remove leftovers in %s: %w", dir, err)
	}
	return removed, nil
}

// Removed lists the leftovers of killed writes that ResumeRun deleted
// (paths relative to the run folder).
func (r *Run) Removed() []string { return r.removed }
