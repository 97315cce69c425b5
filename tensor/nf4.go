package tensor

import "fmt"

// NF4Data is a 4-bit NormalFloat tensor (QLoRA): element e is
// NF4Code[nibble e]·Absmax[e/BlockSize], nibbles packed two per byte with
// the first in the high half (bitsandbytes' layout). Double-quantized
// scales are expanded to float32 at load: 0.5 bit per weight more than on
// disk, and one multiply less per block while packing GEMM panels.
type NF4Data struct {
	Packed    []byte
	Absmax    []float32
	BlockSize int
	Len       int // number of elements
}

func (d NF4Data) check() error {
	if d.BlockSize <= 0 || len(d.Packed) != (d.Len+1)/2 || len(d.Absmax) != (d.Len+d.BlockSize-1)/d.BlockSize {
		return fmt.Errorf("tensor: NF4 data of %d elements: %d packed bytes, %d scales for block size %d", d.Len, len(d.Packed), len(d.Absmax), d.BlockSize)
	}
	return nil
}

// FromNF4 makes a frozen NF4 weight tensor; only MatMul (as its right-hand
// operand) and conversions read it.
func FromNF4(b Backend, d NF4Data, shape ...int) *Tensor {
	if d.Len == 0 {
		d.Len = Shape(shape).Numel()
	}
	return FromHost(b, NF4, d, shape...)
}
