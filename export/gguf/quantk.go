package gguf

import (
	"encoding/binary"
	"math"

	"github.com/ftune/ftune/tensor"
)

// The k-quants (ggml-common.h's block_q2_K, block_q3_K, block_q4_K,
// block_q5_K, block_q6_K: 256
// values a super-block), the 5-bit 32-value blocks llama.cpp falls back
// to for rows that are not a multiple of 256 (Q5_0, Q5_1) and Q4_1, the
// 4-bit block with a minimum (Q4_0's companion). Each quantizer
// follows the algorithm of ggml-quants.c's quantize_row_*_ref, the one
// llama-quantize runs without an importance matrix, in float32 and in the
// same order of operations, so the bytes equal llama.cpp's for the same
// float32 input (TestKQuantsMatchLlamaCpp checks goldens written by
// ggml). Products are converted to float32 before they are added, which
// keeps Go from fusing them into an FMA on arm64 (the reference is
// compiled without contraction).
//
//	Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins (8 sub-blocks
//	      of 32), 128 bytes of nibbles; x = d·sc·q − dmin·m, q in 0..15.
//	Q5_K: as Q4_K, with 32 bytes holding each value's fifth bit; q in 0..31.
//	Q6_K: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales
//	      (sub-blocks of 16), f16 d; x = d·sc·(q − 32), q in 0..63.
//	Q4_1: f16 d, f16 m, 16 bytes of nibbles (as Q4_0's: byte j holds value
//	      j low, value j+16 high); x = d·q + m, q in 0..15.
//	Q5_0: f16 d, 4 bytes of fifth bits, 16 bytes of nibbles; x = d·(q − 16).
//	Q5_1: f16 d, f16 m, 4 bytes of fifth bits, 16 of nibbles; x = d·q + m.
const (
	QK_K = 256
	QK5  = 32

	bytesQ4_K = 2 + 2 + 12 + QK_K/2
	bytesQ5_K = 2 + 2 + 12 + QK_K/8 + QK_K/2
	bytesQ6_K = QK_K/2 + QK_K/4 + QK_K/16 + 2
	bytesQ4_1 = 2 + 2 + QK4_0/2
	bytesQ5_0 = 2 + 4 + QK5/2
	bytesQ5_1 = 2 + 2 + 4 + QK5/2
)

// groupMaxEps is ggml's GROUP_MAX_EPS: a Q6_K super-block whose sub-block
// scales all fall below it is stored as zeros.
const groupMaxEps = float32(1e-15)

// nearestInt rounds to the nearest integer, ties to even, as ggml's
// nearest_int does, by its method: adding 1.5·2²³ leaves v's integer part,
// rounded to even, in the low mantissa bits (for |v| < 2²², the
// magnitudes quantization meets).
func nearestInt(v float32) int {
	return int(int32(math.Float32bits(v+12582912)&0x7fffff) - 0x400000)
}

func f16(v float32) uint16 { return tensor.F32ToF16(v) }

// largestMagnitude is the largest |v| of x and the v that has it (the
// first such one), the start of ggml's symmetric quantizers.
func largestMagnitude(x []float32) (amax, v float32) {
	for _, u := range x {
		if a := float32(math.Abs(float64(u))); a > amax {
			amax, v = a, u
		}
	}
	return amax, v
}

func fromF16(b []byte) float32 { return tensor.F16ToF32(binary.LittleEndian.Uint16(b)) }

// minMaxQuants chooses a scale and a minimum for n values quantized to
// 0..nmax (ggml's make_qkx2_quants): a first fit from the range, then
// nstep+1 trial scales around it, each refit by weighted least squares,
// keeping the lowest weighted error, squared or absolute (mad, Q2_K's). It
// writes the levels to l and returns the scale and −min (the minimum is
// never above 0).
func minMaxQuants(x, w []float32, nmax int, l, aux []uint8, rmin, rdelta float32, nstep int, mad bool) (scale, negMin float32) {
	errOf := func(diff float32) float32 {
		if mad {
			return float32(math.Abs(float64(diff)))
		}
		return float32(diff * diff)
	}
	lo, hi := x[0], x[0]
	sumW := w[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < len(x); i++ {
		if x[i] < lo {
			lo = x[i]
		}
		if x[i] > hi {
			hi = x[i]
		}
		sumW += w[i]
		sumX += float32(w[i] * x[i])
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		clear(l)
		return 0, -lo
	}
	iscale := float32(nmax) / (hi - lo)
	scale = 1 / iscale
	var best float32
	for i, v := range x {
		q := uint8(max(0, min(nmax, nearestInt(float32(iscale*(v-lo))))))
		l[i] = q
		diff := float32(float32(scale*float32(q))+lo) - v
		best += float32(w[i] * errOf(diff))
	}
	for is := 0; is <= nstep; is++ {
		iscale = float32(float32(rmin+float32(rdelta*float32(is)))+float32(nmax)) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			q := max(0, min(nmax, nearestInt(float32(iscale*(v-lo)))))
			aux[i] = uint8(q)
			wl := float32(w[i] * float32(q))
			sumL += wl
			sumL2 += float32(wl * float32(q))
			sumXL += float32(wl * v)
		}
		d := float32(sumW*sumL2) - float32(sumL*sumL)
		if !(d > 0) {
			continue
		}
		s := (float32(sumW*sumXL) - float32(sumX*sumL)) / d
		m := (float32(sumL2*sumX) - float32(sumL*sumXL)) / d
		if m > 0 {
			m = 0
			s = sumXL / sumL2
		}
		var cur float32
		for i, v := range x {
			diff := float32(float32(s*float32(aux[i]))+m) - v
			cur += float32(w[i] * errOf(diff))
		}
		if cur < best {
			copy(l, aux)
			best, scale, lo = cur, s, m
		}
	}
	return scale, -lo
}

// symmetricQuants chooses the scale of n values quantized to −nmax..nmax−1
// (ggml's make_qx_quants with rmse_type 1): a first scale from the value
// of largest magnitude, then 18 trial scales around it, keeping the one
// with the best weighted least-squares fit. The weights are qw, or x²
// where qw is nil (the reference Q6_K case). It writes the levels plus
// nmax to l.
func symmetricQuants(x []float32, nmax int, l []int8, qw []float32) float32 {
	amax, vmax := largestMagnitude(x)
	if amax < groupMaxEps {
		clear(l)
		return 0
	}
	fit := func(iscale float32, write bool) (sumLX, sumL2 float32) {
		for i, v := range x {
			q := max(-nmax, min(nmax-1, nearestInt(float32(iscale*v))))
			if write {
				l[i] = int8(q + nmax)
			}
			w := float32(v * v)
			if qw != nil {
				w = qw[i]
			}
			sumLX += float32(float32(w*v) * float32(q))
			sumL2 += float32(float32(w*float32(q)) * float32(q))
		}
		return sumLX, sumL2
	}
	sumLX, sumL2 := fit(-float32(nmax)/vmax, true)
	var scale float32
	if sumL2 != 0 {
		scale = sumLX / sumL2
	}
	best := float32(scale * sumLX)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale := -(float32(nmax) + float32(0.1*float32(is))) / vmax
		sumLX, sumL2 := fit(iscale, false)
		if sumL2 > 0 && float32(sumLX*sumLX) > float32(best*sumL2) {
			fit(iscale, true)
			scale = sumLX / sumL2
			best = float32(scale * sumLX)
		}
	}
	return scale
}

// quantizeMinMaxK appends the Q4_K (bits 4) or Q5_K (bits 5) super-blocks
// of x (len a multiple of 256) to dst: per sub-block of 32, a scale and a
// minimum from minMaxQuants with weights rms + |x|, both quantized to 6
// bits against the super-block's largest, then the values requantized
// with the stored scales.
func quantizeMinMaxK(dst []byte, x []float32, bits int) []byte {
	nmax := 1<<bits - 1
	rmin, nstep := float32(-1), 20
	if bits == 5 {
		rmin, nstep = -0.5, 15
	}
	var (
		l              [QK_K]uint8
		aux            [32]uint8
		w              [32]float32
		scales, negMin [QK_K / 32]float32
	)
	for b := 0; b < len(x); b += QK_K {
		blk := x[b : b+QK_K]
		var maxScale, maxMin float32
		for j := range QK_K / 32 {
			sub := blk[32*j : 32*j+32]
			var sumX2 float32
			for _, v := range sub {
				sumX2 += float32(v * v)
			}
			rms := float32(math.Sqrt(float64(sumX2 / 32)))
			for i, v := range sub {
				w[i] = rms + float32(math.Abs(float64(v)))
			}
			scales[j], negMin[j] = minMaxQuants(sub, w[:], nmax, l[32*j:32*j+32], aux[:], rmin, 0.1, nstep, false)
			maxScale, maxMin = max(maxScale, scales[j]), max(maxMin, negMin[j])
		}
		var invScale, invMin float32
		if maxScale > 0 {
			invScale = 63 / maxScale
		}
		if maxMin > 0 {
			invMin = 63 / maxMin
		}
		var ls, lm [QK_K / 32]uint8
		for j := range QK_K / 32 {
			ls[j] = min(63, uint8(nearestInt(float32(invScale*scales[j]))))
			lm[j] = min(63, uint8(nearestInt(float32(invMin*negMin[j]))))
		}
		dst = appendMinMaxKBlock(dst, blk, &l, packScalesMinsK(&ls, &lm), f16(maxScale/63), f16(maxMin/63), bits)
	}
	return dst
}

// packScalesMinsK packs the 6-bit scales and minimums of a Q4_K or Q5_K
// super-block's 8 sub-blocks: 0-3 in the low 6 bits of bytes j and j+4,
// 4-7 in the nibbles of byte j+4 with their top bits in bytes j−4 and j.
// Levels above 63 are not clamped here (ggml's weighted Q4_K does not).
func packScalesMinsK(ls, lm *[QK_K / 32]uint8) [12]byte {
	var sc [12]byte
	for j := range QK_K / 32 {
		if j < 4 {
			sc[j], sc[j+4] = ls[j], lm[j]
		} else {
			sc[j+4] = ls[j]&0xf | (lm[j]&0xf)<<4
			sc[j-4] |= ls[j] >> 4 << 6
			sc[j] |= lm[j] >> 4 << 6
		}
	}
	return sc
}

// appendMinMaxKBlock appends a Q4_K (bits 4) or Q5_K (bits 5) super-block
// of blk whose scales are chosen (sc, d, dmin): the values are requantized
// with the stored scales (a sub-block whose scale is 0 keeps the levels l
// holds) and packed.
func appendMinMaxKBlock(dst []byte, blk []float32, l *[QK_K]uint8, sc [12]byte, d, dmin uint16, bits int) []byte {
	nmax := 1<<bits - 1
	fd, fdmin := tensor.F16ToF32(d), tensor.F16ToF32(dmin)
	for j := range QK_K / 32 {
		s, m := scaleMinK4(j, sc[:])
		ds := float32(fd * float32(s))
		if ds == 0 {
			continue
		}
		dm := float32(fdmin * float32(m))
		for i, v := range blk[32*j : 32*j+32] {
			l[32*j+i] = uint8(max(0, min(nmax, nearestInt((v+dm)/ds))))
		}
	}
	dst = binary.LittleEndian.AppendUint16(dst, d)
	dst = binary.LittleEndian.AppendUint16(dst, dmin)
	dst = append(dst, sc[:]...)
	if bits == 5 {
		// Bit 4 of value 64k+i in byte i's bit 2k, of value 64k+32+i
		// in bit 2k+1; the low nibbles as Q4_K's.
		var qh [QK_K / 8]byte
		for k := 0; k < QK_K/64; k++ {
			for i := range 32 {
				qh[i] |= l[64*k+i]>>4<<(2*k) | l[64*k+32+i]>>4<<(2*k+1)
			}
		}
		dst = append(dst, qh[:]...)
	}
	// Byte 32k+i: value 64k+i in the low nibble, 64k+32+i in the high.
	for k := 0; k < QK_K; k += 64 {
		for i := range 32 {
			dst = append(dst, l[k+i]&0xf|(l[k+32+i]&0xf)<<4)
		}
	}
	return dst
}

// scaleMinK4 unpacks sub-block j's 6-bit scale and minimum (ggml's
// get_scale_min_k4): sub-blocks 0-3 in the low 6 bits of bytes j and j+4,
// 4-7 in the nibbles of byte j+4 with their top bits in bytes j−4 and j.
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | q[j-4]>>6<<4, q[j+4]>>4 | q[j]>>6<<4
}

// dequantizeMinMaxK expands Q4_K (bits 4) or Q5_K (bits 5) super-blocks.
func dequantizeMinMaxK(dst []float32, src []byte, bits int) {
	bs := bytesQ4_K
	if bits == 5 {
		bs = bytesQ5_K
	}
	for b := 0; b < len(dst)/QK_K; b++ {
		blk := src[b*bs : (b+1)*bs]
		d, dmin := fromF16(blk), fromF16(blk[2:])
		sc := blk[4:16]
		var qh, qs []byte
		if bits == 5 {
			qh, qs = blk[16:48], blk[48:]
		} else {
			qs = blk[16:]
		}
		out := dst[b*QK_K : (b+1)*QK_K]
		for k := 0; k < QK_K/64; k++ {
			s0, m0 := scaleMinK4(2*k, sc)
			s1, m1 := scaleMinK4(2*k+1, sc)
			d0, d1 := float32(d*float32(s0)), float32(d*float32(s1))
			n0, n1 := float32(dmin*float32(m0)), float32(dmin*float32(m1))
			for i := range 32 {
				q := qs[32*k+i]
				lo, hi := q&0xf, q>>4
				if bits == 5 {
					lo |= qh[i] >> (2 * k) & 1 << 4
					hi |= qh[i] >> (2*k + 1) & 1 << 4
				}
				out[64*k+i] = float32(d0*float32(lo)) - n0
				out[64*k+32+i] = float32(d1*float32(hi)) - n1
			}
		}
	}
}

// quantizeQ6_K appends the Q6_K super-blocks of x (len a multiple of 256).
func quantizeQ6_K(dst []byte, x []float32) []byte { return appendQ6_K(dst, x, nil) }

// appendQ6_K appends the Q6_K super-blocks of x, fitting each sub-block's
// scale with weights x² (qw nil) or with qw, the importance of x's values
// as they are (ggml's quantize_row_q6_K_impl, unlike the other k-quants,
// does not mix the values' magnitudes into them).
func appendQ6_K(dst []byte, x, qw []float32) []byte {
	var (
		l      [QK_K]int8
		scales [QK_K / 16]float32
	)
	for b := 0; b < len(x); b += QK_K {
		blk := x[b : b+QK_K]
		var maxScale, maxAbs float32
		for j := range QK_K / 16 {
			var w []float32
			if qw != nil {
				w = qw[b+16*j : b+16*j+16]
			}
			s := symmetricQuants(blk[16*j:16*j+16], 32, l[16*j:16*j+16], w)
			scales[j] = s
			if a := float32(math.Abs(float64(s))); a > maxAbs {
				maxAbs, maxScale = a, s
			}
		}
		if maxAbs < groupMaxEps {
			dst = append(dst, make([]byte, bytesQ6_K)...)
			continue
		}
		iscale := -128 / maxScale
		d := f16(1 / iscale)
		fd := tensor.F16ToF32(d)
		var sc [QK_K / 16]int8
		for j := range sc {
			sc[j] = int8(min(127, nearestInt(float32(iscale*scales[j]))))
		}
		for j := range QK_K / 16 {
			ds := float32(fd * float32(sc[j]))
			if ds == 0 {
				continue
			}
			for i, v := range blk[16*j : 16*j+16] {
				l[16*j+i] = int8(max(-32, min(31, nearestInt(v/ds))) + 32)
			}
		}
		// In each half of 128 values: byte i of ql holds values i and
		// 64+i, byte 32+i values 32+i and 96+i (low nibbles first); byte i
		// of qh the top two bits of values i, 32+i, 64+i and 96+i.
		var ql [QK_K / 2]byte
		var qh [QK_K / 4]byte
		for h := 0; h < QK_K/128; h++ {
			q := l[128*h : 128*h+128]
			for i := range 32 {
				ql[64*h+i] = byte(q[i])&0xf | (byte(q[64+i])&0xf)<<4
				ql[64*h+32+i] = byte(q[32+i])&0xf | (byte(q[96+i])&0xf)<<4
				qh[32*h+i] = byte(q[i])>>4 | byte(q[32+i])>>4<<2 | byte(q[64+i])>>4<<4 | byte(q[96+i])>>4<<6
			}
		}
		dst = append(dst, ql[:]...)
		dst = append(dst, qh[:]...)
		for _, s := range sc {
			dst = append(dst, byte(s))
		}
		dst = binary.LittleEndian.AppendUint16(dst, d)
	}
	return dst
}

// dequantizeQ6_K expands Q6_K super-blocks.
func dequantizeQ6_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/QK_K; b++ {
		blk := src[b*bytesQ6_K : (b+1)*bytesQ6_K]
		ql, qh, sc := blk[:128], blk[128:192], blk[192:208]
		d := fromF16(blk[208:])
		out := dst[b*QK_K : (b+1)*QK_K]
		for h := 0; h < QK_K/128; h++ {
			for i := range 32 {
				lo0, lo1 := ql[64*h+i], ql[64*h+32+i]
				hb := qh[32*h+i]
				q := [4]int{
					int(lo0&0xf|hb&3<<4) - 32,
					int(lo1&0xf|hb>>2&3<<4) - 32,
					int(lo0>>4|hb>>4&3<<4) - 32,
					int(lo1>>4|hb>>6&3<<4) - 32,
				}
				for k, v := range q {
					s := int8(sc[8*h+i/16+2*k])
					out[128*h+32*k+i] = float32(float32(d*float32(s)) * float32(v))
				}
			}
		}
	}
}

// quantizeQ5_0 appends the Q5_0 blocks of x (len a multiple of 32).
func quantizeQ5_0(dst []byte, x []float32) []byte {
	for b := 0; b < len(x); b += QK5 {
		blk := x[b : b+QK5]
		_, m := largestMagnitude(blk)
		d := m / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		var qh uint32
		var qs [QK5 / 2]byte
		for j := range QK5 / 2 {
			q0 := min(31, int(int8(float32(blk[j]*id)+16.5)))
			q1 := min(31, int(int8(float32(blk[j+QK5/2]*id)+16.5)))
			qs[j] = byte(q0&0xf | (q1&0xf)<<4)
			qh |= uint32(q0>>4&1)<<j | uint32(q1>>4&1)<<(j+QK5/2)
		}
		dst = binary.LittleEndian.AppendUint16(dst, f16(d))
		dst = binary.LittleEndian.AppendUint32(dst, qh)
		dst = append(dst, qs[:]...)
	}
	return dst
}

// quantizeQ4_1 appends the Q4_1 blocks of x (len a multiple of 32).
func quantizeQ4_1(dst []byte, x []float32) []byte { return quantizeMin32(dst, x, 4) }

// quantizeQ5_1 appends the Q5_1 blocks of x (len a multiple of 32).
func quantizeQ5_1(dst []byte, x []float32) []byte { return quantizeMin32(dst, x, 5) }

// quantizeMin32 appends the Q4_1 (bits 4) or Q5_1 (bits 5) blocks of x
// (ggml's quantize_row_q4_1_ref and _q5_1_ref): the block's minimum, the
// scale that spreads its range over the 2^bits levels, and each value at
// ⌊(x − min)/d + ½⌋ (Q4_1's clamped to 15, through int8 as ggml does;
// Q5_1's not clamped, through uint8).
func quantizeMin32(dst []byte, x []float32, bits int) []byte {
	nmax := 1<<bits - 1
	var l [QK5]uint8
	for b := 0; b < len(x); b += QK5 {
		blk := x[b : b+QK5]
		// Compared as ggml compares them, not with min and max, which
		// would take −0 over an earlier +0 (a stored minimum of −0).
		lo, hi := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range blk {
			if v < lo {
				lo = v
			}
			if v > hi {
				hi = v
			}
		}
		d := (hi - lo) / float32(nmax)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		for j, v := range blk {
			q := float32((v-lo)*id) + 0.5
			if bits == 4 {
				l[j] = uint8(min(15, int8(q)))
			} else {
				l[j] = uint8(q)
			}
		}
		dst = binary.LittleEndian.AppendUint16(dst, f16(d))
		dst = binary.LittleEndian.AppendUint16(dst, f16(lo))
		if bits == 4 {
			dst = appendNibbles(dst, &l)
		} else {
			dst = appendQ5Levels(dst, &l)
		}
	}
	return dst
}

// appendNibbles appends the 16 bytes of a Q4_1 block's levels (0..15), as
// Q4_0 packs its own: byte j holds value j in its low nibble and value
// j+16 in its high one.
func appendNibbles(dst []byte, l *[QK5]uint8) []byte {
	for j := range QK5 / 2 {
		dst = append(dst, l[j]|l[j+QK5/2]<<4)
	}
	return dst
}

// dequantizeQ4_1 expands Q4_1 blocks into dst (len a multiple of 32).
func dequantizeQ4_1(dst []float32, src []byte) {
	for b := 0; b < len(dst)/QK5; b++ {
		blk := src[b*bytesQ4_1 : (b+1)*bytesQ4_1]
		d, m := fromF16(blk), fromF16(blk[2:])
		out := dst[b*QK5 : (b+1)*QK5]
		for j, q := range blk[4:] {
			out[j] = float32(d*float32(q&0xf)) + m
			out[j+QK5/2] = float32(d*float32(q>>4)) + m
		}
	}
}

// dequantizeQ5 expands Q5_0 (withMin false) or Q5_1 blocks.
func dequantizeQ5(dst []float32, src []byte, withMin bool) {
	bs, off := bytesQ5_0, 2
	if withMin {
		bs, off = bytesQ5_1, 4
	}
	for b := 0; b < len(dst)/QK5; b++ {
		blk := src[b*bs : (b+1)*bs]
		d := fromF16(blk)
		qh := binary.LittleEndian.Uint32(blk[off:])
		qs := blk[off+4:]
		out := dst[b*QK5 : (b+1)*QK5]
		for j := range QK5 / 2 {
			q0 := int(qs[j]&0xf) | int(qh>>j&1)<<4
			q1 := int(qs[j]>>4) | int(qh>>(j+QK5/2)&1)<<4
			if withMin {
				m := fromF16(blk[2:])
				out[j] = float32(d*float32(q0)) + m
				out[j+QK5/2] = float32(d*float32(q1)) + m
			} else {
				out[j] = float32(q0-16) * d
				out[j+QK5/2] = float32(q1-16) * d
			}
		}
	}
}

// bytesQ2_K: 16 bytes of 4-bit scales (low nibble) and mins (high), 64
// of 2-bit pairs, f16 d, f16 dmin; x = d·sc·q − dmin·m.
const bytesQ2_K = QK_K/16 + QK_K/4 + 2 + 2

// quantizeQ2_K appends the Q2_K super-blocks of x (len a multiple of 256):
// per sub-block of 16, a scale and a minimum from minMaxQuants with
// weights |x| and absolute error, both quantized to 4 bits against the
// super-block's largest, then the values requantized with the stored ones.
func quantizeQ2_K(dst []byte, x []float32) []byte {
	var (
		l              [QK_K]uint8
		aux            [16]uint8
		w              [16]float32
		scales, negMin [QK_K / 16]float32
	)
	for b := 0; b < len(x); b += QK_K {
		blk := x[b : b+QK_K]
		var maxScale, maxMin float32
		for j := range QK_K / 16 {
			sub := blk[16*j : 16*j+16]
			for i, v := range sub {
				w[i] = float32(math.Abs(float64(v)))
			}
			scales[j], negMin[j] = minMaxQuants(sub, w[:], 3, l[16*j:16*j+16], aux[:], -0.5, 0.1, 15, true)
			maxScale, maxMin = max(maxScale, scales[j]), max(maxMin, negMin[j])
		}
		var sc [QK_K / 16]byte
		var d, dmin uint16
		if maxScale > 0 {
			iscale := 15 / maxScale
			for j := range sc {
				sc[j] = byte(nearestInt(float32(iscale * scales[j])))
			}
			d = f16(maxScale / 15)
		}
		if maxMin > 0 {
			iscale := 15 / maxMin
			for j := range sc {
				sc[j] |= byte(nearestInt(float32(iscale*negMin[j]))) << 4
			}
			dmin = f16(maxMin / 15)
		}
		dst = appendQ2_KBlock(dst, blk, &l, sc, d, dmin)
	}
	return dst
}

// appendQ2_KBlock appends a Q2_K super-block of blk whose scales and
// minimums are chosen (sc, d, dmin): the values are requantized with the
// stored ones (a sub-block whose scale is 0 keeps the levels l holds) and
// packed.
func appendQ2_KBlock(dst []byte, blk []float32, l *[QK_K]uint8, sc [QK_K / 16]byte, d, dmin uint16) []byte {
	fd, fdmin := tensor.F16ToF32(d), tensor.F16ToF32(dmin)
	for j := range QK_K / 16 {
		ds := float32(fd * float32(sc[j]&0xf))
		if ds == 0 {
			continue
		}
		dm := float32(fdmin * float32(sc[j]>>4))
		for i, v := range blk[16*j : 16*j+16] {
			l[16*j+i] = uint8(max(0, min(3, nearestInt((v+dm)/ds))))
		}
	}
	dst = append(dst, sc[:]...)
	dst = append(dst, packCrumbs(l[:])...)
	dst = binary.LittleEndian.AppendUint16(dst, d)
	return binary.LittleEndian.AppendUint16(dst, dmin)
}

// packCrumbs packs 256 values of 2 bits as Q2_K and Q3_K store them: value
// j in byte 32·(j/128) + j%32 at bit 2·((j%128)/32).
func packCrumbs(l []uint8) []byte {
	var qs [QK_K / 4]byte
	for j, q := range l[:QK_K] {
		qs[32*(j/128)+j%32] |= q & 3 << (2 * (j % 128 / 32))
	}
	return qs[:]
}

// crumb is value j of packCrumbs's bytes.
func crumb(qs []byte, j int) int { return int(qs[32*(j/128)+j%32] >> (2 * (j % 128 / 32)) & 3) }

// dequantizeQ2_K expands Q2_K super-blocks.
func dequantizeQ2_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/QK_K; b++ {
		blk := src[b*bytesQ2_K : (b+1)*bytesQ2_K]
		sc, qs := blk[:16], blk[16:80]
		d, dmin := fromF16(blk[80:]), fromF16(blk[82:])
		out := dst[b*QK_K : (b+1)*QK_K]
		for j := range out {
			s := sc[j/16]
			out[j] = float32(float32(d*float32(s&0xf))*float32(crumb(qs, j))) - float32(dmin*float32(s>>4))
		}
	}
}

// bytesQ3_K: 32 bytes of high bits, 64 of 2-bit pairs, 12 of 6-bit
// scales (16 sub-blocks of 16), f16 d; x = d·(sc − 32)·(q − 4).
const bytesQ3_K = QK_K/8 + QK_K/4 + 12 + 2

// refinedQuants chooses the scale of n values quantized to −nmax..nmax−1
// (ggml's make_q3_quants with its refinement, the Q3_K case): levels from
// the value of largest magnitude, then up to five passes that move single
// levels while the weighted (x²) least-squares fit improves. It writes the
// levels plus nmax to l.
func refinedQuants(x []float32, nmax int, l []int8) float32 {
	amax, vmax := largestMagnitude(x)
	if amax < groupMaxEps {
		clear(l)
		return 0
	}
	iscale := -float32(nmax) / vmax
	var sumLX, sumL2 float32
	for i, v := range x {
		q := max(-nmax, min(nmax-1, nearestInt(float32(iscale*v))))
		l[i] = int8(q)
		w := float32(v * v)
		sumLX += float32(float32(w*v) * float32(q))
		sumL2 += float32(float32(w*float32(q)) * float32(q))
	}
	for range 5 {
		changed := false
		for i, v := range x {
			w := float32(v * v)
			slx := sumLX - float32(float32(w*v)*float32(l[i]))
			if !(slx > 0) {
				continue
			}
			sl2 := sumL2 - float32(float32(w*float32(l[i]))*float32(l[i]))
			q := max(-nmax, min(nmax-1, nearestInt(float32(v*sl2)/slx)))
			if q == int(l[i]) {
				continue
			}
			slx += float32(float32(w*v) * float32(q))
			sl2 += float32(float32(w*float32(q)) * float32(q))
			if sl2 > 0 && float32(float32(slx*slx)*sumL2) > float32(float32(sumLX*sumLX)*sl2) {
				l[i], sumLX, sumL2 = int8(q), slx, sl2
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	for i := range l {
		l[i] += int8(nmax)
	}
	if sumL2 > 0 {
		return sumLX / sumL2
	}
	return 0
}

// quantizeQ3_K appends the Q3_K super-blocks of x (len a multiple of 256).
func quantizeQ3_K(dst []byte, x []float32) []byte {
	var (
		l      [QK_K]int8
		scales [QK_K / 16]float32
	)
	for b := 0; b < len(x); b += QK_K {
		blk := x[b : b+QK_K]
		var maxScale, maxAbs float32
		for j := range QK_K / 16 {
			scales[j] = refinedQuants(blk[16*j:16*j+16], 4, l[16*j:16*j+16])
			if a := float32(math.Abs(float64(scales[j]))); a > maxAbs {
				maxAbs, maxScale = a, scales[j]
			}
		}
		var q [QK_K / 16]uint8
		var d uint16
		if maxScale != 0 {
			iscale := -32 / maxScale
			for j := range q {
				q[j] = byte(max(-32, min(31, int(int8(nearestInt(float32(iscale*scales[j])))))) + 32)
			}
			d = f16(1 / iscale)
		}
		dst = appendQ3_KBlock(dst, blk, &l, packScalesQ3K(&q), d)
	}
	return dst
}

// packScalesQ3K packs the 6-bit scales (plus 32) of a Q3_K super-block's
// 16 sub-blocks: sub-block j's low nibble in byte j (j < 8) or the high
// nibble of byte j−8, its top two bits in byte 8 + j%4 at bit 2·(j/4).
func packScalesQ3K(q *[QK_K / 16]uint8) [12]byte {
	var sc [12]byte
	for j, v := range q {
		if j < 8 {
			sc[j] = v & 0xf
		} else {
			sc[j-8] |= (v & 0xf) << 4
		}
		sc[8+j%4] |= v >> 4 << (2 * (j / 4))
	}
	return sc
}

// appendQ3_KBlock appends a Q3_K super-block of blk whose scales are
// chosen (sc, d): the values are requantized with the stored scales (a
// sub-block whose scale is 0 keeps the levels l holds) and packed.
func appendQ3_KBlock(dst []byte, blk []float32, l *[QK_K]int8, sc [12]byte, d uint16) []byte {
	fd := tensor.F16ToF32(d)
	for j := range QK_K / 16 {
		ds := float32(fd * float32(scaleQ3K(j, sc[:])))
		if ds == 0 {
			continue
		}
		for i, v := range blk[16*j : 16*j+16] {
			l[16*j+i] = int8(max(-4, min(3, nearestInt(v/ds))) + 4)
		}
	}
	// Value j's third bit in byte j%32 at bit j/32, its low two bits
	// as packCrumbs packs them.
	var hmask [QK_K / 8]byte
	var low [QK_K]uint8
	for j, q := range l {
		if q > 3 {
			hmask[j%32] |= 1 << (j / 32)
			q -= 4
		}
		low[j] = uint8(q)
	}
	dst = append(dst, hmask[:]...)
	dst = append(dst, packCrumbs(low[:])...)
	dst = append(dst, sc[:]...)
	return binary.LittleEndian.AppendUint16(dst, d)
}

// scaleQ3K unpacks sub-block j's scale of a Q3_K block, minus 32.
func scaleQ3K(j int, sc []byte) int {
	var lo byte
	if j < 8 {
		lo = sc[j] & 0xf
	} else {
		lo = sc[j-8] >> 4
	}
	return int(lo|(sc[8+j%4]>>(2*(j/4))&3)<<4) - 32
}

// dequantizeQ3_K expands Q3_K super-blocks.
func dequantizeQ3_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/QK_K; b++ {
		blk := src[b*bytesQ3_K : (b+1)*bytesQ3_K]
		hmask, qs, sc := blk[:32], blk[32:96], blk[96:108]
		d := fromF16(blk[108:])
		out := dst[b*QK_K : (b+1)*QK_K]
		for j := range out {
			q := crumb(qs, j)
			if hmask[j%32]>>(j/32)&1 == 0 {
				q -= 4
			}
			out[j] = float32(d*float32(scaleQ3K(j/16, sc))) * float32(q)
		}
	}
}
