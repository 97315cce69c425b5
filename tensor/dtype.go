package tensor

import (
	"fmt"

	"github.com/ftune/ftune/internal/half"
)

// DType is the element type of a tensor's storage.
type DType uint8

const (
	F32  DType = iota + 1 // float32: compute type on the CPU
	F64                   // float64: gradient checks and references
	BF16                  // bfloat16: stored weights (converted while packing GEMM panels)
	F16                   // float16: loaded and converted
	I32                   // int32
	I64                   // int64: token ids and labels as Hugging Face writes them
	NF4                   // 4-bit NormalFloat weights (QLoRA): packed nibbles + block absmax
)

// Size is the width of one element in bytes.
func (d DType) Size() int {
	switch d {
	case F32, I32:
		return 4
	case F64, I64:
		return 8
	case BF16, F16:
		return 2
	}
	return 0
}

// IsFloat reports whether d holds floating-point values.
func (d DType) IsFloat() bool { return d == F32 || d == F64 || d == BF16 || d == F16 }

func (d DType) String() string {
	switch d {
	case F32:
		return "F32"
	case F64:
		return "F64"
	case BF16:
		return "BF16"
	case F16:
		return "F16"
	case I32:
		return "I32"
	case I64:
		return "I64"
	case NF4:
		return "NF4"
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// BF16ToF32 widens one bfloat16 bit pattern; exact.
func BF16ToF32(b uint16) float32 { return half.BF16ToF32(b) }

// F32ToBF16 rounds to nearest even as torch does; every NaN becomes the
// quiet NaN 0x7FC0 (half.F32ToBF16, the one rounding of the Go code).
func F32ToBF16(f float32) uint16 { return half.F32ToBF16(f) }

// F16ToF32 widens an IEEE half bit pattern; exact, subnormals included.
func F16ToF32(h uint16) float32 { return half.F16ToF32(h) }

// F32ToF16 rounds to nearest even; overflow goes to ±Inf.
func F32ToF16(f float32) uint16 { return half.F32ToF16(f) }
