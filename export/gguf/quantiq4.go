package gguf

import (
	"encoding/binary"
	"math"
)

// The non-linear 4-bit types (ggml-common.h's block_iq4_nl and
// block_iq4_xs): each value is a 4-bit index into a fixed table of 16
// levels, iq4Levels, denser near zero than Q4_0's evenly spaced ones, times
// a scale.
//
//	IQ4_NL: 32 values → f16 d, 16 bytes of indices; x = d·iq4Levels[q].
//	IQ4_XS: 256 values → f16 d, u16 scales_h, 4 bytes scales_l, 128 bytes
//	        of indices; sub-block j of 32 (0..7) has the 6-bit level
//	        ls = (nibble j%2 of scales_l[j/2]) | (bits 2j, 2j+1 of
//	        scales_h)<<4, and x = d·(ls − 32)·iq4Levels[q].
//
// In both, the indices of a 32-value (sub-)block pack as Q4_0's do: byte
// j holds value j in its low nibble and value j+16 in its high one.
//
// Both follow ggml-quants.c's quantize_row_iq4_nl_impl as quantize_iq4_nl
// and quantize_iq4_xs run it, which is what llama-quantize calls with and
// without an importance matrix: there is no simpler reference quantizer
// in play (quantize_row_iq4_nl_ref, which skips the scale search, writes
// no model file). Without importance, a value weighs x²; with it,
// importance·√(σ² + x²), σ² twice the mean square of the super-block (of
// the 32 values of an IQ4_NL block, not of the row as for Q4_0). As in
// the k-quants, the arithmetic is float32 in ggml's order, every product
// rounded before it is added, so that Go on arm64 fuses no multiply-add
// (TestKQuantsMatchLlamaCpp and TestWeightedQuantsMatchLlamaCpp check the
// bytes against ggml's).
const (
	QK4_NL = 32

	bytesIQ4_NL = 2 + QK4_NL/2
	bytesIQ4_XS = 2 + 2 + QK_K/64 + QK_K/2
)

// iq4Levels is ggml's kvalues_iq4nl, the levels an index stands for.
// They are not symmetric: −127 is the largest magnitude, the positive end
// is 113.
var iq4Levels = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// iq4Tries is ggml's ntry for quantize_iq4_nl and quantize_iq4_xs: the
// scale search tries 2·7+1 scales around the largest value's.
const iq4Tries = 7

// iq4Index is the index of the level nearest v, the upper one on a tie,
// as ggml's best_index_int8 finds it. ggml binary-searches the levels for
// the pair around v; the levels are integers, so the pair is the one
// around ⌊v⌋, which iq4Above looks up at once (the search took 63% of an
// IQ4 export). The nearer of the two is then decided by ggml's own float32
// comparison. NaN (an infinite inverse scale times 0) ends ggml's search
// at the top: 15.
func iq4Index(v float32) uint8 {
	switch {
	case v <= iq4LevelsF[0]:
		return 0
	case v >= iq4LevelsF[15]:
		return 15
	case v != v:
		return 15
	}
	hi := iq4Above[int(math.Floor(float64(v)))-int(iq4Levels[0])]
	if v-iq4LevelsF[hi-1] < iq4LevelsF[hi]-v {
		return hi - 1
	}
	return hi
}

// iq4LevelsF is iq4Levels as float32, as ggml compares them.
var iq4LevelsF = func() (f [16]float32) {
	for i, l := range iq4Levels {
		f[i] = float32(l)
	}
	return f
}()

// iq4Above[f+127] is the first index whose level is above the integer f,
// for f from the lowest level to one below the highest.
var iq4Above = func() (t [int(113) - int(-127)]uint8) {
	for i := range t {
		f := i + int(iq4Levels[0])
		hi := 1
		for int(iq4Levels[hi]) <= f {
			hi++
		}
		t[i] = uint8(hi)
	}
	return t
}()

// iq4Scale fits the scale of 32 values (an IQ4_NL block or an IQ4_XS
// sub-block) with weights w: a first scale that maps the value of largest
// magnitude onto +127, refitted by weighted least squares, then trial
// scales that map it onto −127−7 .. −127+7, each refitted, keeping the
// best fit. Values below groupMaxEps in magnitude have scale 0.
//
// As in ggml, the trials flip the sign of the first guess (the search sends
// the largest value to the table's −127 end, the first guess towards its
// +113 end), and their levels are not kept: the callers requantize with
// the scale finally stored.
func iq4Scale(x, w []float32) float32 {
	amax, vmax := largestMagnitude(x)
	if amax < groupMaxEps {
		return 0
	}
	// fit is Σw·q·x and Σw·q² for the levels nearest iscale·x.
	fit := func(iscale float32) (sumQX, sumQ2 float32) {
		for i, v := range x {
			q := float32(iq4Levels[iq4Index(float32(iscale*v))])
			wq := float32(w[i] * q)
			sumQX += float32(wq * v)
			sumQ2 += float32(wq * q)
		}
		return sumQX, sumQ2
	}
	d := -vmax / float32(iq4Levels[0])
	sumQX, sumQ2 := fit(1 / d)
	d = 0
	if sumQ2 > 0 {
		d = sumQX / sumQ2
	}
	best := float32(d * sumQX)
	for try := -iq4Tries; try <= iq4Tries; try++ {
		sumQX, sumQ2 := fit(float32(try+int(iq4Levels[0])) / vmax)
		if sumQ2 > 0 && float32(sumQX*sumQX) > float32(best*sumQ2) {
			d = sumQX / sumQ2
			best = float32(d * sumQX)
		}
	}
	return d
}

// quantizeIQ4 appends the IQ4_NL (superBlock 32) or IQ4_XS (superBlock
// 256) blocks of x (whole super-blocks) to dst, weighing the fit of each
// 32 values' scale by qw, the importance of x's values (nil, or len(x)),
// or by x² where qw is nil. IQ4_NL stores its block's fitted scale as it
// is; IQ4_XS quantizes its 8 sub-blocks' scales to 6 bits against the
// largest (d = −largest/32, so that the largest gets level −32, the
// fullest one) and requantizes the values with those scales, unrounded
// (d·l, not the f16 d that is stored), as ggml does.
func quantizeIQ4(dst []byte, x, qw []float32, superBlock int) []byte {
	var (
		w      [32]float32
		scales [QK_K / 32]float32
		l      [32]uint8
	)
	// indices writes to l the indices of sub's values at inverse scale id.
	indices := func(sub []float32, id float32) {
		for i, v := range sub {
			l[i] = iq4Index(float32(id * v))
		}
	}
	// pack appends l's 32 indices as 16 bytes.
	pack := func(dst []byte) []byte {
		for j := range 16 {
			dst = append(dst, l[j]|l[j+16]<<4)
		}
		return dst
	}
	subBlocks := superBlock / 32
	for b := 0; b < len(x); b += superBlock {
		blk := x[b : b+superBlock]
		var sigma2 float32
		if qw != nil {
			// Rounded here: a product (2/superBlock is a power of two,
			// the division a multiplication) that Go could otherwise
			// fuse into σ² + x².
			sigma2 = float32(sumSquares(blk) * float32(2/float32(superBlock)))
		}
		var maxScale, amaxScale float32
		for j := range subBlocks {
			sub := blk[32*j : 32*j+32]
			if qw != nil {
				importanceWeights(w[:], sub, qw[b+32*j:b+32*j+32], sigma2)
			} else {
				for i, v := range sub {
					w[i] = float32(v * v)
				}
			}
			scales[j] = iq4Scale(sub, w[:])
			if a := float32(math.Abs(float64(scales[j]))); a > amaxScale {
				amaxScale, maxScale = a, scales[j]
			}
		}
		if subBlocks == 1 {
			var id float32
			if scales[0] != 0 {
				id = 1 / scales[0]
			}
			// A block of scale 0 (all values below groupMaxEps, or
			// no weight) gets index 8 (level 1) everywhere: ggml's
			// nearest level to 0.
			indices(blk, id)
			dst = binary.LittleEndian.AppendUint16(dst, f16(scales[0]))
			dst = pack(dst)
			continue
		}
		// d is −0 where every scale is 0: ggml stores that sign too.
		d := -maxScale / 32
		var id float32
		if d != 0 {
			id = 1 / d
		}
		var (
			scalesH uint16
			scalesL [QK_K / 64]byte
			qs      [QK_K / 2]byte
		)
		packed := qs[:0]
		for j := range subBlocks {
			ls := max(-32, min(31, nearestInt(float32(id*scales[j]))))
			dl := float32(d * float32(ls))
			var idl float32
			if dl != 0 {
				idl = 1 / dl
			}
			indices(blk[32*j:32*j+32], idl)
			packed = pack(packed)
			ls += 32
			scalesL[j/2] |= byte(ls&0xf) << (4 * (j % 2))
			scalesH |= uint16(ls>>4) << (2 * j)
		}
		dst = binary.LittleEndian.AppendUint16(dst, f16(d))
		dst = binary.LittleEndian.AppendUint16(dst, scalesH)
		dst = append(dst, scalesL[:]...)
		dst = append(dst, qs[:]...)
	}
	return dst
}

// iq4ScaleXS is sub-block j's 6-bit scale level of an IQ4_XS super-block,
// minus 32.
func iq4ScaleXS(j int, scalesH uint16, scalesL []byte) int {
	return int(scalesL[j/2]>>(4*(j%2))&0xf|byte(scalesH>>(2*j)&3)<<4) - 32
}

// dequantizeIQ4_NL expands IQ4_NL blocks into dst (len a multiple of 32).
func dequantizeIQ4_NL(dst []float32, src []byte) {
	for b := 0; b < len(dst)/QK4_NL; b++ {
		blk := src[b*bytesIQ4_NL : (b+1)*bytesIQ4_NL]
		expandIQ4(dst[b*QK4_NL:(b+1)*QK4_NL], blk[2:], fromF16(blk))
	}
}

// dequantizeIQ4_XS expands IQ4_XS super-blocks into dst (len a multiple
// of 256).
func dequantizeIQ4_XS(dst []float32, src []byte) {
	for b := 0; b < len(dst)/QK_K; b++ {
		blk := src[b*bytesIQ4_XS : (b+1)*bytesIQ4_XS]
		d := fromF16(blk)
		scalesH, scalesL, qs := binary.LittleEndian.Uint16(blk[2:]), blk[4:8], blk[8:]
		for j := range QK_K / 32 {
			dl := float32(d * float32(iq4ScaleXS(j, scalesH, scalesL)))
			expandIQ4(dst[b*QK_K+32*j:b*QK_K+32*j+32], qs[16*j:16*j+16], dl)
		}
	}
}

// expandIQ4 writes the 32 values of 16 bytes of indices at scale d.
func expandIQ4(out []float32, qs []byte, d float32) {
	for j := range 16 {
		out[j] = d * float32(iq4Levels[qs[j]&0xf])
		out[j+16] = d * float32(iq4Levels[qs[j]>>4])
	}
}
