package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/track"
)

// TestReportMarksRemovedVersions: a checkpoint keep_last deleted is in the
// versions table marked removed; one still there is not.
func TestReportMarksRemovedVersions(t *testing.T) {
	r, err := track.NewRun(t.TempDir(), "pruned", nil, track.WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	for step, name := range []string{"step-00000001", "step-00000002"} {
		dir := filepath.Join(r.Dir, "checkpoints", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "adapter_model.safetensors"), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		if step == 1 { // keep_last 1 prunes step 1 before step 2 is recorded
			if err := os.RemoveAll(filepath.Join(r.Dir, "checkpoints", "step-00000001")); err != nil {
				t.Fatal(err)
			}
		}
		r.SetStep(step + 1)
		if err := r.AddVersion("checkpoint", dir, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := HTMLReport(r.Dir); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(r.Dir, track.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `checkpoints/step-00000001 <span class="meta">(removed)</span>`) || strings.Count(string(page), "(removed)") != 1 {
		t.Errorf("the versions table does not mark step 1 alone removed:\n%s", page)
	}
}
