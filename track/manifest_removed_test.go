package track

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestManifestMarksRemovedCheckpoints: a checkpoint that keep_last
// deleted stayed in manifest.json as if it were there to load. The next
// version recorded (the checkpoint whose save pruned it), or the run's
// end, now marks it removed, keeping its step, metrics and hashes; a
// checkpoint still there, and an export, are left unmarked.
func TestManifestMarksRemovedCheckpoints(t *testing.T) {
	r, err := NewRun(t.TempDir(), "keep", nil, WithClock(clock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	ckpt := func(step int) string {
		dir := filepath.Join(r.Dir, "checkpoints", fmt.Sprintf("step-%08d", step))
		mkFile(t, filepath.Join(dir, "adapter_model.safetensors"), "weights of step "+dir)
		return dir
	}
	save := func(step int) {
		r.SetStep(step)
		if err := r.AddVersion("checkpoint", ckpt(step), nil, map[string]float64{"val/loss": float64(10 - step)}); err != nil {
			t.Fatal(err)
		}
	}
	save(1)
	save(2)
	// keep_last 1: the save of step 3 deletes steps 1 and 2 before the
	// caller records step 3.
	ck3 := ckpt(3)
	for _, s := range []string{"step-00000001", "step-00000002"} {
		if err := os.RemoveAll(filepath.Join(r.Dir, "checkpoints", s)); err != nil {
			t.Fatal(err)
		}
	}
	r.SetStep(3)
	if err := r.AddVersion("checkpoint", ck3, nil, nil); err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(r.Dir, "adapter")
	mkFile(t, filepath.Join(export, "adapter_model.safetensors"), "exported")
	if err := r.AddVersion("export/peft", export, nil, nil); err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(filepath.Join(r.Dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	removed := func(m Manifest) []bool {
		var out []bool
		for _, v := range m.Versions {
			out = append(out, !v.Removed.IsZero())
		}
		return out
	}
	if got := removed(m); len(got) != 4 || !got[0] || !got[1] || got[2] || got[3] {
		t.Fatalf("removed marks %v for versions %+v, want steps 1 and 2 alone", got, m.Versions)
	}
	if v := m.Versions[0]; v.Step != 1 || v.Metrics["val/loss"] != 9 || len(v.Files) != 1 || v.Removed.Before(v.Time) {
		t.Errorf("a removed version lost its record: %+v", v)
	}

	// Deleted after the last version was recorded: the run's end marks it.
	if err := os.RemoveAll(ck3); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if m, err = ReadManifest(filepath.Join(r.Dir, ManifestFile)); err != nil {
		t.Fatal(err)
	}
	if got := removed(m); len(got) != 4 || !got[2] || got[3] {
		t.Fatalf("after the end, removed marks %v, want step 3 marked, the export not", got)
	}
	raw, err := os.ReadFile(filepath.Join(r.Dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), `"removed"`); n != 3 {
		t.Errorf("manifest.json has %d \"removed\" keys, want 3 (none on a version that is there):\n%s", n, raw)
	}
	// summary.json and runs list count what is there: of the four
	// versions recorded, three checkpoints are removed, the export is kept.
	sums, err := List(filepath.Dir(r.Dir))
	if err != nil || len(sums) != 1 || sums[0].Versions != 1 {
		t.Errorf("runs list: %+v, %v; want one run with 1 version kept", sums, err)
	}
	d, err := Show(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if out := d.String(); strings.Count(out, "(removed)") != 3 {
		t.Errorf("runs show marks %d versions removed, want 3:\n%s", strings.Count(out, "(removed)"), out)
	}
}
