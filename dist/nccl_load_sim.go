//go:build cudasim

package dist

import "errors"

// loadNCCL: under the CUDA simulator (-tags cudasim) device pointers are Go
// memory, which a real NCCL would read as GPU addresses and crash on, so it
// is never opened (as kernels/cuda never opens cuBLASLt there).
func loadNCCL() (*ncclLib, error) {
	return nil, errors.New("nccl: not opened under the CUDA simulator (-tags cudasim): its device pointers are host memory")
}
