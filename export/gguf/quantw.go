package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Importance-weighted quantization: what llama-quantize does with an
// importance matrix ("imatrix", per column of a weight the mean square of
// the activations that multiply it). Each quantizer follows ggml-quants.c's
// quantize_row_*_impl for a non-NULL quant_weights, in float32 and in the
// same order of operations, so the bytes equal llama.cpp's for the same
// input (TestWeightedQuantsMatchLlamaCpp checks goldens written by ggml's
// quantize_TYPE). The fits search more than the reference ones (37 trial
// scales for a minimum and a scale instead of 16-21, 18 for Q4_0's and
// Q5_0's scale instead of none, the k-quants' sub-block scales themselves
// fitted rather than rounded against the largest), and weigh value i of a
// block by
//
//	importance[column]·√(σ² + x_i²)
//
// where σ² is the mean square of the super-block (Q2_K: of its values,
// Q3_K-Q5_K and IQ4_XS: twice that), of the block for IQ4_NL (twice
// that), or, for Q4_0, Q4_1, Q5_0 and Q5_1, of the whole row: a
// column that no activation reaches does not count, and within a block the
// large values count more than the small. Q6_K weighs by the importance
// alone (ggml left the √ term commented out).

// AppendEncodedWeighted is AppendEncoded with an importance matrix: x holds
// whole rows of rowLen values (rowLen whole blocks of t), and importance,
// one non-negative value per column (len rowLen, the same for every row),
// weighs the fit of each block's scales as llama.cpp's quantizers weigh it
// (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS; the
// bytes are llama-quantize's with that imatrix). F32, F16, BF16 and Q8_0 have nothing
// to fit and ignore it, as ggml does; nil importance is AppendEncoded (the
// shape, x and rowLen, is checked whatever importance is). Rows are
// quantized on all cores, with the bytes of doing it on one.
func AppendEncodedWeighted(out []byte, t TensorType, x []float32, rowLen int, importance []float32) ([]byte, error) {
	values, size, ok := t.blockInfo()
	if !ok {
		_, err := t.RowBytes(len(x))
		return nil, err
	}
	if rowLen <= 0 || rowLen%values != 0 {
		return nil, fmt.Errorf("gguf: rows of %d values are not whole %s blocks of %d", rowLen, t, values)
	}
	if len(x)%rowLen != 0 {
		return nil, fmt.Errorf("gguf: %d values are not whole rows of %d", len(x), rowLen)
	}
	if importance == nil {
		return AppendEncoded(out, t, x)
	}
	if len(importance) != rowLen {
		return nil, fmt.Errorf("gguf: %d importance values for rows of %d", len(importance), rowLen)
	}
	for i, v := range importance {
		if !(v >= 0) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("gguf: importance of column %d is %v; it must be finite and not negative", i, v)
		}
	}
	quantize := weightedQuantizer(t)
	if quantize == nil {
		return AppendEncoded(out, t, x)
	}
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("gguf: value %d is %v; %s cannot hold it", i, v, t)
		}
	}
	// A row's weighted quantization depends on the whole row (σ² of Q4_0, Q4_1,
	// Q5_0 and Q5_1) and on no other: the rows are split over the cores,
	// at least 64 blocks a part.
	rowBlocks := rowLen / values
	return appendParallel(out, x, rowLen, rowBlocks*size, (64+rowBlocks-1)/rowBlocks, func(dst []byte, x []float32) []byte {
		for r := 0; r < len(x); r += rowLen {
			dst = quantize(dst, x[r:r+rowLen], importance)
		}
		return dst
	}), nil
}

// weightedQuantizer is t's importance-weighted quantizer of one row (qw
// its importance, len(row)), or nil for a type that has none.
func weightedQuantizer(t TensorType) func(dst []byte, row, qw []float32) []byte {
	switch t {
	case Q2_K:
		return quantizeQ2_KWeighted
	case Q3_K:
		return quantizeQ3_KWeighted
	case Q4_K:
		return func(dst []byte, row, qw []float32) []byte { return quantizeMinMaxKWeighted(dst, row, qw, 4) }
	case Q5_K:
		return func(dst []byte, row, qw []float32) []byte { return quantizeMinMaxKWeighted(dst, row, qw, 5) }
	case Q6_K:
		return appendQ6_K
	case Q4_0:
		return quantizeQ4_0Weighted
	case Q4_1:
		return quantizeQ4_1Weighted
	case Q5_0:
		return quantizeQ5_0Weighted
	case Q5_1:
		return quantizeQ5_1Weighted
	case IQ4_NL:
		return func(dst []byte, row, qw []float32) []byte { return quantizeIQ4(dst, row, qw, QK4_NL) }
	case IQ4_XS:
		return func(dst []byte, row, qw []float32) []byte { return quantizeIQ4(dst, row, qw, QK_K) }
	}
	return nil
}

// sumSquares is Σx² in float32, in order (σ² of ggml's weighted
// quantizers). The callers round σ² = Σx²/256 explicitly: Go computes it as
// Σx²·2⁻⁸ and, inlining importanceWeights, would fuse that product into
// σ² + x² on arm64, which can differ where σ² is subnormal.
func sumSquares(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += float32(v * v)
	}
	return s
}

// importanceWeights writes to w the weights of x's values, qw·√(σ² + x²),
// and returns their sum (the weight of the block's scale in the fit of
// the super-block's scales). The weight is rounded before it is added:
// Go may fuse a product into a sum across statements, through w[i].
func importanceWeights(w, x, qw []float32, sigma2 float32) float32 {
	var sum float32
	for i, v := range x {
		w[i] = float32(qw[i] * float32(math.Sqrt(float64(sigma2+float32(v*v)))))
		sum += w[i]
	}
	return sum
}

// positiveQuants chooses the scale of n non-negative values (the
// sub-block scales or minimums of a k-quant super-block) quantized to
// 0..nmax (ggml's make_qp_quants): a first scale from the largest value,
// then 8 trial scales around it, keeping the lowest weighted squared
// error, then up to five passes that move single levels while the
// weighted least-squares fit improves. It writes the levels to l.
//
// As in ggml, levels are clamped above only: a negative value (which the
// fits above never give) would wrap in l's bytes, and the wrapped level is
// what the later passes see.
func positiveQuants(x []float32, nmax int, l []uint8, qw []float32) float32 {
	var hi float32
	for _, v := range x {
		if !(hi > v) {
			hi = v
		}
	}
	if hi < groupMaxEps {
		clear(l)
		return 0
	}
	iscale := float32(nmax) / hi
	for i, v := range x {
		l[i] = uint8(nearestInt(float32(iscale * v)))
	}
	scale := 1 / iscale
	var best float32
	for i, v := range x {
		diff := v - float32(scale*float32(l[i]))
		best += float32(float32(qw[i]*diff) * diff)
	}
	for is := -4; is <= 4; is++ {
		if is == 0 {
			continue
		}
		iscaleIs := (float32(0.1*float32(is)) + float32(nmax)) / hi
		scaleIs := 1 / iscaleIs
		var mse float32
		for i, v := range x {
			q := min(nmax, nearestInt(float32(iscaleIs*v)))
			diff := v - float32(scaleIs*float32(q))
			mse += float32(float32(qw[i]*diff) * diff)
		}
		if mse < best {
			best, iscale = mse, iscaleIs
		}
	}
	var sumLX, sumL2 float32
	for i, v := range x {
		q := min(nmax, nearestInt(float32(iscale*v)))
		l[i] = uint8(q)
		sumLX += float32(float32(qw[i]*v) * float32(q))
		sumL2 += float32(float32(qw[i]*float32(q)) * float32(q))
	}
	for range 5 {
		changed := false
		for i, v := range x {
			w, q := qw[i], float32(l[i])
			slx := sumLX - float32(float32(w*v)*q)
			sl2 := sumL2 - float32(float32(w*q)*q)
			if !(slx > 0 && sl2 > 0) {
				continue
			}
			nq := min(nmax, nearestInt(float32(v*sl2)/slx))
			if nq == int(l[i]) {
				continue
			}
			slx += float32(float32(w*v) * float32(nq))
			sl2 += float32(float32(w*float32(nq)) * float32(nq))
			if float32(float32(slx*slx)*sumL2) > float32(float32(sumLX*sumLX)*sl2) {
				l[i], sumLX, sumL2 = uint8(nq), slx, sl2
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	if sumL2 > 0 {
		return sumLX / sumL2
	}
	return 0
}

// The trial scales of the weighted minimum-and-scale fits (ggml's
// make_qkx3_quants with −0.9, 0.05, 36: nmax−0.9 to nmax+0.9). With
// weights given, make_qkx3_quants computes what make_qkx2_quants does, so
// minMaxQuants serves both.
const (
	weightedRmin   = float32(-0.9)
	weightedRdelta = float32(0.05)
	weightedNstep  = 36
)

// quantizeQ2_KWeighted appends the Q2_K super-blocks of row (ggml's
// quantize_row_q2_K_impl): per sub-block of 16 a scale and a minimum from
// minMaxQuants (squared error, not the reference's absolute one), then
// both sets fitted to 4 bits by positiveQuants, weighted by the
// sub-blocks' total weight, and the values requantized with the stored
// ones.
func quantizeQ2_KWeighted(dst []byte, row, qw []float32) []byte {
	var (
		l                  [QK_K]uint8
		aux                [16]uint8
		w                  [16]float32
		scales, negMin, sw [QK_K / 16]float32
		ls, lm             [QK_K / 16]uint8
	)
	for b := 0; b < len(row); b += QK_K {
		blk := row[b : b+QK_K]
		sigma2 := float32(sumSquares(blk) / QK_K)
		for j := range QK_K / 16 {
			sub := blk[16*j : 16*j+16]
			sw[j] = importanceWeights(w[:], sub, qw[b+16*j:b+16*j+16], sigma2)
			scales[j], negMin[j] = minMaxQuants(sub, w[:], 3, l[16*j:16*j+16], aux[:], weightedRmin, weightedRdelta, weightedNstep, false)
		}
		d := positiveQuants(scales[:], 15, ls[:], sw[:])
		m := positiveQuants(negMin[:], 15, lm[:], sw[:])
		var sc [QK_K / 16]byte
		for j := range sc {
			sc[j] = ls[j] | lm[j]<<4
		}
		dst = appendQ2_KBlock(dst, blk, &l, sc, f16(d), f16(m))
	}
	return dst
}

// quantizeQ3_KWeighted appends the Q3_K super-blocks of row (ggml's
// quantize_row_q3_K_impl): per sub-block of 16 a scale from
// symmetricQuants (not the reference's level-moving refinedQuants), then
// the 16 scales themselves fitted to 6 bits by symmetricQuants, weighted
// by the sub-blocks' total weight.
func quantizeQ3_KWeighted(dst []byte, row, qw []float32) []byte {
	var (
		l          [QK_K]int8
		w          [16]float32
		scales, sw [QK_K / 16]float32
		ls         [QK_K / 16]int8
		q          [QK_K / 16]uint8
	)
	for b := 0; b < len(row); b += QK_K {
		blk := row[b : b+QK_K]
		sigma2 := float32(float32(2*sumSquares(blk)) / QK_K)
		for j := range QK_K / 16 {
			sub := blk[16*j : 16*j+16]
			sw[j] = importanceWeights(w[:], sub, qw[b+16*j:b+16*j+16], sigma2)
			scales[j] = symmetricQuants(sub, 4, l[16*j:16*j+16], w[:])
		}
		d := symmetricQuants(scales[:], 32, ls[:], sw[:])
		for j, v := range ls {
			q[j] = uint8(v)
		}
		dst = appendQ3_KBlock(dst, blk, &l, packScalesQ3K(&q), f16(d))
	}
	return dst
}

// quantizeMinMaxKWeighted appends the Q4_K (bits 4) or Q5_K (bits 5)
// super-blocks of row (ggml's quantize_row_q4_K_impl and _q5_K_impl): per
// sub-block of 32 a scale and a minimum from minMaxQuants, then both sets
// fitted to 6 bits by positiveQuants, weighted by the sub-blocks' total
// weight.
func quantizeMinMaxKWeighted(dst []byte, row, qw []float32, bits int) []byte {
	nmax := 1<<bits - 1
	var (
		l                  [QK_K]uint8
		aux                [32]uint8
		w                  [32]float32
		scales, negMin, sw [QK_K / 32]float32
		ls, lm             [QK_K / 32]uint8
	)
	for b := 0; b < len(row); b += QK_K {
		blk := row[b : b+QK_K]
		sigma2 := float32(float32(2*sumSquares(blk)) / QK_K)
		for j := range QK_K / 32 {
			sub := blk[32*j : 32*j+32]
			sw[j] = importanceWeights(w[:], sub, qw[b+32*j:b+32*j+32], sigma2)
			scales[j], negMin[j] = minMaxQuants(sub, w[:], nmax, l[32*j:32*j+32], aux[:], weightedRmin, weightedRdelta, weightedNstep, false)
		}
		d := positiveQuants(scales[:], 63, ls[:], sw[:])
		m := positiveQuants(negMin[:], 63, lm[:], sw[:])
		if bits == 5 {
			// ggml clamps Q5_K's levels to 6 bits, Q4_K's not: they differ
			// only for a wrapped negative level, which the fits never give.
			for j := range ls {
				ls[j], lm[j] = min(63, ls[j]), min(63, lm[j])
			}
		}
		dst = appendMinMaxKBlock(dst, blk, &l, packScalesMinsK(&ls, &lm), f16(d), f16(m), bits)
	}
	return dst
}

// rowSigma2 is the σ² of the 32-value types' weights: the mean square of
// the whole row.
func rowSigma2(row []float32) float32 { return sumSquares(row) / float32(len(row)) }

// quantizeQ4_0Weighted appends the Q4_0 blocks of row (ggml's
// quantize_row_q4_0_impl): each block's scale from symmetricQuants with
// levels −8..7.
func quantizeQ4_0Weighted(dst []byte, row, qw []float32) []byte {
	var (
		l [QK4_0]int8
		w [QK4_0]float32
	)
	sigma2 := rowSigma2(row)
	for b := 0; b < len(row); b += QK4_0 {
		blk := row[b : b+QK4_0]
		importanceWeights(w[:], blk, qw[b:b+QK4_0], sigma2)
		d := symmetricQuants(blk, 8, l[:], w[:])
		dst = binary.LittleEndian.AppendUint16(dst, f16(d))
		for j := range QK4_0 / 2 {
			dst = append(dst, byte(l[j])|byte(l[j+QK4_0/2])<<4)
		}
	}
	return dst
}

// quantizeQ5_0Weighted appends the Q5_0 blocks of row (ggml's
// quantize_row_q5_0_impl): each block's scale from symmetricQuants with
// levels −16..15.
func quantizeQ5_0Weighted(dst []byte, row, qw []float32) []byte {
	var (
		l [QK5]int8
		q [QK5]uint8
		w [QK5]float32
	)
	sigma2 := rowSigma2(row)
	for b := 0; b < len(row); b += QK5 {
		blk := row[b : b+QK5]
		importanceWeights(w[:], blk, qw[b:b+QK5], sigma2)
		d := symmetricQuants(blk, 16, l[:], w[:])
		for j, v := range l {
			q[j] = uint8(v)
		}
		dst = binary.LittleEndian.AppendUint16(dst, f16(d))
		dst = appendQ5Levels(dst, &q)
	}
	return dst
}

// quantizeQ4_1Weighted appends the Q4_1 blocks of row (ggml's
// quantize_row_q4_1_impl): each block's scale and minimum from
// minMaxQuants with levels 0..15.
func quantizeQ4_1Weighted(dst []byte, row, qw []float32) []byte {
	return quantizeMin32Weighted(dst, row, qw, 4)
}

// quantizeQ5_1Weighted appends the Q5_1 blocks of row (ggml's
// quantize_row_q5_1_impl): each block's scale and minimum from
// minMaxQuants with levels 0..31.
func quantizeQ5_1Weighted(dst []byte, row, qw []float32) []byte {
	return quantizeMin32Weighted(dst, row, qw, 5)
}

// quantizeMin32Weighted appends the Q4_1 (bits 4) or Q5_1 (bits 5) blocks
// of row, each block's scale and minimum from minMaxQuants with levels
// 0..2^bits−1.
func quantizeMin32Weighted(dst []byte, row, qw []float32, bits int) []byte {
	var (
		l, aux [QK5]uint8
		w      [QK5]float32
	)
	sigma2 := rowSigma2(row)
	for b := 0; b < len(row); b += QK5 {
		blk := row[b : b+QK5]
		importanceWeights(w[:], blk, qw[b:b+QK5], sigma2)
		d, negMin := minMaxQuants(blk, w[:], 1<<bits-1, l[:], aux[:], weightedRmin, weightedRdelta, weightedNstep, false)
		dst = binary.LittleEndian.AppendUint16(dst, f16(d))
		dst = binary.LittleEndian.AppendUint16(dst, f16(-negMin))
		if bits == 4 {
			dst = appendNibbles(dst, &l)
		} else {
			dst = appendQ5Levels(dst, &l)
		}
	}
	return dst
}

// appendQ5Levels appends the levels (0..31) of a Q5_0 or Q5_1 block: the
// fifth bits (value j's in bit j of a little-endian uint32), then the
// nibbles (byte j: value j low, value j+16 high).
func appendQ5Levels(dst []byte, l *[QK5]uint8) []byte {
	var qh uint32
	for j, q := range l {
		qh |= uint32(q>>4&1) << j
	}
	dst = binary.LittleEndian.AppendUint32(dst, qh)
	for j := range QK5 / 2 {
		dst = append(dst, l[j]&0xf|(l[j+QK5/2]&0xf)<<4)
	}
	return dst
}
