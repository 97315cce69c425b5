// Command randommodel writes a Hugging Face folder of random bf16 weights at
// one of bench's shapes, with tiny-base's tokenizer, and optionally a LoRA
// adapter for it, for benchmarks that need a full-size model without
// downloading one (bench/export_memory.sh).
//
//	randommodel -shape llama-3.2-1b [-cache DIR] [-adapter DIR]
//
// It prints the model folder. The folder is built once per shape under
// -cache (bench.RandomModelDir). The adapter (r=16, alpha=32 on all seven
// projections) has PEFT's initial A and every B entry 1e-3, so merging it
// changes every adapted weight.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/bench"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "randommodel:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("randommodel", flag.ContinueOnError)
	shape := fs.String("shape", "", "one of bench.Shapes or bench.GPUShapes")
	cache := fs.String("cache", os.TempDir(), "folder the model folder is built in (once per shape)")
	adapter := fs.String("adapter", "", "also write a LoRA adapter for the model into this folder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, ok := bench.GPUShapes[*shape]
	if !ok {
		s, ok = bench.Shapes[*shape]
	}
	if !ok {
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range bench.GPUShapes {
				yield(n)
			}
			for n := range bench.Shapes {
				if _, dup := bench.GPUShapes[n]; !dup {
					yield(n)
				}
			}
		})
		return fmt.Errorf("-shape %q: want one of %s", *shape, strings.Join(names, ", "))
	}
	dir, err := bench.RandomModelDir(*cache, s)
	if err != nil {
		return err
	}
	// The tokenizer only has to load: tiny-base's ids are all below any
	// shape's vocabulary.
	tiny, err := assets.Model(assets.TinyBase)
	if err != nil {
		return err
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} {
		if err := copyFile(filepath.Join(tiny, f), filepath.Join(dir, f)); err != nil {
			return err
		}
	}
	if *adapter != "" {
		if err := writeAdapter(dir, *adapter); err != nil {
			return err
		}
	}
	fmt.Println(dir)
	return nil
}

func writeAdapter(modelDir, out string) error {
	m, err := nn.Load(modelDir, nn.LoadOptions{KeepBF16: true})
	if err != nil {
		return err
	}
	a, err := lora.New(m, lora.NewConfig(16, 32, "all-linear"), "default", 1)
	if err != nil {
		return err
	}
	for _, l := range a.Layers {
		b := make([]float32, l.B.Value.Shape().Numel())
		for i := range b {
			b[i] = 1e-3
		}
		l.B.Value.CopyFrom(tensor.FromF32(m.Backend, b, l.B.Value.Shape()...))
	}
	a.Config.BaseModelNameOrPath = modelDir
	return a.Save(out)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(dst, b, 0o644)
}
