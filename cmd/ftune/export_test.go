package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/export/gguf"
)

// TestExportTypeOverrides: --output-tensor-type and --token-embedding-type
// reach the file (tiny-base ties its embeddings to the head: one table, in
// the embeddings' type), and bad values or formats are refused with the
// reason.
func TestExportTypeOverrides(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	out := filepath.Join(dir, "m.gguf")
	if msg, err := run(t, "export", "--format", "gguf", "--quant", "q4_k_m", "--output-tensor-type", "Q8_0", "--token-embedding-type", "f16", "--out", out); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	f, err := gguf.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ti, ok := f.Tensor("token_embd.weight"); !ok || ti.Type != gguf.F16 {
		t.Errorf("token_embd.weight is %v, want F16", ti.Type)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "gguf", "--output-tensor-type", "q9_9"}, `unknown tensor type "q9_9"`},
		{[]string{"--format", "merged", "--adapter", dir, "--token-embedding-type", "q8_0"}, "--token-embedding-type is for --format gguf"},
	} {
		args := append([]string{"export", "--out", filepath.Join(dir, "x")}, c.args...)
		if msg, err := run(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (%s), want an error containing %q", c.args, err, msg, c.want)
		}
	}
}

// TestExportRefusesFlagsTheFormatDoesNotUse: --quant and --max-shard-mb,
// which have defaults, are refused with the reason when given to a format
// that would drop them (the default format is merged: --quant q4_k_m
// alone once wrote a bf16 folder named m.gguf), before anything is loaded
// or written.
func TestExportRefusesFlagsTheFormatDoesNotUse(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	out := filepath.Join(dir, "m.gguf")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--quant", "q4_k_m"}, "--quant is for --format gguf or gguf-lora (a GGUF file), not merged"},
		{[]string{"--format", "merged", "--quant", "q4_0"}, "--quant is for --format gguf or gguf-lora (a GGUF file), not merged"},
		{[]string{"--format", "peft", "--quant", "q8_0"}, "--quant is for --format gguf or gguf-lora (a GGUF file), not peft"},
		{[]string{"--format", "gguf", "--max-shard-mb", "1"}, "--max-shard-mb is for --format merged"},
		{[]string{"--format", "gguf-lora", "--max-shard-mb", "1"}, "--max-shard-mb is for --format merged"},
		{[]string{"--format", "peft", "--imatrix", ""}, "--imatrix is for --format gguf"},
	} {
		args := append([]string{"export", "--adapter", filepath.Join(dir, "adapter"), "--out", out}, c.args...)
		if msg, err := run(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (%s), want an error containing %q", c.args, err, msg, c.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the refused exports left %d file(s) in %s", len(ents), dir)
	}
}
