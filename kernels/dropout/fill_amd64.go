//go:build !purego

package dropout

import "github.com/klauspost/cpuid/v2"

// fillAVX512 fills groups·32 elements of dst (times x's, when x is not
// nil): per group, the eight draws whose arguments are in state (draw d of
// the group at state[d]), each argument then advanced by step; a 16-bit
// lane at least drop keeps its element (keep), one below drops it (0).
// AVX-512 F, DQ (VPMULLQ) and BW (the 16-bit compare).
//
//go:noescape
func fillAVX512(dst, x *float32, groups int, state *[8]uint64, step uint64, drop uint32, keep float32)

var haveAVX512 = cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512DQ, cpuid.AVX512BW)

// fillWide fills the largest multiple of 32 elements of dst with the
// AVX-512 kernel and returns how many it filled (0 without AVX-512: fill
// then does them all in Go). The results are fillScalar's, bit for bit
// (TestFillWideIsFillScalar): the same draws, the same products.
func fillWide(dst, x []float32, key, pos uint64, drop uint32, keep float32) int {
	groups := len(dst) / 32
	if !haveAVX512 || groups == 0 {
		return 0
	}
	var state [8]uint64
	arg, gamma := key+(pos+1)*Gamma, uint64(Gamma)
	for d := range state {
		state[d] = arg + uint64(d)*gamma
	}
	var xp *float32
	if x != nil {
		_ = x[groups*32-1] // the kernel reads this far
		xp = &x[0]
	}
	fillAVX512(&dst[0], xp, groups, &state, 8*gamma, drop, keep)
	return groups * 32
}
