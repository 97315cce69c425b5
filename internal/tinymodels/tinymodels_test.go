package tinymodels

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWeightsHaveRecordedSHA256: each family's generator gives, byte for
// byte, the model.safetensors that was committed before the weights were
// generated (its sha256 recorded in families.go), the file the llama.cpp
// golden logits of testdata/<family>-tiny were computed on (smollm3's was
// never committed: its sha256 is that of the first file generated, on
// which its golden logits were computed).
func TestWeightsHaveRecordedSHA256(t *testing.T) {
	if len(Families()) != 7 {
		t.Fatalf("families %v, want the seven tiny folders", Families())
	}
	for _, name := range Families() {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := Write(dir, name); err != nil {
				t.Fatal(err)
			}
			got, err := fileSHA256(filepath.Join(dir, WeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := SHA256(name); got != want {
				t.Fatalf("sha256 %s, want %s", got, want)
			}
		})
	}
}

// TestEnsure: absent and stale files (weights, tokenizer) are (re)written,
// a correct one is left alone, and a missing folder or an unknown family is an error naming
// it.
func TestEnsure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, WeightsFile)
	if wrote, err := Ensure(dir, "phi4mini"); err != nil || !wrote {
		t.Fatalf("absent file: wrote %v, err %v; want written", wrote, err)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if wrote, err := Ensure(dir, "phi4mini"); err != nil || wrote {
		t.Fatalf("correct file: wrote %v, err %v; want it kept", wrote, err)
	}
	if err := os.WriteFile(path, want[:len(want)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if wrote, err := Ensure(dir, "phi4mini"); err != nil || !wrote {
		t.Fatalf("truncated file: wrote %v, err %v; want rewritten", wrote, err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("rewritten file differs (%d bytes, want %d), err %v", len(got), len(want), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 2 {
		t.Fatalf("folder holds %v (err %v), want only %s and %s: a temporary file was left behind", entries, err, WeightsFile, TokenizerFile)
	}
	// The tokenizer: copied when absent, replaced when it differs.
	tok := filepath.Join(dir, TokenizerFile)
	if err := os.WriteFile(tok, []byte(`{"model": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(dir, "phi4mini"); err != nil {
		t.Fatal(err)
	}
	if sum, err := fileSHA256(tok); err != nil || sum != tokenizerSHA256 {
		t.Fatalf("a stale tokenizer.json was not replaced: sha256 %s, err %v", sum, err)
	}
	missing := filepath.Join(dir, "nope")
	if _, err := Ensure(missing, "phi3"); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing folder: err %v, want one naming %s", err, missing)
	}
	if _, err := Ensure(dir, "llama"); err == nil || !strings.Contains(err.Error(), `"llama"`) || !strings.Contains(err.Error(), "phi4mini") {
		t.Fatalf("unknown family: err %v, want one naming it and the known ones", err)
	}
}

// TestDir: the folder of the module's testdata with the weights in place
// and the committed files beside them.
func TestDir(t *testing.T) {
	dir := Dir(t, "qwen3")
	if filepath.Base(dir) != "qwen3-tiny" {
		t.Fatalf("Dir gave %s, want .../testdata/qwen3-tiny", dir)
	}
	for _, f := range []string{WeightsFile, "config.json", "tokenizer.json", "llamacpp_logits.safetensors"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	sum, err := fileSHA256(filepath.Join(dir, WeightsFile))
	if want, _ := SHA256("qwen3"); err != nil || sum != want {
		t.Fatalf("sha256 %s (err %v), want %s", sum, err, want)
	}
}
