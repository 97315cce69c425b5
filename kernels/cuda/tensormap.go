package cuda

import "fmt"

// TensorMap is a CUtensorMap: the 128-byte descriptor of a global-memory
// tensor that the Tensor Memory Accelerator (compute capability 9.0)
// copies boxes of into shared memory. Its content is the driver's own
// encoding (cuTensorMapEncodeTiled); kernels take it by value.
type TensorMap [16]uint64

// The CUtensorMap enumerations ftune uses (cuda.h's values).
const (
	tensorMapBFloat16    = 9 // CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
	tensorMapSwizzle128B = 3 // CU_TENSOR_MAP_SWIZZLE_128B
	tensorMapL2Promo128B = 2 // CU_TENSOR_MAP_L2_PROMOTION_L2_128B
)

// tensorMapBF16 encodes the map of a row-major bf16 matrix [rows, cols] at
// p (leading dimension ld elements) copied in boxes of boxRows × boxCols
// elements with the 128-byte swizzle (boxCols·2 must be at most 128: the
// swizzle's span). Elements of a box past the matrix arrive as zeros. The
// driver requires p 16-byte aligned and the row pitch (ld·2 bytes) a
// multiple of 16 (checked here: ErrBadArgument); what else it refuses comes
// back with its error code.
// A zero extent is encoded as 1: the kernels never load such a map.
func (d *Device) tensorMapBF16(p Ptr, rows, cols, ld, boxRows, boxCols int) (*TensorMap, error) {
	if p%16 != 0 || ld%8 != 0 || boxCols*2 > 128 {
		return nil, badArg("tensor map of a [%d,%d] bf16 matrix at %#x, ld %d, box %d×%d: needs a 16-byte aligned address, ld a multiple of 8 and a box at most 64 wide", rows, cols, p, ld, boxRows, boxCols)
	}
	dims := [2]uint64{uint64(max(cols, 1)), uint64(max(rows, 1))}
	strides := [1]uint64{uint64(max(ld, 8)) * 2}
	box := [2]uint32{uint32(boxCols), uint32(boxRows)}
	elem := [2]uint32{1, 1}
	m := new(TensorMap)
	err := d.call("cuTensorMapEncodeTiled", func() int32 {
		return cuTensorMapEncodeTiled(m, tensorMapBFloat16, 2, uint64(p), &dims[0], &strides[0], &box[0], &elem[0], 0, tensorMapSwizzle128B, tensorMapL2Promo128B, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("tensor map of a [%d,%d] bf16 matrix (ld %d, box %d×%d): %w", rows, cols, ld, boxRows, boxCols, err)
	}
	return m, nil
}
