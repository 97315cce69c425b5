package recipe

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/train"
)

// TestResumeBeforeFirstCheckpoint: a run stopped before its first
// checkpoint could not be resumed ("train: no checkpoint") and its name
// stayed taken. Resuming it now starts it again from step 0 in its folder.
func TestResumeBeforeFirstCheckpoint(t *testing.T) {
	o := quickOptions(t, "early")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.Log = cancelOn{w: &bytes.Buffer{}, line: "== training", cancel: cancel}
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(train.Checkpoints(filepath.Join(res.RunDir, "checkpoints"))); n != 0 {
		t.Fatalf("the interrupted run left %d checkpoints", n)
	}
	var log bytes.Buffer
	o.ResumeDir, o.Log = res.RunDir, &log
	again, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("resume of a run without a checkpoint: %v", err)
	}
	if again.Steps != o.Steps || again.RunDir != res.RunDir || !strings.Contains(log.String(), "starting it again from step 0") {
		t.Errorf("resumed to step %d in %s, want %d in %s; log:\n%s", again.Steps, again.RunDir, o.Steps, res.RunDir, log.String())
	}
}

func checkpointVersions(t *testing.T, dir string) map[int]int {
	t.Helper()
	m, err := track.ReadManifest(filepath.Join(dir, track.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, v := range m.Versions {
		if v.Kind == "checkpoint" {
			out[v.Step]++
		}
	}
	return out
}

// TestResumeRecordsRestoredCheckpoint: a process killed between a
// checkpoint's rename and manifest.json's write left the checkpoint out
// of the manifest for good; the resume records it. A resume at the last
// checkpoint with no step left adds no second entry for it (it used to
// write the checkpoint again).
func TestResumeRecordsRestoredCheckpoint(t *testing.T) {
	o := quickOptions(t, "manifest")
	o.CheckpointEvery = 1
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := checkpointVersions(t, res.RunDir); got[2] != 1 {
		t.Fatalf("checkpoint versions by step %v, want one of step 2", got)
	}
	o.ResumeDir = res.RunDir
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if got := checkpointVersions(t, res.RunDir); got[2] != 1 {
		t.Errorf("after a resume with no step left: checkpoint versions by step %v, want one of step 2", got)
	}
	// Killed before the manifest recorded step 2.
	path := filepath.Join(res.RunDir, track.ManifestFile)
	m, err := track.ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	var kept []track.Version
	for _, v := range m.Versions {
		if v.Kind != "checkpoint" || v.Step != 2 {
			kept = append(kept, v)
		}
	}
	m.Versions = kept
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	o.Steps = 3
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if got := checkpointVersions(t, res.RunDir); got[2] != 1 || got[3] != 1 {
		t.Errorf("checkpoint versions by step %v, want one each of steps 2 and 3", got)
	}
}
