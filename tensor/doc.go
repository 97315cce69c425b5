// Package tensor is ftune's n-dimensional array: DType, Shape, Device, views
// (reshape, permute, narrow) that share storage, and the Backend interface
// that executes every op. The CPU backend (float32 compute with float64
// available for gradient checks, bf16 weights converted while a GEMM packs
// its panels) lives here too; a CUDA backend implements the same interface
// from kernels/cuda.
//
// Tensors carry their backend: ops run where their operands live, and
// nothing above this package needs to know which device that is.
//
// Memory: CPU tensors live on Go's heap and are freed by its collector,
// unless released (Release, driven by autograd's lifetimes as on a GPU):
// while a training loop holds the CPU pool (UseCPUPool), a released
// float32 buffer is handed out again to the next allocation it fits,
// instead of Go zeroing a fresh one (cpu_pool.go).
package tensor
