package ptxsim

import (
	"fmt"
	"math"
)

// warpThread returns lane l of the warp lanes belongs to, parked or not
// (nil past the end of a partial warp).
func warpThread(b *block, lanes *[32]*thread, l int) *thread {
	for _, t := range lanes {
		if t != nil {
			i := t.lin - t.lane + l
			if i < len(b.threads) {
				return &b.threads[i]
			}
			return nil
		}
	}
	return nil
}

// Shuffle modes.
const (
	shflUp = iota
	shflDown
	shflBfly
	shflIdx
)

// collShfl: shfl.sync.mode.b32 d|p, a, b, c, membermask. Sources are read
// before any lane writes. A source lane that does not take part gives its
// current register (the hardware leaves it undefined).
func collShfl(b *block, lanes *[32]*thread, in *inst) bool {
	var vals [32]uint64
	var preds [32]bool
	for l, t := range lanes {
		if t == nil {
			continue
		}
		r := t.r
		bv := int(r[in.b] & 31)
		c := uint32(r[in.c])
		cval := int(c & 31)
		seg := int((c >> 8) & 31)
		maxLane := (l & seg) | (cval &^ seg)
		minLane := l & seg
		var j int
		var p bool
		switch in.m {
		case shflUp:
			j = l - bv
			p = j >= maxLane
		case shflDown:
			j = l + bv
			p = j <= maxLane
		case shflBfly:
			j = l ^ bv
			p = j <= maxLane
		default:
			j = minLane | (bv &^ seg)
			p = j <= maxLane
		}
		if !p {
			j = l
		}
		src := lanes[j]
		if src == nil {
			src = warpThread(b, lanes, j)
		}
		if src == nil {
			src = t
		}
		vals[l] = src.r[in.a] & 0xFFFFFFFF
		preds[l] = p
	}
	for l, t := range lanes {
		if t == nil {
			continue
		}
		t.r[in.d] = vals[l]
		if in.d2 >= 0 {
			t.r[in.d2] = b2u(preds[l])
		}
		t.r[slotSink] = 0
	}
	return true
}

// collVote: vote.sync.{all,any,uni}.pred d, p, mask; vote.sync.ballot.b32 d, p, mask.
func collVote(b *block, lanes *[32]*thread, in *inst) bool {
	var ballot uint32
	n := 0
	for l, t := range lanes {
		if t == nil {
			continue
		}
		n++
		p := t.r[in.a] != 0
		if in.b != 0 {
			p = !p
		}
		if p {
			ballot |= 1 << l
		}
	}
	var res uint64
	switch in.m {
	case 0: // all
		res = b2u(popcount(ballot) == n)
	case 1: // any
		res = b2u(ballot != 0)
	case 2: // uni
		res = b2u(ballot == 0 || popcount(ballot) == n)
	default:
		res = uint64(ballot)
	}
	for _, t := range lanes {
		if t != nil {
			t.r[in.d] = res
		}
	}
	return true
}

func popcount(x uint32) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// fullWarp checks that all 32 lanes take part in an .aligned collective.
func fullWarp(b *block, lanes *[32]*thread, in *inst) bool {
	for l, t := range lanes {
		if t == nil {
			who := warpThread(b, lanes, 0)
			if who == nil {
				for _, u := range lanes {
					if u != nil {
						who = u
						break
					}
				}
			}
			b.newFault(FaultTrap, who, in, 0, 0, "", fmt.Sprintf("lane %d of the warp does not take part in %s (exited, diverged or past the block's threads); all 32 lanes must execute it", l, in.op))
			return false
		}
	}
	return true
}

// collLdmatrix: ldmatrix.sync.aligned.m8n8.xN[.trans].shared.b16 {d...},
// [a]. Lanes 8i..8i+7 give the row addresses of matrix i; each row is 8
// b16 elements (16 bytes, 16-byte aligned). Lane T receives of each matrix
// row T/4, columns 2(T%4) and 2(T%4)+1 (with .trans: column T/4, rows
// 2(T%4) and 2(T%4)+1), the lower column or row in the low half.
func collLdmatrix(b *block, lanes *[32]*thread, in *inst) bool {
	if !fullWarp(b, lanes, in) {
		return false
	}
	nm := len(in.v)
	var rows [4][8][]byte
	for i := 0; i < nm; i++ {
		for k := 0; k < 8; k++ {
			t := lanes[8*i+k]
			row := t.mem(in, int(in.m), t.r[in.a]+in.off, 16, accRead)
			if row == nil {
				return false
			}
			rows[i][k] = row
		}
	}
	el := func(i, row, col int) uint64 {
		return uint64(rows[i][row][2*col]) | uint64(rows[i][row][2*col+1])<<8
	}
	trans := in.n != 0
	for l, t := range lanes {
		g, q := l/4, 2*(l%4)
		for i := 0; i < nm; i++ {
			var lo, hi uint64
			if trans {
				lo, hi = el(i, q, g), el(i, q+1, g)
			} else {
				lo, hi = el(i, g, q), el(i, g, q+1)
			}
			t.r[in.v[i]] = lo | hi<<16
		}
	}
	return true
}

// collMma: mma.sync.aligned.m16n8kK.row.col.f32.{bf16,f16}.{bf16,f16}.f32
// with in.v = d[4], a[K/4], b[K/8], c[4]; in.n = K; in.m = 1 for f16
// inputs. Fragments (PTX ISA, g = lane/4, q = lane%4):
//
//	A 16xK: reg 0 {A[g][2q], A[g][2q+1]}, 1 the same at row g+8, 2 at
//	        column 2q+8, 3 at row g+8 column 2q+8.
//	B Kx8:  reg 0 {B[2q][g], B[2q+1][g]}, 1 at rows 2q+8, 2q+9.
//	C/D:    reg 0 C[g][2q], 1 C[g][2q+1], 2 C[g+8][2q], 3 C[g+8][2q+1].
//
// Products of bf16/f16 values are exact in float64; the sum is rounded
// once to float32.
func collMma(b *block, lanes *[32]*thread, in *inst) bool {
	if !fullWarp(b, lanes, in) {
		return false
	}
	K := int(in.n)
	na, nb := K/4, K/8
	f16 := in.m == 1
	var A [16][16]float64
	var B [16][8]float64
	var C [16][8]float64
	for l, t := range lanes {
		g, q := l/4, 2*(l%4)
		r := t.r
		for k := 0; k < na; k++ {
			row, col := g+8*(k&1), q+8*(k>>1)
			v := r[in.v[4+k]]
			A[row][col], A[row][col+1] = halfF64(uint16(v), f16), halfF64(uint16(v>>16), f16)
		}
		for k := 0; k < nb; k++ {
			v := r[in.v[4+na+k]]
			B[q+8*k][g], B[q+8*k+1][g] = halfF64(uint16(v), f16), halfF64(uint16(v>>16), f16)
		}
		cs := in.v[4+na+nb:]
		C[g][q] = float64(getF32(r, cs[0]))
		C[g][q+1] = float64(getF32(r, cs[1]))
		C[g+8][q] = float64(getF32(r, cs[2]))
		C[g+8][q+1] = float64(getF32(r, cs[3]))
	}
	// Each output sums its K products in order k = 0, 1, ...; the eight
	// outputs of a row accumulate side by side, so the additions of
	// different outputs overlap instead of waiting on one another.
	for i := range A {
		c := &C[i]
		s0, s1, s2, s3, s4, s5, s6, s7 := c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
		for k, a := range A[i][:K] {
			bk := &B[k]
			s0 += a * bk[0]
			s1 += a * bk[1]
			s2 += a * bk[2]
			s3 += a * bk[3]
			s4 += a * bk[4]
			s5 += a * bk[5]
			s6 += a * bk[6]
			s7 += a * bk[7]
		}
		*c = [8]float64{s0, s1, s2, s3, s4, s5, s6, s7}
	}
	var D [16][8]float32
	for i := 0; i < 16; i++ {
		for j := 0; j < 8; j++ {
			if s := C[i][j]; math.IsNaN(s) {
				D[i][j] = float32(math.NaN())
			} else {
				D[i][j] = float32(s)
			}
		}
	}
	for l, t := range lanes {
		g, q := l/4, 2*(l%4)
		putF32(t.r, in.v[0], D[g][q])
		putF32(t.r, in.v[1], D[g][q+1])
		putF32(t.r, in.v[2], D[g+8][q])
		putF32(t.r, in.v[3], D[g+8][q+1])
	}
	return true
}

// halfF64 widens an mma input, f16 or bf16 (inlined: no call through a
// func value per element).
func halfF64(h uint16, f16 bool) float64 {
	if f16 {
		return float64(f16ToF32(h))
	}
	return float64(math.Float32frombits(uint32(h) << 16))
}

// collNop: bar.warp.sync; the lanes only wait for each other.
func collNop(b *block, lanes *[32]*thread, in *inst) bool { return true }

// collActivemask: activemask.b32 d gives the lanes that reach it together
// (those parked at it when every live lane of the warp waits somewhere).
func collActivemask(b *block, lanes *[32]*thread, in *inst) bool {
	var m uint32
	for l, t := range lanes {
		if t != nil {
			m |= 1 << l
		}
	}
	for _, t := range lanes {
		if t != nil {
			t.r[in.d] = uint64(m)
		}
	}
	return true
}
