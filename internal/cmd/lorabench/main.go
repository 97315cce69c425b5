// Command lorabench times ftune's CPU LoRA training step on one benchmark
// shape and prints one JSON line (the format torch_cpu_lora.py prints), so
// that bench/cpu_lora.sh can put both sides in one table.
//
//	go run ./internal/cmd/lorabench -shape tiny-base -threads 2 -quant nf4
//	go run ./internal/cmd/lorabench -shape smollm2-135m -family gemma2 -threads 2
//	go run ./internal/cmd/lorabench -shape tiny-base -dpo
//
// -family writes (once, under -cache) a random-weight folder of that model
// family at the shape and times the same step on it (bench/cpu_families.sh).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	"github.com/ftune/ftune/bench"
)

func main() {
	shape := flag.String("shape", "tiny-base", "tiny-base or smollm2-135m")
	threads := flag.Int("threads", 1, "GOMAXPROCS and GEMM worker goroutines")
	quant := flag.String("quant", "f32", "f32 (bf16 frozen weights, float32 compute) or nf4 (QLoRA)")
	precision := flag.String("precision", "f32", "f32 or bf16 (products of bf16-rounded operands on AVX512_BF16 or arm64's BF16: tensor.CPUBF16)")
	family := flag.String("family", "", "random-weight model of this family at -shape: "+strings.Join(bench.Families, ", ")+" (default: the shape's Llama)")
	window := flag.Int("window", bench.DefaultWindow, "sliding window of the gemma2 and gemma3 folders (-family)")
	prepare := flag.Bool("prepare", false, "only write the -family folder (if absent) and print its path: keeps the writing out of a timed run's peak RSS")
	model := flag.String("model", "", "model folder (default: assets/models/tiny-base, or random weights cached under -cache)")
	cache := flag.String("cache", os.TempDir(), "where the random-weight model folder is kept")
	warmup := flag.Int("warmup", 1, "untimed steps")
	steps := flag.Int("steps", 0, "timed steps (0 = 5 for tiny-base, 2 for smollm2-135m, as the torch script)")
	gogc := flag.Int("gogc", 0, "GOGC for the run (0 = leave as is)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the timed steps")
	noPool := flag.Bool("no-pool", false, "leave the step's memory to Go's collector instead of recycling what the step releases (tensor.UseCPUPool), as ftune train does")
	dpo := flag.Bool("dpo", false, "time a DPO step (reference forward, policy forward and backward, AdamW) on max(1, batch/2) pairs, as bench/torch_cpu_dpo.py")
	dpoLoss := flag.String("dpo-loss", "", "with -dpo: the loss type (training.dpo.loss_type; default sigmoid; orpo and simpo run no reference forward)")
	dora := flag.Bool("dora", false, "train DoRA (use_dora) instead of LoRA, as bench/torch_cpu_peft.py --dora")
	dropout := flag.Float64("dropout", 0, "lora_dropout (0: none), as bench/torch_cpu_peft.py --dropout")
	flag.Parse()
	if err := run(*shape, *family, *window, *prepare, *threads, *quant, *precision, *model, *cache, *warmup, *steps, *gogc, *cpuprofile, *noPool, *dpo, *dpoLoss, *dora, *dropout); err != nil {
		fmt.Fprintln(os.Stderr, "lorabench:", err)
		os.Exit(1)
	}
}

func run(shape, family string, window int, prepare bool, threads int, quant, precision, model, cache string, warmup, steps, gogc int, cpuprofile string, noPool, dpo bool, dpoLoss string, dora bool, dropout float64) error {
	s, ok := bench.Shapes[shape]
	if !ok {
		return fmt.Errorf("unknown shape %q (tiny-base or smollm2-135m)", shape)
	}
	if quant != "f32" && quant != "nf4" {
		return fmt.Errorf("unknown -quant %q (f32 or nf4)", quant)
	}
	if precision != "f32" && precision != "bf16" {
		return fmt.Errorf("unknown -precision %q (f32 or bf16)", precision)
	}
	if steps == 0 {
		steps = 5
		if shape != "tiny-base" {
			steps = 2
		}
	}
	if dropout < 0 || dropout >= 1 {
		return fmt.Errorf("-dropout %g: want 0 <= p < 1", dropout)
	}
	if gogc != 0 {
		debug.SetGCPercent(gogc)
	}
	if family != "" && model != "" {
		return fmt.Errorf("-family writes its own random-weight folder; give -model or -family, not both")
	}
	if window != bench.DefaultWindow && family != "gemma2" && family != "gemma3" {
		return fmt.Errorf("-window %d: only the gemma2 and gemma3 folders have a sliding window (-family %q)", window, family)
	}
	if family != "" {
		var err error
		if model, err = bench.RandomFamilyModelDir(cache, s, family, window); err != nil {
			return err
		}
	}
	if prepare {
		if family == "" {
			return fmt.Errorf("-prepare needs -family")
		}
		fmt.Println(model)
		return nil
	}
	if model == "" {
		if shape == "tiny-base" {
			model = "assets/models/tiny-base"
		} else {
			var err error
			if model, err = bench.RandomModelDir(cache, s); err != nil {
				return err
			}
		}
	}
	r := bench.LoRARun{Shape: s, ModelDir: model, Family: family, Threads: threads, NF4: quant == "nf4", BF16: precision == "bf16", Warmup: warmup, Steps: steps, NoPool: noPool, DPO: dpo, DPOLoss: dpoLoss, DoRA: dora, Dropout: dropout}
	var perr error
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		r.Timed = func() { perr = pprof.StartCPUProfile(f) }
		defer pprof.StopCPUProfile()
	}
	res, err := bench.RunLoRA(r)
	if perr != nil {
		return perr
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
