package cuda

// NF4Nested is the double quantization of an NF4 weight's block scales
// (bitsandbytes' compress_statistics, bnb_4bit_use_double_quant), on the
// device as quant/nf4.Weight holds it:
//
//	absmax[b] = NestedCode[QAbsmax[b]] * NestedAbsmax[b / NestedBlockSize] + Offset
//
// the product and the sum each rounded to float32 (no fused multiply-add,
// as bitsandbytes), so the kernels' scales equal the host's BlockAbsmax bit
// for bit. Per parameter at block size 64 it is 8/64 + 32/(64·256) = 0.127
// bits of scale instead of the float32 absmax's 0.5.
type NF4Nested struct {
	QAbsmax         Ptr // uint8, one per block
	NestedAbsmax    Ptr // float32, one per NestedBlockSize blocks
	NestedCode      Ptr // float32 [256], the 8-bit code book (bitsandbytes' dynamic map)
	NestedBlockSize int // 256 in bitsandbytes
	Offset          float32
}

// NF4DQDequant is NF4Dequant with double-quantized scales q: it expands n
// NF4 codes (packed two per byte, high nibble first), blocksize elements per
// scale, into out (f32, or bf16 rounded to nearest even).
func (d *Device) NF4DQDequant(s Stream, t DType, out, packed Ptr, n int64, blocksize int, q NF4Nested) error {
	if n < 0 || blocksize <= 0 || q.NestedBlockSize <= 0 {
		return badArg("NF4DQDequant: n=%d blocksize=%d nested blocksize=%d", n, blocksize, q.NestedBlockSize)
	}
	args := new(Args).Ptr(out).Ptr(packed).Ptr(q.QAbsmax).Ptr(q.NestedAbsmax).Ptr(q.NestedCode).F32(q.Offset).Int(q.NestedBlockSize).I64(n).Int(blocksize)
	return d.launch1D(s, kernelName("nf4dq_dequant", "fwd", t), (n+7)/8, args)
}
