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
// Memory: CPU tensors live on Go's heap and are freed by its collector. A
// training loop may route one micro-batch's allocations through an Arena
// (CPUBackend.SetArena), which hands the same buffers out again every
// micro-batch instead of having Go zero fresh ones; the trainer does this
// by default, and autograd keeps parameter gradients out of it (Persist).
package tensor
