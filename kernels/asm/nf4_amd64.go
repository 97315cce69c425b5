//go:build !purego

package asm

//go:noescape
func dequantNF4BlocksAVX512(dst *float32, packed *byte, absmax *float32, blocks, blockBytes int, code *[16]float32)

// dequantNF4BlocksAVX512Checked checks the slices cover the blocks, then
// calls the assembly.
func dequantNF4BlocksAVX512Checked(dst []float32, packed []byte, absmax []float32, blocks, blockSize int) {
	_, _, _ = dst[blocks*blockSize-1], packed[blocks*blockSize/2-1], absmax[blocks-1]
	dequantNF4BlocksAVX512(&dst[0], &packed[0], &absmax[0], blocks, blockSize/2, &NF4Code)
}

// dequantNF4BlockAVX512 runs whole 16-byte groups through the assembly and
// the rest through the reference.
func dequantNF4BlockAVX512(dst []float32, packed []byte, absmax float32) {
	dst = dst[:2*len(packed)]
	n := len(packed) &^ 15
	if n > 0 {
		dequantNF4BlocksAVX512(&dst[0], &packed[0], &absmax, 1, n, &NF4Code)
	}
	DequantNF4BlockRef(dst[2*n:], packed[n:], absmax)
}

func init() {
	registerImpl(func(impl Impl) {
		if impl == ImplAVX512 {
			dequantNF4Block, dequantNF4Blocks = dequantNF4BlockAVX512, dequantNF4BlocksAVX512Checked
		} else {
			dequantNF4Block, dequantNF4Blocks = DequantNF4BlockRef, nil
		}
	})
}
