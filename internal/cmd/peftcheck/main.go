// Command peftcheck trains adapters with ftune on each tiny family model
// and writes, for each, what scripts/check_peft.py needs to load them with
// PEFT and transformers and compare: the adapter folder as `ftune train`
// writes it, the merged Hugging Face folder as `ftune export` writes it,
// and ftune's logits for a prompt with the adapter attached. It is the
// direction the transformers fixtures do not cover (they load PEFT's files
// into ftune): files ftune writes, read by PEFT itself.
//
//	go run ./internal/cmd/peftcheck OUT
//
// Run from the repository root (the base models are testdata/<family>-tiny,
// whose weights it writes as `go run ./internal/cmd/tinymodels` does);
// meta.json names them relative to that root. scripts/check-peft.sh runs
// both halves.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/internal/tinymodels"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// variant is one adapter configuration trained on every family.
type variant struct {
	name string
	set  func(c *ftune.RunConfig)
}

var variants = []variant{
	{"lora", func(c *ftune.RunConfig) {}},
	{"dora-rslora", func(c *ftune.RunConfig) { c.Training.LoRA.DoRA, c.Training.LoRA.RSLoRA = true, true }},
	{"modules-to-save", func(c *ftune.RunConfig) {
		c.Training.LoRA.ModulesToSave = []string{"embed_tokens", "lm_head"}
	}},
}

// prompt: ids below every tiny family's vocabulary, longer than Phi-3's
// pretraining length (32: LongRoPE's long factors) and the Gemma windows.
var prompt = []int64{0, 412, 87, 1033, 2, 9, 3000, 17, 255, 4095, 64, 700, 5, 1200, 33, 2048, 11, 999, 4000, 3071,
	7, 7, 300, 301, 302, 3071, 11, 2, 999, 4000, 1, 5, 5, 5, 1200, 33, 2048}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: peftcheck OUT   (from the repository root)")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "peftcheck:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	for _, family := range tinymodels.Families() {
		model := filepath.Join("testdata", family+"-tiny")
		if _, err := tinymodels.Ensure(model, family); err != nil {
			return err
		}
		for _, v := range variants {
			dir := filepath.Join(out, family+"-"+v.name)
			if err := writeCase(dir, model, v); err != nil {
				return fmt.Errorf("%s %s: %w", family, v.name, err)
			}
			fmt.Println("wrote", dir)
		}
	}
	return nil
}

func writeCase(dir, model string, v variant) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg := ftune.DefaultConfig()
	cfg.Model.Path = model
	cfg.Training.MaxSteps = 4
	cfg.Training.BatchSize = 2
	cfg.Data.MaxLength = 64
	cfg.Training.Eval.Generation.Questions = 0
	cfg.Training.Tracking.OutputDir = filepath.Join(dir, "run")
	v.set(cfg)
	res, err := ftune.Train(context.Background(), cfg, io.Discard)
	if err != nil {
		return err
	}
	m, err := nn.Load(model, nn.LoadOptions{})
	if err != nil {
		return err
	}
	adapterDir := res.Adapters["default"]
	a, err := lora.Load(m, adapterDir, "default")
	if err != nil {
		return err
	}
	merged := filepath.Join(dir, "merged")
	if err := export.MergedHF(m, a, model, merged, 0); err != nil {
		return err
	}
	if err := a.Attach(m); err != nil {
		return err
	}
	o, err := m.Forward(nil, nn.Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, prompt, 1, len(prompt))}, nn.ForwardOptions{})
	if err != nil {
		return err
	}
	V := m.Config.VocabSize
	err = safetensors.Write(filepath.Join(dir, "ftune.safetensors"), []safetensors.Tensor{
		{Name: "input_ids", DType: safetensors.I64, Shape: []int{1, len(prompt)}, Data: i64Bytes(prompt)},
		{Name: "logits", DType: safetensors.F32, Shape: []int{1, len(prompt), V}, Data: f32Bytes(tensor.F32Data(o.Logits.Value))},
	}, nil)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(dir, adapterDir)
	if err != nil {
		return err
	}
	meta, err := json.MarshalIndent(map[string]string{"base": model, "adapter": rel, "merged": "merged"}, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "meta.json"), meta, 0o644)
}

func i64Bytes(v []int64) []byte {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return b
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}
