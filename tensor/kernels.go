package tensor

import "github.com/ftune/ftune/kernels/asm"

// The CPU backend's float32 GEMMs run on kernels/asm: packed panels and an
// assembly micro-kernel, with bf16 weights converted while packing.
var (
	sgemm     = asm.Sgemm
	sgemmBF16 = asm.SgemmBF16
)
