package cuda

// DropoutMask fills the n float32 elements at m with the dropout mask drawn
// at position pos of the stream key (dropout.cu; bit for bit dropout.Mask):
// element i is keep where bits 16(i%4).. of draw pos+i/4 are at least drop,
// else 0. One thread per draw, so the grid is sized by ceil(n/4); n = 0 is
// a no-op. m need only be 4-byte aligned.
func (d *Device) DropoutMask(s Stream, m Ptr, key, pos uint64, n int64, drop uint32, keep float32) error {
	if n < 0 {
		return badArg("DropoutMask: n=%d", n)
	}
	// key and pos fill 8-byte slots as the kernel's unsigned long long
	// parameters; the conversions to int64 keep every bit.
	args := new(Args).Ptr(m).I64(int64(key)).I64(int64(pos)).I64(n).Int(int(drop)).F32(keep)
	return d.launch1D(s, kernelName("dropout_mask", "fwd", F32), (n+3)/4, args)
}

// DropoutApply sets the n elements at y to x times the mask DropoutMask
// would draw (dropout.cu; for F32 bit for bit dropout.Apply, for BF16
// dropout.Apply on x widened, rounded once to nearest even): dropout in
// one pass, the mask never stored. x and y are both t, F32 or BF16; both
// types decide keep or drop identically for the same key, pos and element.
// y may be x (in place). One thread per draw, as DropoutMask; n = 0 is a
// no-op. y and x need only be aligned to their element (float4 loads and
// stores when both are 16-byte aligned for F32, 8-byte uint2 ones for
// BF16).
func (d *Device) DropoutApply(s Stream, t DType, y, x Ptr, key, pos uint64, n int64, drop uint32, keep float32) error {
	if n < 0 {
		return badArg("DropoutApply: n=%d", n)
	}
	if t != F32 && t != BF16 {
		return badArg("DropoutApply: %v (F32 or BF16)", t)
	}
	args := new(Args).Ptr(y).Ptr(x).I64(int64(key)).I64(int64(pos)).I64(n).Int(int(drop)).F32(keep)
	return d.launch1D(s, kernelName("dropout_apply", "fwd", t), (n+3)/4, args)
}
