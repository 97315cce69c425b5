// Command loadmodel loads a Hugging Face model folder the way `ftune train`
// does on the CPU (bf16 matrices kept in bf16, or, with -nf4, the decoder
// projections quantized to NF4 as they are read) and prints the time it
// took. bench/load_memory.sh runs it under GNU time for the peak RSS.
//
//	loadmodel [-nf4] DIR
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/quant/nf4"
	"github.com/ftune/ftune/tensor"
)

func main() {
	quantize := flag.Bool("nf4", false, "quantize the decoder projections to NF4 (QLoRA's load)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: loadmodel [-nf4] DIR")
		os.Exit(2)
	}
	opt := nn.LoadOptions{KeepBF16: true}
	if *quantize {
		opt.Quantize = nf4.Quantizer(tensor.CPUDefault())
	}
	start := time.Now()
	m, err := nn.Load(flag.Arg(0), opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadmodel:", err)
		os.Exit(1)
	}
	fmt.Printf("loaded %d layers in %.1f s\n", len(m.Layers), time.Since(start).Seconds())
}
