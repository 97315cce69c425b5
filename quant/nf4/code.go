package nf4

import (
	"fmt"
	"math"

	"github.com/ftune/ftune/kernels/asm"
)

// BlockSize is the default number of values that share one absmax (64, as
// bitsandbytes and QLoRA use).
const BlockSize = 64

// NestedBlockSize is the block size of the double quantization of the
// absmax values (bitsandbytes quantizes them with blocksize=256).
const NestedBlockSize = 256

// validBlockSizes are the block sizes bitsandbytes' quantize_4bit accepts.
var validBlockSizes = []int{32, 64, 128, 256, 512, 1024, 2048, 4096}

func checkBlockSize(bs int) error {
	for _, v := range validBlockSizes {
		if bs == v {
			return nil
		}
	}
	return fmt.Errorf("nf4: invalid block size %d (want one of %v)", bs, validBlockSizes)
}

// Code is the NF4 code book: bitsandbytes' get_4bit_type("nf4") table,
// quantiles of N(0,1) normalised to [-1, 1] with an exact zero (QLoRA,
// create_normal_map(offset=0.9677083, use_extra_value=True)). Index i is
// the 4-bit value i; the table is sorted ascending. The kernels own it
// (kernels/asm dequantizes while packing GEMM panels).
var Code = asm.NF4Code

// codeBounds are the midpoints between neighbouring code values, computed
// in float32 as bitsandbytes' default backend does ((code[:-1]+code[1:])/2).
var codeBounds = func() (b [15]float32) {
	for i := range b {
		b[i] = (Code[i] + Code[i+1]) / 2
	}
	return b
}()

// quantizeNF4 maps a value already scaled into [-1, 1] to its 4-bit index:
// the number of midpoints strictly below x (torch.bucketize, right=False),
// so a value exactly on a midpoint takes the lower code.
func quantizeNF4(x float32) byte {
	// Unrolled binary search over the 15 sorted bounds: 4 comparisons.
	var i byte
	if x > codeBounds[7] {
		i = 8
	}
	if x > codeBounds[i+3] {
		i += 4
	}
	if x > codeBounds[i+1] {
		i += 2
	}
	if x > codeBounds[i] {
		i++
	}
	return i
}

// The fast quantizer looks x up on a uniform grid of gridCells cells over
// [-1, 1]: gridCode[c] is the code of values just below the cell's lower
// edge, and since a cell (width 2/4096) is far narrower than the gap between
// two midpoints (at least 0.08), a value in the cell is that code or the next
// one, decided by one comparison with the midpoint above. The result equals
// quantizeNF4 exactly (tested), ties included, without its four
// data-dependent branches.
const gridCells = 4096

var gridCode = func() (g [gridCells + 1]uint8) {
	for c := range g {
		// 1e-6 covers the float32 rounding of (x+1)*2048 (about 1.2e-7 in x).
		edge := float32(c)/(gridCells/2) - 1
		g[c] = quantizeNF4(edge - 1e-6)
	}
	return g
}()

// boundsAbove[i] is the midpoint between code i and i+1 (+Inf for 15).
var boundsAbove = func() (b [16]float32) {
	copy(b[:], codeBounds[:])
	b[15] = float32(math.Inf(1))
	return b
}()

// quantizeNF4Fast is quantizeNF4 for x in [-1, 1].
func quantizeNF4Fast(x float32) byte {
	i := gridCode[int((x+1)*(gridCells/2))]
	if x > boundsAbove[i&15] {
		i++
	}
	return i
}

// DequantBlock expands packed 4-bit NF4 indices into dst, scaling by absmax:
// dst[2i] = Code[packed[i]>>4]*absmax, dst[2i+1] = Code[packed[i]&15]*absmax.
// len(dst) must be 2*len(packed). It is the inner loop of every NF4
// dequantization; a SIMD implementation replaces it where available.
func DequantBlock(dst []float32, packed []byte, absmax float32) {
	dequantBlock(dst, packed, absmax)
}

// dequantBlock is the implementation DequantBlock calls: the kernels/asm
// one (SIMD where available).
var dequantBlock = asm.DequantNF4Block

// DequantBlockGeneric is the pure-Go reference of DequantBlock.
func DequantBlockGeneric(dst []float32, packed []byte, absmax float32) {
	asm.DequantNF4BlockRef(dst, packed, absmax)
}
