// Package cudabackend runs tensor ops on an NVIDIA GPU: it implements
// tensor.Backend over kernels/cuda, so the same model code (nn, autograd,
// lora) trains on the GPU by loading with nn.LoadOptions{Backend: b}.
//
// Storage lives on the device, handed out by kernels/cuda's caching
// allocator and returned to it when the Go storage object is collected. All
// work is queued in order on the device's legacy default stream, so a block
// freed by the collector is reused only by work queued after everything that
// read it; ToHost waits for the queued work.
//
// DTypes: F32 (compute), BF16 (stored weights, bf16 GEMM operands), F64
// (host round trips and references; elementwise ops only), I32 and I64
// (ids, labels and masks; I64 stays int64 on the device and is narrowed to
// int32 with a range check where a kernel indexes with int32), and NF4
// (QLoRA weights: MatMul's right-hand operand, dequantized on the device). F16
// storage is not supported (tensor.ErrUnsupported).
//
// Two compute modes: the default keeps every GEMM in float32 on the SIMT
// cores (bf16 weights widened to float32 first), which is the parity path
// that matches the CPU backend to float32 rounding; Options.BF16MatMul
// casts the operands to bf16 and uses the tensor-core GEMM (float32
// accumulation), the training path.
//
// See README.md for the op and dtype table and what returns
// tensor.ErrUnsupported.
package cudabackend
