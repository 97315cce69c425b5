package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/kernels/cuda"
)

func TestParseStepDefaultsAndRefusals(t *testing.T) {
	f, err := parseStep([]string{"-shape", "llama-3.2-1b"})
	if err != nil {
		t.Fatal(err)
	}
	if f.batch != 4 || f.seq != 2048 || f.rank != 16 || f.gemmProvider != "auto" || f.variant() != "bf16" {
		t.Errorf("defaults for llama-3.2-1b: %+v (variant %q)", f, f.variant())
	}
	f, err = parseStep([]string{"-shape", "llama-3.1-8b-maxctx", "-nf4", "-rank", "32", "-seq", "90000", "-max-device-memory-gib", "24", "-gemm-provider", "FTUNE"})
	if err != nil {
		t.Fatal(err)
	}
	if f.batch != 1 || f.seq != 90000 || f.maxDeviceMemoryGiB != 24 || f.gemmProvider != "ftune" || f.variant() != "nf4 r32 ftune-gemm" {
		t.Errorf("maxctx flags: %+v (variant %q)", f, f.variant())
	}
	if f, err = parseStep([]string{"-ckpt", "-offload", "-mlp-chunk", "4096"}); err != nil || !f.offload || f.mlpChunk != 4096 || f.variant() != "bf16 offload mlp-chunk4096" {
		t.Errorf("-ckpt -offload -mlp-chunk 4096: %v (variant %q)", err, f.variant())
	}
	if f, err = parseStep([]string{"-attention-kernel", "simt"}); err != nil || f.variant() != "bf16 simt-attention" {
		t.Errorf("-attention-kernel simt: %v (variant %q)", err, f.variant())
	}
	if f, err = parseStep([]string{"-lora-dropout", "0.05", "-wgmma"}); err != nil || f.variant() != "bf16 wgmma dropout0.05" {
		t.Errorf("-lora-dropout 0.05 -wgmma: %v (variant %q)", err, f.variant())
	}
	if f, err = parseStep([]string{"-wgmma", "-wgmma-loads", "tma-ws"}); err != nil || f.variant() != "bf16 wgmma-tma-ws" {
		t.Errorf("-wgmma -wgmma-loads tma-ws: %v (variant %q)", err, f.variant())
	}
	if _, err = parseStep([]string{"-lora-dropout", "1"}); err == nil {
		t.Error("-lora-dropout 1 accepted")
	}
	if f, err = parseStep([]string{"-unfused-lora"}); err != nil || f.variant() != "bf16 unfused-lora" {
		t.Errorf("-unfused-lora: %v (variant %q)", err, f.variant())
	}
	if _, err = parseStep([]string{"-unfused-lora", "-cpu"}); err == nil || !strings.Contains(err.Error(), "drop the flag") {
		t.Errorf("-unfused-lora -cpu: err %v, want a refusal", err)
	}
	for args, want := range map[string]string{
		"-shape llama-9b":             `unknown shape "llama-9b"`,
		"-batch -1":                   "want batch ≥ 1",
		"-rank 0":                     "-rank 0",
		"-steps 0":                    "want steps ≥ 1",
		"-nf4 -f32":                   "drop -f32",
		"-offload":                    "add -ckpt",
		"-cpu -ckpt -offload":         "the CPU's memory is host memory already",
		"-mlp-chunk -1":               "-mlp-chunk -1",
		"-max-device-memory-gib -2":   "want ≥ 0",
		"extra":                       `unexpected argument "extra"`,
		"-shape smollm2-135m -seq 1":  "seq ≥ 2",
		"-gemm-provider cublas":       `gemm provider "cublas" (want auto, ftune, cublaslt)`,
		"-cpu -gemm-provider ftune":   "the CPU has its own kernels",
		"-attention-kernel sdpa":      "-attention-kernel",
		"-wgmma-loads tma":            "add -wgmma",
		"-wgmma -wgmma-loads bulk":    `-wgmma-loads "bulk": want one of cp.async, tma, tma-ws`,
		"-cpu -attention-kernel simt": "the CPU has its own kernels",
	} {
		if _, err := parseStep(strings.Fields(args)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseStep(%s): got %v, want an error saying %q", args, err, want)
		}
	}
	// -host-only runs no device work: only the simulator can, so a real
	// driver's build refuses it; with -cpu it would time nothing.
	_, err = parseStep([]string{"-host-only"})
	switch {
	case cuda.Simulated && err != nil:
		t.Errorf("-host-only on the simulated driver: %v", err)
	case !cuda.Simulated && (err == nil || !strings.Contains(err.Error(), "-tags cudasim")):
		t.Errorf("-host-only on a real driver: got %v, want a refusal naming -tags cudasim", err)
	}
	want := "-tags cudasim"
	if cuda.Simulated {
		want = "drop -cpu"
	}
	if _, err := parseStep([]string{"-host-only", "-cpu"}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("-host-only -cpu: got %v, want a refusal saying %q", err, want)
	}
}

func TestRowsMergesAnchorAndFtune(t *testing.T) {
	dir := t.TempDir()
	anchor := filepath.Join(dir, "gpubench.json")
	ftune := filepath.Join(dir, "ftune.jsonl")
	out := filepath.Join(dir, "gpu-lora-h200-2026-12-05.jsonl")
	os.WriteFile(anchor, []byte(`{"peft_lora_bf16_sdpa": {"smollm2-135m_b8_t2048_ckpt0": {"step_s": 0.25, "tokens_per_s": 65400.0, "peak_mem_gib": 28.4}}}`), 0o644)
	os.WriteFile(ftune, []byte(`{"shape":"smollm2-135m","side":"ftune","batch":8,"seq":2048,"variant":"bf16","tokens_per_s":32700,"peak_gib":14.2}`+"\n"+
		`{"shape":"llama-3.1-8b-maxctx","side":"ftune","batch":1,"seq":90000,"seq_len":90000,"variant":"nf4 r32","tokens_per_s":900,"peak_gib":23.5}`+"\n"), 0o644)
	var stdout bytes.Buffer
	if err := run([]string{"rows", "-anchor", anchor, "-ftune", ftune, "-o", out}, &stdout); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `"side":"peft"`) || !strings.Contains(lines[2], `"seq_len":90000`) || strings.Contains(lines[1], "seq_len") {
		t.Errorf("rows file:\n%s", data)
	}
	if !strings.Contains(stdout.String(), "| smollm2-135m | 8 × 2048 | ftune | bf16 | 32700 | 14.20 | 0.50× | 0.50× |") {
		t.Errorf("table:\n%s", stdout.String())
	}
	if err := run([]string{"rows", "-o", out}, &stdout); err == nil {
		t.Error("rows without -ftune accepted")
	}
	if err := run([]string{"bogus"}, &stdout); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown subcommand: %v", err)
	}
}

// The whole step (random model, LoRA, the trainer's steps with its host
// AdamW, the profile and the row) runs here on the CPU backend at a tiny
// size: what the GPU run does, less the device (whose optimizer path the
// trainer picks through the profiler: train's TestOptimizerPathSeesThroughAWrapper).
func TestStepDryRunOnTheCPU(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "profile.md")
	var out bytes.Buffer
	if err := run([]string{"step", "-cpu", "-shape", "tiny-base", "-batch", "1", "-seq", "16", "-warmup", "1", "-steps", "1", "-cache", dir, "-profile", prof}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"shape":"tiny-base","side":"ftune","batch":1,"seq":16`) || !strings.Contains(out.String(), `"tokens_per_s":`) ||
		!strings.Contains(out.String(), `"optimizer":"host: optim's AdamW on the parameters in place"`) || strings.Contains(out.String(), "gemm_provider") {
		t.Errorf("row: %s", out.String())
	}
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"### tiny-base, 1 × 16", "| gemm |", "| attention |", "| optimizer (host) | 1 |", "| host gaps |", "optimizer step: host: optim's AdamW"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("profile lacks %q:\n%s", want, b)
		}
	}
}
