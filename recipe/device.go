package recipe

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
)

// Backend resolves a device name: "cpu"; "cuda" or "cuda:N" (an error when
// no GPU is usable); "auto" or "" (a GPU when the driver and a device are
// there, else the CPU). bf16 selects tensor-core GEMMs with bf16 operands
// on the GPU instead of float32 ones.
func Backend(device string, bf16 bool) (tensor.Backend, error) {
	d := strings.ToLower(strings.TrimSpace(device))
	switch {
	case d == "cpu":
		return tensor.CPUDefault(), nil
	case d == "" || d == "auto":
		if ok, _ := cudabackend.Available(); ok {
			if b, err := cudabackend.Open(cudabackend.Options{BF16MatMul: bf16}); err == nil {
				return b, nil
			}
		}
		return tensor.CPUDefault(), nil
	case d == "cuda" || strings.HasPrefix(d, "cuda:"):
		n := 0
		if i := strings.IndexByte(d, ':'); i >= 0 {
			var err error
			if n, err = strconv.Atoi(d[i+1:]); err != nil || n < 0 {
				return nil, fmt.Errorf("recipe: device %q: want cuda:N with N ≥ 0", device)
			}
		}
		return cudabackend.Open(cudabackend.Options{Device: n, BF16MatMul: bf16})
	}
	return nil, fmt.Errorf("recipe: device %q (want auto, cpu, cuda or cuda:N)", device)
}

// peakFLOPS is the dense peak of the device a backend runs on, for model
// FLOP utilisation: datasheet figures of the GPUs ftune targets (bf16 tensor
// cores when bf16, else float32 CUDA cores); 0 (unknown: no MFU reported)
// for the CPU and other GPUs.
func peakFLOPS(be tensor.Backend, bf16 bool) float64 {
	cb, ok := be.(*cudabackend.Backend)
	if !ok {
		return 0
	}
	name := cb.CUDADevice().Name
	table := []struct {
		match      string
		bf16, fp32 float64
	}{
		{"H200", 989e12, 67e12},
		{"H100", 989e12, 67e12}, // SXM; PCIe boards are lower, so MFU reads high there
		{"A100", 312e12, 19.5e12},
		{"L40S", 362e12, 91.6e12},
		{"A10G", 70e12, 31.2e12},
	}
	for _, row := range table {
		if strings.Contains(name, row.match) {
			if bf16 {
				return row.bf16
			}
			return row.fp32
		}
	}
	return 0
}

// paramCount is the number of model parameters (a tied embedding once).
func paramCount(ps map[string]*autograd.Var) int {
	n := 0
	for _, v := range ps {
		n += v.Value.Numel()
	}
	return n
}
