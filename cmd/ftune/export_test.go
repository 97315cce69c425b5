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

// TestExportShardLimitBounded: --max-shard-mb above 1 TiB is refused
// naming the flag (exit 2) before anything loads; 17592186044417 (2^44+1)
// MiB once wrapped around in shardMB<<20 to a 1 MiB limit and wrote 13
// shards, 2^43 to a negative one (a single file). 1 TiB itself passes:
// the error is then the missing adapter's.
func TestExportShardLimitBounded(t *testing.T) {
	dir := t.TempDir()
	args := func(mb string) []string {
		return []string{"export", "--adapter", filepath.Join(dir, "no-adapter"), "--out", filepath.Join(dir, "m"), "--max-shard-mb", mb}
	}
	for _, mb := range []string{"17592186044417", "8796093022208", "1048577"} {
		code, _, stderr := exitOf(t, args(mb)...)
		if want := "--max-shard-mb " + mb + ": want at most 1048576 (1 TiB)"; code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("--max-shard-mb %s: exit %d, %q; want exit 2 saying %q", mb, code, stderr, want)
		}
	}
	if code, _, stderr := exitOf(t, args("1048576")...); code != 1 || strings.Contains(stderr, "max-shard-mb") || !strings.Contains(stderr, "no-adapter") {
		t.Errorf("--max-shard-mb 1048576: exit %d, %q; want the missing adapter's error (exit 1)", code, stderr)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the refused exports left %d file(s) in %s", len(ents), dir)
	}
}

// TestExportFormatAnyCase: --format takes any case, as --quant does
// (--format GGUF was refused while --quant Q4_K_M was taken); the file
// written is the format's, and a bad format is still refused.
func TestExportFormatAnyCase(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	out := filepath.Join(dir, "m.gguf")
	if msg, err := run(t, "export", "--format", "GGUF", "--quant", "Q8_0", "--out", out); err != nil || !strings.Contains(msg, "(gguf of ") {
		t.Fatalf("--format GGUF: %v\n%s", err, msg)
	}
	f, err := gguf.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for format, want := range map[string]string{
		"GGUF-LoRA": "--format gguf-lora needs --adapter",
		"Merged":    "--format merged needs --adapter",
		"PEFT":      "--format peft needs --adapter",
		"GGUF2":     `--format "gguf2": want peft, merged, gguf or gguf-lora`,
	} {
		if code, _, stderr := exitOf(t, "export", "--format", format, "--out", filepath.Join(dir, "x")); code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("--format %s: exit %d, %q; want exit 2 saying %q", format, code, stderr, want)
		}
	}
}
