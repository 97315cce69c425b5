package ftune

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/export/gguf"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/lora/loratest"
)

// otherBase is a copy of tiny-base with another content hash.
func otherBase(t *testing.T) string {
	t.Helper()
	src, err := assets.Model(TinyBase)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.OtherBase(t, src)
}

// trainedAdapter saves a fresh adapter made on the model in dir, with
// random A and B (an initialised one changes nothing).
func trainedAdapter(t *testing.T, dir string) string {
	t.Helper()
	return loratest.SavedRandom(t, dir, 8, 1)
}

// An adapter is loaded onto the base it was trained on, not tiny-base; a
// moved base is found with the model argument, and another base (same
// shapes, other content) is refused.
func TestLoadFindsTheAdaptersBase(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	base := otherBase(t)
	adapter := trainedAdapter(t, base)

	m, err := Load("", LoadOptions{Adapter: adapter})
	if err != nil {
		t.Fatal(err)
	}
	if m.Dir != base || m.Adapter == nil {
		t.Fatalf("adapter loaded onto %s (adapter %v), want its base %s", m.Dir, m.Adapter != nil, base)
	}
	if _, err := Load(TinyBase, LoadOptions{Adapter: adapter}); !errors.Is(err, lora.ErrBaseMismatch) {
		t.Fatalf("adapter onto tiny-base: err = %v, want ErrBaseMismatch", err)
	}

	moved := base + "-moved"
	if err := os.Rename(base, moved); err != nil {
		t.Fatal(err)
	}
	_, err = Load("", LoadOptions{Adapter: adapter})
	if !errors.Is(err, ErrBaseNotFound) || !strings.Contains(err.Error(), base) || !strings.Contains(err.Error(), "--model") {
		t.Fatalf("base moved: err = %v, want ErrBaseNotFound naming %s and --model", err, base)
	}
	if m, err = Load(moved, LoadOptions{Adapter: adapter}); err != nil || m.Dir != moved {
		t.Fatalf("moved base given: %v", err)
	}

	// An adapter trained on tiny-base finds it wherever the cache is.
	tiny, err := assets.Model(TinyBase)
	if err != nil {
		t.Fatal(err)
	}
	onTiny := trainedAdapter(t, tiny)
	t.Setenv("FTUNE_CACHE", t.TempDir()) // the recorded cache folder is elsewhere now
	if err := os.RemoveAll(tiny); err != nil {
		t.Fatal(err)
	}
	if _, err := Load("", LoadOptions{Adapter: onTiny}); err != nil {
		t.Fatalf("adapter on tiny-base, cache moved: %v", err)
	}
}

// A PEFT adapter without ftune's record and without a findable
// base_model_name_or_path is refused, not put on tiny-base.
func TestLoadRefusesAdapterWithoutBase(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	adapter := trainedAdapter(t, otherBase(t))
	if err := os.Remove(filepath.Join(adapter, lora.BaseFile)); err != nil {
		t.Fatal(err)
	}
	c, err := lora.ReadConfig(filepath.Join(adapter, lora.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	c.BaseModelNameOrPath = "meta-llama/Llama-3.2-1B"
	if err := lora.WriteConfig(filepath.Join(adapter, lora.ConfigFile), c); err != nil {
		t.Fatal(err)
	}
	_, err = Load("", LoadOptions{Adapter: adapter})
	if !errors.Is(err, ErrBaseNotFound) || !strings.Contains(err.Error(), "meta-llama/Llama-3.2-1B") {
		t.Fatalf("err = %v, want ErrBaseNotFound naming base_model_name_or_path", err)
	}
}

// TestLoadRefusesOversizedFiles: every file of a model or adapter folder
// that is parsed whole is refused by its size, with its name, before a byte
// of it is read (sparse 8 GiB files: a hostile download, not a real model).
func TestLoadRefusesOversizedFiles(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	grow := func(t *testing.T, path string) {
		t.Helper()
		if err := os.Truncate(path, 8<<30); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} {
		t.Run(f, func(t *testing.T) {
			dir := otherBase(t)
			grow(t, filepath.Join(dir, f))
			_, err := Load(dir, LoadOptions{})
			if !errors.Is(err, fsutil.ErrTooLarge) || !strings.Contains(err.Error(), filepath.Join(dir, f)+" is 8.0 GiB") {
				t.Fatalf("an 8 GiB %s: error %v; want it refused with its path and size", f, err)
			}
		})
	}
	for _, f := range []string{lora.ConfigFile, lora.BaseFile} {
		t.Run(f, func(t *testing.T) {
			base := otherBase(t)
			adapter := trainedAdapter(t, base)
			grow(t, filepath.Join(adapter, f))
			_, err := Load(base, LoadOptions{Adapter: adapter})
			if !errors.Is(err, fsutil.ErrTooLarge) || !strings.Contains(err.Error(), filepath.Join(adapter, f)+" is 8.0 GiB") {
				t.Fatalf("an 8 GiB %s: error %v; want it refused with its path and size", f, err)
			}
		})
	}
}

// loadTrained loads a base with an adapter trained on it, with a private
// cache folder.
func loadTrained(t *testing.T) *Model {
	t.Helper()
	t.Setenv("FTUNE_CACHE", t.TempDir())
	base := otherBase(t)
	m, err := Load(base, LoadOptions{Adapter: trainedAdapter(t, base)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestExportGGUFReplacesOnlyItsOwnFile: a GGUF export writes over its own
// earlier file, refuses the user's file (untouched), and with Force keeps
// that file beside the new one and says where.
func TestExportGGUFReplacesOnlyItsOwnFile(t *testing.T) {
	m := loadTrained(t)
	dir := t.TempDir()
	for _, format := range []string{FormatGGUF, FormatGGUFLoRA} {
		out := filepath.Join(dir, format+".gguf")
		for range 2 { // the second run replaces the first's file
			if _, err := m.Export(context.Background(), out, ExportOptions{Format: format, Quant: "f32"}); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
		}
	}
	users := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(users, []byte("the user's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Export(context.Background(), users, ExportOptions{Format: FormatGGUF}); !errors.Is(err, export.ErrNotOurs) {
		t.Fatalf("export over the user's file: %v; want export.ErrNotOurs", err)
	}
	if b, _ := os.ReadFile(users); string(b) != "the user's" {
		t.Fatalf("the refused export changed the user's file: %q", b)
	}
	notes, err := m.Export(context.Background(), users, ExportOptions{Format: FormatGGUF, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) == 0 || !strings.Contains(notes[len(notes)-1], "is kept at "+users+".replaced-") {
		t.Fatalf("forced export's notes %q do not say where the user's file went", notes)
	}
}

// TestExportStopsWhenCancelled: a merged or GGUF export cancelled between
// two tensors (or, merged, while copying the base's files) stops there
// with the context's error naming the next tensor (or the file), and leaves neither the output nor a temporary file behind; an
// earlier export at that path stays as it was.
func TestExportStopsWhenCancelled(t *testing.T) {
	m := loadTrained(t)
	for _, format := range []string{FormatMerged, FormatGGUF} {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		n := 3
		_, err := m.Export(testutil.NewCancelAfter(n), out, ExportOptions{Format: format})
		// The merged export copies the base's tokenizer files first, checking
		// the context as it copies: it may stop there instead.
		if !errors.Is(err, context.Canceled) || !(strings.Contains(err.Error(), "stopped before model.") || strings.Contains(err.Error(), "stopped while copying ")) {
			t.Errorf("%s cancelled after 3 checks: %v; want context.Canceled naming the next tensor or the file being copied", format, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s: a cancelled export left %d file(s) in the output's folder", format, len(ents))
		}

		if _, err := m.Export(context.Background(), out, ExportOptions{Format: format}); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, out)
		n = 3
		if _, err := m.Export(testutil.NewCancelAfter(n), out, ExportOptions{Format: format}); !errors.Is(err, context.Canceled) {
			t.Errorf("%s over an earlier export, cancelled: %v", format, err)
		}
		if after := snapshot(t, out); !maps.Equal(before, after) {
			t.Errorf("%s: a cancelled export changed the earlier one at %s", format, out)
		}
	}
}

// snapshot maps each file under path (a file or a folder) to its content.
func snapshot(t *testing.T, path string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestExportGGUFKQuantMix: the quant asked for reaches the file (a k-quant
// mix, in any case: general.file_type 15 and llama-quantize's types, the
// tied embeddings in Q6_K), the notes say which weights fell back, and the
// GGUF LoRA refuses a mix with the reason.
func TestExportGGUFKQuantMix(t *testing.T) {
	m := loadTrained(t)
	out := filepath.Join(t.TempDir(), "model-q4_k_m.gguf")
	notes, err := m.Export(context.Background(), out, ExportOptions{Format: FormatGGUF, Quant: "Q4_K_m"})
	if err != nil {
		t.Fatal(err)
	}
	// The base's ffn_down rows (704 values) are not whole 256-value
	// blocks: the fallback is said.
	if !strings.Contains(strings.Join(notes, "\n"), "stored as Q5_0 instead of Q4_K") {
		t.Errorf("notes %q do not say which weights fell back to Q5_0", notes)
	}
	f, err := gguf.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ft, _ := f.Uint("general.file_type"); ft != uint64(gguf.FileQ4_K_M) {
		t.Errorf("general.file_type %d, want %d (Q4_K_M)", ft, gguf.FileQ4_K_M)
	}
	types := map[gguf.TensorType]int{}
	for _, ti := range f.Tensors {
		types[ti.Type]++
	}
	if types[gguf.Q4_K] == 0 || types[gguf.Q6_K] == 0 {
		t.Errorf("tensor types %v: want Q4_K weights and Q6_K for the tied embeddings and more-bits layers", types)
	}
	_, err = m.Export(context.Background(), filepath.Join(t.TempDir(), "lora.gguf"), ExportOptions{Format: FormatGGUFLoRA, Quant: "q4_k_m"})
	if err == nil || !strings.Contains(err.Error(), "not Q4_K_M") {
		t.Fatalf("GGUF LoRA as q4_k_m: %v; want refused with the reason", err)
	}
}
