package ftune

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ftune/ftune/track"
)

// TestTrainManifestMarksPrunedCheckpoints: the checkpoints keep_last
// deleted stayed in manifest.json as if they were there. Each checkpoint
// version is now marked removed exactly when its folder is gone, its step
// and hashes kept.
func TestTrainManifestMarksPrunedCheckpoints(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	cfg := tinyTrainConfig(t.TempDir(), 3)
	cfg.Training.Checkpointing.KeepLast, cfg.Training.Checkpointing.TopK = 1, 0
	res, err := Train(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := track.ReadManifest(filepath.Join(res.RunDir, track.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var steps, removed []int
	for _, v := range m.Versions {
		if v.Kind != "checkpoint" {
			if !v.Removed.IsZero() {
				t.Errorf("%s %s marked removed", v.Kind, v.Path)
			}
			continue
		}
		steps = append(steps, v.Step)
		_, err := os.Stat(filepath.Join(res.RunDir, v.Path))
		if gone := os.IsNotExist(err); gone != !v.Removed.IsZero() {
			t.Errorf("checkpoint %s: on disk %v, removed %v", v.Path, !gone, v.Removed)
		}
		if !v.Removed.IsZero() {
			removed = append(removed, v.Step)
			if len(v.Files) == 0 {
				t.Errorf("removed checkpoint %s lost its hashes", v.Path)
			}
		}
	}
	if len(steps) != 3 || len(removed) != 2 || removed[0] != 1 || removed[1] != 2 {
		t.Errorf("checkpoint versions at steps %v, removed %v; want 1, 2, 3 with 1 and 2 removed", steps, removed)
	}
}
