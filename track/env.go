package track

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/cpuid/v2"

	"github.com/ftune/ftune/internal/sysmem"
)

// Env is the machine and build a run used: env.json.
type Env struct {
	Time         time.Time `json:"time"`
	Hostname     string    `json:"hostname,omitempty"`
	GOOS         string    `json:"goos"`
	GOARCH       string    `json:"goarch"`
	GoVersion    string    `json:"go_version"`
	FtuneVersion string    `json:"ftune_version"`
	NumCPU       int       `json:"num_cpu"`
	GOMAXPROCS   int       `json:"gomaxprocs"`
	MemoryBytes  uint64    `json:"memory_bytes,omitempty"` // total RAM where known (Linux)
	// GoMemoryLimitBytes is the Go collector's soft memory limit in force
	// (the ftune command sets 90% of the memory the process may use;
	// GOMEMLIMIT sets another); absent when there is none.
	GoMemoryLimitBytes int64  `json:"go_memory_limit_bytes,omitempty"`
	CPU                CPUEnv `json:"cpu"`
	GPU                string `json:"gpu,omitempty"`       // what the GPU function reported
	GPUError           string `json:"gpu_error,omitempty"` // why it reported none
	// GPUPath names the GPU code path the run trained on (nil on the CPU).
	GPUPath *GPUPathEnv `json:"gpu_path,omitempty"`
	VCS     *VCSEnv     `json:"vcs,omitempty"`
	// WorldSize and Engine: the data-parallel workers of the job and what
	// carries their collectives ("single" for one process).
	WorldSize int    `json:"world_size,omitempty"`
	Engine    string `json:"engine,omitempty"`
	// Ranks describes each worker by rank: its host and device.
	Ranks []string `json:"ranks,omitempty"`
	// WorkingDir is the folder the run started in: the relative paths of
	// its config.yaml (data files, a template file) are relative to it.
	WorkingDir string `json:"working_dir,omitempty"`
}

// GPUPathEnv is the GPU code path of a run: the precision, which GEMM
// provider and attention kernels ran, whether the step was captured as a
// CUDA graph, and the device-memory cap.
type GPUPathEnv struct {
	Device          string `json:"device"`
	Capability      string `json:"compute_capability"`
	Precision       string `json:"precision"`
	GEMM            string `json:"gemm"`
	Attention       string `json:"attention"`
	LoRA            string `json:"lora,omitempty"`
	Graphs          bool   `json:"cuda_graphs"`
	MaxDeviceMemory int64  `json:"max_device_memory_bytes,omitempty"`
	// Optimizer is where the optimizer step runs: on the device (the
	// fused AdamW) or on the host, and why (train.OptimizerPath).
	Optimizer string `json:"optimizer,omitempty"`
}

// WithGPU records the GPU (describe, as EnvOptions.GPU) and its code path
// in env.json. It sets fields of the env options, so it must come after
// WithEnv, which replaces them; nil arguments leave them as they are.
func WithGPU(describe func() (string, error), path *GPUPathEnv) Option {
	return func(o *options) {
		if describe != nil {
			o.env.GPU = describe
		}
		if path != nil {
			o.env.GPUPath = path
		}
	}
}

// CPUEnv is what github.com/klauspost/cpuid reports.
type CPUEnv struct {
	Brand          string   `json:"brand"`
	Vendor         string   `json:"vendor"`
	Family         int      `json:"family"`
	Model          int      `json:"model"`
	PhysicalCores  int      `json:"physical_cores"`
	LogicalCores   int      `json:"logical_cores"`
	ThreadsPerCore int      `json:"threads_per_core"`
	CacheL1D       int      `json:"cache_l1d"`
	CacheL2        int      `json:"cache_l2"`
	CacheL3        int      `json:"cache_l3"`
	Features       []string `json:"features"`
}

// VCSEnv is the commit the binary was built from (go build's VCS stamp).
type VCSEnv struct {
	System   string `json:"system"`
	Revision string `json:"revision"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified"`
}

// EnvOptions supplies what this package cannot find itself.
type EnvOptions struct {
	// Version is ftune's version; "" = the module version from the build
	// info ("(devel)" for a plain go build).
	Version string
	// GPU describes the accelerator in use (e.g. "NVIDIA H100 80GB HBM3,
	// driver 550.54, CUDA 12.4"); nil or an error records none.
	GPU func() (string, error)
	// WorldSize and Engine describe the data-parallel job (0 and "": not
	// recorded).
	WorldSize int
	Engine    string
	Ranks     []string // per rank: host and device
	// GPUPath is the GPU code path (nil: none recorded).
	GPUPath *GPUPathEnv
}

// CaptureEnv describes this process's machine and build.
func CaptureEnv(o EnvOptions) Env {
	c := cpuid.CPU
	e := Env{
		Time:       time.Now().UTC(),
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		GoVersion:  runtime.Version(),
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPU: CPUEnv{
			Brand: strings.TrimSpace(c.BrandName), Vendor: c.VendorID.String(),
			Family: c.Family, Model: c.Model,
			PhysicalCores: c.PhysicalCores, LogicalCores: c.LogicalCores, ThreadsPerCore: c.ThreadsPerCore,
			CacheL1D: c.Cache.L1D, CacheL2: c.Cache.L2, CacheL3: c.Cache.L3,
			Features: c.FeatureSet(),
		},
		MemoryBytes:  sysmem.Total(),
		FtuneVersion: o.Version,
		WorldSize:    o.WorldSize,
		Engine:       o.Engine,
		Ranks:        o.Ranks,
		GPUPath:      o.GPUPath,
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 { // -1 reads it
		e.GoMemoryLimitBytes = l
	}
	e.Hostname, _ = os.Hostname()
	e.WorkingDir, _ = os.Getwd()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if e.FtuneVersion == "" {
			e.FtuneVersion = bi.Main.Version
		}
		e.VCS = vcsFrom(bi.Settings)
	}
	if e.FtuneVersion == "" {
		e.FtuneVersion = "(devel)"
	}
	if o.GPU != nil {
		g, err := o.GPU()
		if err != nil {
			e.GPUError = err.Error()
		} else {
			e.GPU = g
		}
	}
	return e
}

func vcsFrom(settings []debug.BuildSetting) *VCSEnv {
	var v VCSEnv
	for _, s := range settings {
		switch s.Key {
		case "vcs":
			v.System = s.Value
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	if v.Revision == "" {
		return nil // go test and go run binaries carry no VCS stamp
	}
	return &v
}

// Summary is the env on one line, for `ftune runs show`.
func (e Env) Summary() string {
	var b strings.Builder
	b.WriteString(e.CPU.Brand)
	if e.CPU.Brand == "" {
		b.WriteString("unknown CPU")
	}
	b.WriteString(" (" + strconv.Itoa(e.NumCPU) + " threads")
	for _, f := range []string{"AVX512F", "AVX2", "FMA3", "ASIMD"} {
		for _, have := range e.CPU.Features {
			if have == f {
				b.WriteString(", " + f)
			}
		}
	}
	b.WriteString("), " + e.GOOS + "/" + e.GOARCH + ", " + e.GoVersion)
	if e.GPU != "" {
		b.WriteString(", GPU " + e.GPU)
	}
	if p := e.GPUPath; p != nil {
		graphs := "off"
		if p.Graphs {
			graphs = "on"
		}
		b.WriteString(" (" + p.Precision + ", CUDA graphs " + graphs + ")")
	}
	if e.WorldSize > 1 {
		b.WriteString(", " + strconv.Itoa(e.WorldSize) + " workers over " + e.Engine)
	}
	if e.FtuneVersion != "" {
		b.WriteString(", ftune " + e.FtuneVersion)
	}
	if e.VCS != nil {
		rev := e.VCS.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		b.WriteString(" @ " + rev)
		if e.VCS.Modified {
			b.WriteString("+dirty")
		}
	}
	return b.String()
}
