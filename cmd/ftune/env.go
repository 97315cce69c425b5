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

// envFacts are what ftune env says, for its text and its --json.
type envFacts struct {
	CPU      string   `json:"cpu"`
	Cores    cores    `json:"cores"`
	Features []string `json:"features"` // the CPU features ftune's kernels use that this CPU has
	Kernels  kernels  `json:"kernels"`
	CPUBF16  cpuBF16  `json:"cpu_bf16"`
	CUDA     cudaFact `json:"cuda"`
	// Memory is null where the machine's memory is not known (then
	// no soft limit is set either).
	Memory *memory `json:"memory"`
	Go     goFact  `json:"go"`
}

// cores says how many CPUs ftune can use: runtime.NumCPU (the process's
// affinity mask) and GOMAXPROCS, which its kernels split work over; the
// machine's count (/proc/cpuinfo) separately when it differs.
// cpuid's PhysicalCores is not used: under a hypervisor it reports the
// host package's topology from CPUID (254 on a 2-vCPU VM), not the CPUs
// this machine has.
type cores struct {
	Usable     int `json:"usable"`
	GOMAXPROCS int `json:"gomaxprocs"`
	Machine    int `json:"machine"` // 0 where /proc/cpuinfo cannot be read
}

type kernels struct {
	Current   string   `json:"current"`
	Available []string `json:"available"`
}

// cpuBF16 is whether --precision bf16 multiplies in bf16 on this CPU,
// with the instructions it needs (ISA, "" when this build has no bf16
// kernel).
type cpuBF16 struct {
	Available bool   `json:"available"`
	ISA       string `json:"isa"`
}

// cudaFact is the GPU a default run would train on: Path describes it
// (precision, GEMM provider, attention kernels, CUDA graphs); Reason
// says why there is none, or why it did not open.
type cudaFact struct {
	Available bool   `json:"available"`
	Path      string `json:"path"`
	Reason    string `json:"reason"`
}

type memory struct {
	TotalBytes     uint64 `json:"total_bytes"`
	AvailableBytes uint64 `json:"available_bytes"`
	GoHeapLimit    string `json:"go_heap_limit"` // the soft limit main set, as ftune says it
}

type goFact struct {
	Version    string `json:"version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	GOMAXPROCS int    `json:"gomaxprocs"`
}

// readEnv gathers envFacts.
func readEnv() envFacts {
	var e envFacts
	c := cpuid.CPU
	e.CPU = c.BrandName
	e.Cores = cores{Usable: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "processor") {
				e.Cores.Machine++
			}
		}
	}
	e.Features = []string{}
	for _, f := range []cpuid.FeatureID{cpuid.AVX2, cpuid.FMA3, cpuid.AVX512F, cpuid.AVX512BF16, cpuid.AMXBF16, cpuid.ASIMD, cpuid.BF16} {
		if c.Supports(f) {
			e.Features = append(e.Features, f.String())
		}
	}
	e.Kernels.Current = string(asm.CurrentImpl())
	for _, k := range asm.Available() {
		e.Kernels.Available = append(e.Kernels.Available, string(k))
	}
	e.CPUBF16 = cpuBF16{Available: asm.BF16DotFast(), ISA: asm.BF16DotISA()}
	if ok, reason := cuda.Available(); ok {
		e.CUDA.Available = true
		if path, err := recipe.DescribeGPU(); err != nil {
			e.CUDA.Reason = "the GPU did not open: " + err.Error()
		} else {
			e.CUDA.Path = path
		}
	} else {
		e.CUDA.Reason = reason
	}
	if total := sysmem.Total(); total > 0 {
		e.Memory = &memory{TotalBytes: total, AvailableBytes: sysmem.Available(), GoHeapLimit: goMemoryLimit}
	}
	e.Go = goFact{Version: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	return e
}

// String is ftune env's text.
func (e envFacts) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cpu:      %s\n", e.CPU)
	fmt.Fprintf(&b, "cores:    %d usable (GOMAXPROCS %d)", e.Cores.Usable, e.Cores.GOMAXPROCS)
	if e.Cores.Machine > 0 && e.Cores.Machine != e.Cores.Usable {
		fmt.Fprintf(&b, " of the machine's %d", e.Cores.Machine)
	}
	fmt.Fprintf(&b, "\nfeatures: %s\n", strings.Join(e.Features, " "))
	fmt.Fprintf(&b, "kernels:  %s (available: %v)\n", e.Kernels.Current, e.Kernels.Available)
	switch isa := e.CPUBF16.ISA; {
	case e.CPUBF16.Available:
		fmt.Fprintf(&b, "cpu bf16: --precision bf16 multiplies bf16-rounded operands on %s (default f32)\n", isa)
	case isa != "":
		fmt.Fprintf(&b, "cpu bf16: unavailable (no %s); the CPU trains in float32\n", isa)
	default:
		fmt.Fprintln(&b, "cpu bf16: unavailable (no bf16 kernel in this build); the CPU trains in float32")
	}
	switch {
	case e.CUDA.Available && e.CUDA.Path == "":
		fmt.Fprintf(&b, "cuda:     available, but %s\n", e.CUDA.Reason)
	case e.CUDA.Available:
		fmt.Fprintf(&b, "cuda:     %s\n", e.CUDA.Path)
	default:
		fmt.Fprintf(&b, "cuda:     unavailable (%s); training runs on the CPU\n", e.CUDA.Reason)
	}
	if m := e.Memory; m != nil {
		fmt.Fprintf(&b, "memory:   %.1f GiB, %.1f GiB available\n", float64(m.TotalBytes)/(1<<30), float64(m.AvailableBytes)/(1<<30))
		fmt.Fprintf(&b, "go heap:  soft limit %s\n", m.GoHeapLimit)
	}
	fmt.Fprintf(&b, "go:       %s %s/%s, GOMAXPROCS %d\n", e.Go.Version, e.Go.OS, e.Go.Arch, e.Go.GOMAXPROCS)
	return b.String()
}

func newEnvCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Show CPU features, kernels in use, CUDA driver/GPU and memory",
		Example: `  ftune env
  ftune env --json   # {"cpu", "cores", "features", "kernels", "cpu_bf16", "cuda", "memory", "go"}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e := readEnv()
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), e)
			}
			fmt.Fprint(cmd.OutOrStdout(), e)
			return nil
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}
