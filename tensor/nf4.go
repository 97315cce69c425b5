package tensor

import "fmt"

// NF4Data is a 4-bit NormalFloat tensor (QLoRA): element e is
// NF4Code[nibble e]·Absmax[e/BlockSize], nibbles packed two per byte with
// the first in the high half (bitsandbytes' layout). Absmax always holds
// the float32 scales (double-quantized ones expanded: the CPU backend keeps
// them, one multiply less per block while packing GEMM panels); Nested,
// when set, is the double quantization they came from, which a backend may
// keep instead (the CUDA backend does: 0.127 instead of 0.5 bit per weight).
type NF4Data struct {
	Packed    []byte
	Absmax    []float32
	BlockSize int
	Len       int // number of elements
	Nested    *NF4Nested
}

// NF4Nested is bitsandbytes' double quantization of the block scales
// (quant/nf4.Weight's fields of the same names): Absmax[b] =
// float32(NestedCode[QAbsmax[b]]·NestedAbsmax[b/NestedBlockSize]) + Offset.
type NF4Nested struct {
	QAbsmax         []uint8   // one per block
	NestedAbsmax    []float32 // one per NestedBlockSize blocks
	NestedCode      []float32 // 256
	NestedBlockSize int
	Offset          float32
}

func (d NF4Data) check() error {
	if d.BlockSize <= 0 || len(d.Packed) != (d.Len+1)/2 || len(d.Absmax) != (d.Len+d.BlockSize-1)/d.BlockSize {
		return fmt.Errorf("tensor: NF4 data of %d elements: %d packed bytes, %d scales for block size %d", d.Len, len(d.Packed), len(d.Absmax), d.BlockSize)
	}
	if q := d.Nested; q != nil {
		if q.NestedBlockSize <= 0 || len(q.QAbsmax) != len(d.Absmax) || len(q.NestedCode) != 256 ||
			len(q.NestedAbsmax) != (len(d.Absmax)+q.NestedBlockSize-1)/q.NestedBlockSize {
			return fmt.Errorf("tensor: NF4 double quantization of %d blocks: %d codes, %d nested scales for nested block size %d, code book of %d (want 256)",
				len(d.Absmax), len(q.QAbsmax), len(q.NestedAbsmax), q.NestedBlockSize, len(q.NestedCode))
		}
	}
	return nil
}

// Check reports whether d is consistent: packed bytes and scales for Len
// elements, and Nested's lengths when set.
func (d NF4Data) Check() error { return d.check() }

// FromNF4 makes a frozen NF4 weight tensor; only MatMul (as its right-hand
// operand) and conversions read it.
func FromNF4(b Backend, d NF4Data, shape ...int) *Tensor {
	if d.Len == 0 {
		d.Len = Shape(shape).Numel()
	}
	return FromHost(b, NF4, d, shape...)
}
