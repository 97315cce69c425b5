package ftune

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/lora"
)

// TestExportRefusesOptionsTheFormatDoesNotUse: a quant or a shard size
// that the format would drop is refused with the reason, before anything
// is written; an unknown format is named as such, adapter or not.
func TestExportRefusesOptionsTheFormatDoesNotUse(t *testing.T) {
	m := loadTrained(t)
	dir := t.TempDir()
	for _, c := range []struct {
		opt  ExportOptions
		want string
	}{
		{ExportOptions{Format: FormatPEFT, Quant: "zzz"}, "quant zzz"},
		{ExportOptions{Format: FormatPEFT, Quant: "q8_0"}, "GGUF file's"},
		{ExportOptions{Format: FormatMerged, Quant: "q4_0"}, "keeps the base's dtype"},
		{ExportOptions{Format: FormatGGUF, MaxShardBytes: 1000}, "MaxShardBytes"},
		{ExportOptions{Format: FormatGGUFLoRA, MaxShardBytes: 1000}, "MaxShardBytes"},
		{ExportOptions{Format: FormatPEFT, MaxShardBytes: 1000}, "MaxShardBytes"},
		{ExportOptions{Format: "onnx"}, `format "onnx"`},
	} {
		out := filepath.Join(dir, "out")
		if _, err := m.Export(context.Background(), out, c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want an error containing %q", c.opt, err, c.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("%+v: the refused export wrote %s", c.opt, out)
		}
	}
	base := *m
	base.Adapter = nil
	for _, format := range []string{"onnx", ""} {
		_, err := base.Export(context.Background(), filepath.Join(dir, "out"), ExportOptions{Format: format})
		if err == nil || errors.Is(err, ErrNoAdapter) || !strings.Contains(err.Error(), "want peft, merged, gguf or gguf-lora") {
			t.Errorf("format %q without an adapter: err %v, want the unknown format named", format, err)
		}
	}
}

// TestExportCancelledBeforeItStarts: every format honours a ctx cancelled
// already and leaves out as it was.
func TestExportCancelledBeforeItStarts(t *testing.T) {
	m := loadTrained(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	for _, format := range []string{FormatPEFT, FormatMerged, FormatGGUF, FormatGGUFLoRA} {
		out := filepath.Join(dir, format)
		if _, err := m.Export(ctx, out, ExportOptions{Format: format}); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled ctx: err %v, want context.Canceled", format, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("cancelled exports left %d file(s) in %s", len(ents), dir)
	}
}

// TestExportAdapterStopsWhenCancelled: a PEFT or GGUF LoRA export
// cancelled between two tensors stops there, as merged and GGUF ones do
// (TestExportStopsWhenCancelled), with the context's error naming the next
// tensor, and leaves neither the output nor a temporary behind; an earlier
// export at that path stays as it was.
func TestExportAdapterStopsWhenCancelled(t *testing.T) {
	m := loadTrained(t)
	for _, format := range []string{FormatPEFT, FormatGGUFLoRA} {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		n := 3
		_, err := m.Export(testutil.NewCancelAfter(n), out, ExportOptions{Format: format})
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped before model.layers.") || strings.Contains(err.Error(), ".tmp-") {
			t.Errorf("%s cancelled after 3 checks: %v; want context.Canceled naming the next tensor (not a temporary)", format, err)
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
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("%s: a cancelled export over an earlier one left %d entries in the output's folder, want 1", format, len(ents))
		}
	}
}

// TestExportGGUFReplacesOnlyItsOwnKind: a GGUF export replaces an earlier
// GGUF of its kind, not a model with a LoRA or the other way round (nor
// an importance matrix: cmd/ftune's tests), unless Force, which keeps
// the file; the temporary file a killed export left beside the path is
// removed, and said.
func TestExportGGUFReplacesOnlyItsOwnKind(t *testing.T) {
	m := loadTrained(t)
	dir := t.TempDir()
	for _, c := range []struct{ first, then, is string }{
		{FormatGGUF, FormatGGUFLoRA, "the file there is a GGUF model that ftune wrote, and this writes a GGUF LoRA adapter"},
		{FormatGGUFLoRA, FormatGGUF, "the file there is a GGUF LoRA adapter that ftune wrote, and this writes a GGUF model"},
	} {
		out := filepath.Join(dir, c.first+".gguf")
		if _, err := m.Export(context.Background(), out, ExportOptions{Format: c.first}); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, out)
		_, err := m.Export(context.Background(), out, ExportOptions{Format: c.then})
		if !errors.Is(err, export.ErrOtherKind) || !strings.Contains(err.Error(), c.is) || !strings.Contains(err.Error(), "--force") {
			t.Errorf("%s over %s: err %v, want export.ErrOtherKind saying %q", c.then, c.first, err, c.is)
		}
		if !maps.Equal(before, snapshot(t, out)) {
			t.Errorf("the refused %s export changed the %s file", c.then, c.first)
		}
		leftover := filepath.Join(dir, "."+c.first+".gguf.tmp-2187466819")
		if err := os.WriteFile(leftover, []byte("GGUF\x03\x00\x00\x00killed"), 0o600); err != nil {
			t.Fatal(err)
		}
		notes, err := m.Export(context.Background(), out, ExportOptions{Format: c.then, Force: true})
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Join(notes, "\n")
		if !strings.Contains(all, "is kept at "+out+".replaced-") || !strings.Contains(all, filepath.Base(leftover)) {
			t.Errorf("forced %s export's notes %q do not say where the %s went and which leftover was removed", c.then, notes, c.first)
		}
		if _, err := os.Stat(leftover); !os.IsNotExist(err) {
			t.Errorf("the killed export's %s is still there", leftover)
		}
	}
}

// TestLoadRefusesAnAdapterWhoseScalingOverflows: an adapter whose
// lora_alpha makes a scaling no adapter uses (1e38 over r 4) has finite
// weights, and the merged, PEFT and GGUF LoRA exports used to write them
// while every forward pass through them overflowed. Loading it (what
// generate, eval and export do) refuses it first, naming
// adapter_config.json and the key, before the base is read.
func TestLoadRefusesAnAdapterWhoseScalingOverflows(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	base := otherBase(t)
	adapter := trainedAdapter(t, base)
	path := filepath.Join(adapter, lora.ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["lora_alpha"] = 1e38
	if b, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{"", base} {
		_, err = Load(model, LoadOptions{Adapter: adapter})
		if !errors.Is(err, lora.ErrInvalidConfig) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "lora_alpha = 1e+38") {
			t.Errorf("Load(%q) with lora_alpha 1e38: err %v; want lora.ErrInvalidConfig naming %s and lora_alpha", model, err, path)
		}
	}
}

// TestLoadNamesABadTokenID: a base whose config.json gives an EOS id
// outside its vocabulary is refused at load, naming the file and the key,
// not later in the embedding.
func TestLoadNamesABadTokenID(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	base := otherBase(t)
	path := filepath.Join(base, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), `"eos_token_id": 0`, `"eos_token_id": 99999`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(base, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "eos_token_id 99999") {
		t.Fatalf("eos_token_id 99999 on a vocabulary of 4096: err %v; want %s and the key named", err, path)
	}
}

// TestExportOutTrailingSlash: the audit's case: --out DIR/ was used as
// given, so an export's cleanup looked inside DIR (and with force
// deleted the user's .scratch.tmp-3 there), and an export to a new
// DIR/ failed. The path is cleaned where it enters.
func TestExportOutTrailingSlash(t *testing.T) {
	m := loadTrained(t)
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	scratch := filepath.Join(work, ".scratch.tmp-3")
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{".ftune_export_partial": "", "results.csv": "precious"} {
		if err := os.WriteFile(filepath.Join(scratch, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Export(context.Background(), work+"/", ExportOptions{Format: FormatPEFT, Force: true}); err != nil {
		t.Fatal(err)
	}
	kept, _ := filepath.Glob(filepath.Join(dir, "work.replaced-*", ".scratch.tmp-3", "results.csv"))
	if len(kept) != 1 {
		t.Fatalf("the user's .scratch.tmp-3/results.csv is not kept (%v)", kept)
	}
	if b, err := os.ReadFile(kept[0]); err != nil || string(b) != "precious" {
		t.Fatalf("results.csv: %q, %v", b, err)
	}
	if _, err := m.Export(context.Background(), filepath.Join(dir, "newp")+"/", ExportOptions{Format: FormatPEFT}); err != nil {
		t.Fatalf("an export to a new folder named with a trailing slash: %v", err)
	}
}
