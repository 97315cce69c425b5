package recipe

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ftune/ftune/tensor"
	cudabackend "github.com/ftune/ftune/tensor/cuda"
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
