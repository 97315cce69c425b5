package asm

// inPlaceMaxN is the widest C rectangle (columns per gemmPacked call) for
// which useInPlaceA reads A in place. Reading A in place saves packing it
// (a copy of mc×kc floats per block, which for a 2048-row activation comes
// from memory), but the in-place kernel runs about 5% slower than the
// packed one with its A panel in L1 (12 rows, 12 lines per k step, against
// one contiguous panel), and each panel serves n/32 kernel calls: for wide
// products the packing is paid back. Measured on the 2-core Sapphire Rapids
// VM, best of 10 interleaved rounds: +4..18% for the LoRA base products
// (n = 256, 704), +2..4% for n = 576 and 1536, within noise (-3..+4%) for
// n = 3072..49152; 2048 keeps the first group and leaves the last packed.
const inPlaceMaxN = 2048

// useInPlaceA reports whether gemmPacked reads the whole mr-row panels of
// an n-column rectangle's A in place (gemmImpl.inplace) instead of packing
// them: A must be row-major (op(A) = A) and the implementation must have
// the kernel.
func useInPlaceA(g *gemmImpl, transA bool, n int) bool {
	return g.inplace != nil && !transA && n <= inPlaceMaxN
}
