package nf4

import "github.com/ftune/ftune/tensor"

// Quantizer returns an nn.LoadOptions.Quantize function that stores each
// projection weight in NF4 (blocks of 64, double quantization, as
// bitsandbytes' load_in_4bit), on backend b. Only the 4-bit data and the
// block scales stay in memory; GEMMs dequantize panels while packing.
func Quantizer(b tensor.Backend) func(name string, w []float32, shape []int) (*tensor.Tensor, error) {
	return func(name string, w []float32, shape []int) (*tensor.Tensor, error) {
		q, err := Quantize(w, shape)
		if err != nil {
			return nil, err
		}
		return ToTensor(b, q), nil
	}
}

// ToTensor wraps a quantized weight as a tensor: double-quantized scales
// expanded to float32 (what the CPU backend keeps) and, with them, the
// double quantization itself (what the CUDA backend keeps on the device).
func ToTensor(b tensor.Backend, q *Weight) *tensor.Tensor {
	absmax := make([]float32, q.NumBlocks())
	for i := range absmax {
		absmax[i] = q.BlockAbsmax(i)
	}
	d := tensor.NF4Data{Packed: q.Packed, Absmax: absmax, BlockSize: q.BlockSize, Len: q.Len()}
	if q.Nested {
		d.Nested = &tensor.NF4Nested{QAbsmax: q.QAbsmax, NestedAbsmax: q.NestedAbsmax, NestedCode: q.NestedCode,
			NestedBlockSize: q.NestedBlockSize, Offset: q.Offset}
	}
	return tensor.FromNF4(b, d, q.Shape...)
}
