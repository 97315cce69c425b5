package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The audit's cases, through the CLI: a merged export over a PEFT export
// is refused (it replaced the adapter, exit 0, no note); an export over an
// earlier one of its format says what it replaced, and from what.
func TestExportSaysWhatItReplaces(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	_, adapter := adapterOnOtherBase(t)
	dir := t.TempDir()
	peft := filepath.Join(dir, "peft")
	if msg, err := run(t, "export", "--adapter", adapter, "--format", "peft", "--out", peft); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	msg, err := run(t, "export", "--adapter", adapter, "--format", "merged", "--out", peft)
	if err == nil || !strings.Contains(err.Error(), "PEFT") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("merged over a PEFT export: err = %v\n%s", err, msg)
	}
	if _, err := os.Stat(filepath.Join(peft, "adapter_config.json")); err != nil {
		t.Fatalf("the PEFT export is gone: %v", err)
	}
	msg, err = run(t, "export", "--adapter", adapter, "--format", "peft", "--out", peft)
	if err != nil || !strings.Contains(msg, "replaced "+peft+" (") || !strings.Contains(msg, adapter) {
		t.Fatalf("PEFT over a PEFT export: %v; want a note naming what it replaced, made from %s\n%s", err, adapter, msg)
	}
	model := filepath.Join(dir, "m.gguf")
	for range 2 {
		if msg, err = run(t, "export", "--adapter", adapter, "--format", "gguf", "--quant", "q8_0", "--out", model); err != nil {
			t.Fatalf("%v\n%s", err, msg)
		}
	}
	if !strings.Contains(msg, "replaced "+model+" (") {
		t.Errorf("a GGUF export over an earlier one says nothing of it:\n%s", msg)
	}
}

// --format gguf-lora --quant q4_0 stores the lora_b tensors, whose rows
// are the rank (4 here), as F16: said, as a model export says its own
// fallbacks (it wrote them with no word).
func TestExportLoRASaysItsFallbacks(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	_, adapter := adapterOnOtherBase(t)
	out := filepath.Join(t.TempDir(), "l.gguf")
	msg, err := run(t, "export", "--adapter", adapter, "--format", "gguf-lora", "--quant", "q4_0", "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	if !strings.Contains(msg, "note: Q4_0: 6 LoRA tensors whose rows are not whole 32-value blocks are stored as F16 instead of Q4_0") || !strings.Contains(msg, "lora_b (rows of 4)") {
		t.Errorf("the LoRA export does not say which tensors fell back to F16:\n%s", msg)
	}
}

// --out DIR/ is the folder DIR: an export's cleanup looked inside it (and
// with --force deleted the user's .scratch.tmp-3 there), and a new
// --out newp/ failed.
func TestExportOutTrailingSlash(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	_, adapter := adapterOnOtherBase(t)
	dir := t.TempDir()
	scratch := filepath.Join(dir, "work", ".scratch.tmp-3")
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{".ftune_export_partial": "", "results.csv": "precious"} {
		if err := os.WriteFile(filepath.Join(scratch, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if msg, err := run(t, "export", "--adapter", adapter, "--format", "peft", "--out", filepath.Join(dir, "work")+"/", "--force"); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	kept, _ := filepath.Glob(filepath.Join(dir, "work.replaced-*", ".scratch.tmp-3", "results.csv"))
	if len(kept) != 1 {
		t.Fatalf("the user's .scratch.tmp-3/results.csv is not kept (%v)", kept)
	}
	if msg, err := run(t, "export", "--adapter", adapter, "--format", "peft", "--out", filepath.Join(dir, "newp")+"/"); err != nil {
		t.Fatalf("--out newp/: %v\n%s", err, msg)
	}
}
