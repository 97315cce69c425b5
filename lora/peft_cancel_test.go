package lora

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
)

// folderFiles maps each file in dir to its content.
func folderFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

// SaveContext cancelled between two tensors stops there, with an error
// wrapping the context's that names the next tensor, and writes nothing:
// no weights file, config or base record, no temporary left, and an
// earlier save in the folder stays as it was.
func TestSaveContextStopsWhenCancelled(t *testing.T) {
	m, err := nn.Load(fixture, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := NewConfig(4, 8, "q_proj", "v_proj")
	c.InitLoraWeights = InitLoraWeights{Bool: false} // B not zero: two saves differ
	a, err := New(m, c, "default", 1)
	if err != nil {
		t.Fatal(err)
	}
	a.Base = Base{Name: "b", Path: fixture, Hash: "abc", Scheme: nn.FingerprintScheme}
	if len(a.Params()) < 4 {
		t.Fatalf("%d tensors; the test cancels after 2", len(a.Params()))
	}
	dir := t.TempDir()
	n := 2
	err = a.SaveContext(testutil.NewCancelAfter(n), dir)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped before model.layers.") {
		t.Fatalf("cancelled after 2 tensors: err = %v; want context.Canceled naming the next tensor", err)
	}
	if files := folderFiles(t, dir); len(files) != 0 {
		t.Fatalf("a cancelled save left %d file(s) in %s", len(files), dir)
	}

	if err := a.SaveContext(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	before := folderFiles(t, dir)
	for _, f := range []string{ConfigFile, WeightsFile, BaseFile} {
		if before[f] == nil {
			t.Fatalf("uncancelled save wrote no %s", f)
		}
	}
	a.Layers["model.layers.0.self_attn.q_proj"].B.Value.Fill(0.5) // another save would differ
	n = 2
	if err := a.SaveContext(testutil.NewCancelAfter(n), dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled save over an earlier one: err = %v", err)
	}
	after := folderFiles(t, dir)
	if len(after) != len(before) {
		t.Fatalf("a cancelled save over an earlier one left files %v, want %d", len(after), len(before))
	}
	for f, b := range before {
		if !bytes.Equal(after[f], b) {
			t.Errorf("a cancelled save changed the earlier %s", f)
		}
	}
}
