package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/klauspost/cpuid/v2"
	"github.com/spf13/cobra"

	"github.com/ftune/ftune/internal/sysmem"
	"github.com/ftune/ftune/kernels/asm"
	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/recipe"
)

// coresLine says how many CPUs ftune can use: runtime.NumCPU (the
// process's affinity mask) and GOMAXPROCS, which its kernels split work
// over; the machine's count (/proc/cpuinfo) separately when it differs.
// cpuid's PhysicalCores is not used: under a hypervisor it reports the
// host package's topology from CPUID (254 on a 2-vCPU VM), not the CPUs
// this machine has.
func coresLine() string {
	s := fmt.Sprintf("%d usable (GOMAXPROCS %d)", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "processor") {
				n++
			}
		}
		if n > 0 && n != runtime.NumCPU() {
			s += fmt.Sprintf(" of the machine's %d", n)
		}
	}
	return s
}

func newEnvCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "env",
		Short:   "Show CPU features, kernels in use, CUDA driver/GPU and memory",
		Example: "  ftune env",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			c := cpuid.CPU
			fmt.Fprintf(w, "cpu:      %s\n", c.BrandName)
			fmt.Fprintf(w, "cores:    %s\n", coresLine())
			var feats []string
			for _, f := range []cpuid.FeatureID{cpuid.AVX2, cpuid.FMA3, cpuid.AVX512F, cpuid.AVX512BF16, cpuid.AMXBF16, cpuid.ASIMD, cpuid.BF16} {
				if c.Supports(f) {
					feats = append(feats, f.String())
				}
			}
			fmt.Fprintf(w, "features: %s\n", strings.Join(feats, " "))
			fmt.Fprintf(w, "kernels:  %s (available: %v)\n", asm.CurrentImpl(), asm.Available())
			switch isa := asm.BF16DotISA(); {
			case asm.BF16DotFast():
				fmt.Fprintf(w, "cpu bf16: --precision bf16 multiplies bf16-rounded operands on %s (default f32)\n", isa)
			case isa != "":
				fmt.Fprintf(w, "cpu bf16: unavailable (no %s); the CPU trains in float32\n", isa)
			default:
				fmt.Fprintln(w, "cpu bf16: unavailable (no bf16 kernel in this build); the CPU trains in float32")
			}
			if ok, reason := cuda.Available(); ok {
				// The path a default run takes: precision, GEMM provider,
				// attention kernels, CUDA graphs.
				if path, err := recipe.DescribeGPU(); err != nil {
					fmt.Fprintf(w, "cuda:     available, but the GPU did not open: %v\n", err)
				} else {
					fmt.Fprintf(w, "cuda:     %s\n", path)
				}
			} else {
				fmt.Fprintf(w, "cuda:     unavailable (%s); training runs on the CPU\n", reason)
			}
			if total := sysmem.Total(); total > 0 {
				fmt.Fprintf(w, "memory:   %.1f GiB, %.1f GiB available\n", float64(total)/(1<<30), float64(sysmem.Available())/(1<<30))
				fmt.Fprintf(w, "go heap:  soft limit %s\n", goMemoryLimit)
			}
			fmt.Fprintf(w, "go:       %s %s/%s, GOMAXPROCS %d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))
			return nil
		},
	}
}
