package main

import (
	"fmt"
	"log"
)

// Skinny kernels for products with few output columns (a LoRA rank as n:
// h = x·Aᵀ, dh = g·B), where op(B) is a small k×n matrix but A is the big
// m×k activation. The blocked kernel would pack all of A to use at most
// half of its 32-column tile; these read A's rows in place instead and a
// k×16 panel of op(B) packed like any B micro-panel (pack.go), computing
// rows×16 of C per call:
//
//	func sgemmKernelAVX512R<rows>x16(kc int, a *float32, lda int, b, c *float32, ldc int, mask int, alpha, beta float32)
//	for i < rows, j < 16 with bit j of mask set:
//	    s := sum_p a[i*lda+p]*b[p*16+j]
//	    c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]  (alpha*s when beta == ±0)
//
// Columns whose mask bit is clear are neither read nor written, so the
// last strip of an n that is not a multiple of 16 needs no edge tile.
//
// Each k step loads one B vector and multiplies it by one A value of every
// row, broadcast from memory inside the FMA ({1to16}), so rows+1 loads feed
// rows FMAs, all from L1 (the rows×kc block of A and the kc×16 panel).
// Row i is addressed as base[i/3] + (i%3)*lda: rows/3+1 base registers and
// one lda register reach every row with the x1/x2 index scales.

// A's rows are streamed from memory (the activation is megabytes), rows
// streams at once; each k step also prefetches one row skinnyPF bytes
// ahead, all rows in turn over a 16-step unrolled loop (a row's 64-byte
// line lasts 16 steps). Measured on Sapphire Rapids for the LoRA shapes
// (M=2048, k=128..704): 8-15% faster than leaving A to the hardware
// prefetchers, which do not keep 16 streams far enough ahead.
const skinnyPF = 512

// avx512Skinny are the row counts generated; the driver uses the largest.
var avx512Skinny = []int{16}

func avx512SkinnyKernels() []byte {
	out := []byte(header)
	for _, rows := range avx512Skinny {
		out = append(out, avx512RowsKernel(rows)...)
	}
	return out
}

func avx512RowsKernel(rows int) []byte {
	const unroll = 16 // one prefetch per step covers 16 rows per line
	const nbz = 4     // B vectors rotate through nbz registers
	bases := []string{"AX", "R8", "R9", "R10", "R11", "R12", "R14"}
	nb := (rows + 2) / 3
	if rows+nbz+2 > 32 || nb > len(bases) {
		log.Fatalf("skinny kernel: %d rows do not fit the register files", rows)
	}
	// Z0..rows-1 accumulate; B vectors rotate through the next nbz
	// registers; alpha and beta follow.
	bFirst := rows
	alpha, beta := rows+nbz, rows+nbz+1
	name := fmt.Sprintf("sgemmKernelAVX512R%dx16", rows)
	var b w
	b.f("// func %s(kc int, a *float32, lda int, b, c *float32, ldc int, mask int, alpha, beta float32)", name)
	b.f("TEXT ·%s(SB), NOSPLIT, $0-64", name)
	b.f("\tMOVQ kc+0(FP), CX")
	b.f("\tMOVQ a+8(FP), AX")
	b.f("\tMOVQ lda+16(FP), R13")
	b.f("\tSHLQ $2, R13")
	b.f("\tMOVQ b+24(FP), BX")
	b.f("\tMOVQ c+32(FP), DI")
	b.f("\tMOVQ ldc+40(FP), SI")
	b.f("\tSHLQ $2, SI")
	// base[q] = a + 3q*lda
	b.f("\tLEAQ (R13)(R13*2), DX // 3*lda")
	for q := 1; q < nb; q++ {
		b.f("\tLEAQ (%s)(DX*1), %s", bases[q-1], bases[q])
	}
	for i := 0; i < rows; i++ {
		b.f("\tVPXORD Z%d, Z%d, Z%d", i, i, i)
	}
	row := func(i, disp int) string {
		base := bases[i/3]
		switch i % 3 {
		case 0:
			return fmt.Sprintf("%d(%s)", disp, base)
		case 1:
			return fmt.Sprintf("%d(%s)(R13*1)", disp, base)
		}
		return fmt.Sprintf("%d(%s)(R13*2)", disp, base)
	}
	// step u is k step p+u of the loop: B vector at b+64u, A values at
	// column offset 4u of every row.
	step := func(u int, prefetch bool) {
		if prefetch {
			b.f("\tPREFETCHT0 %s", row(u%rows, skinnyPF+4*u))
		}
		bz := bFirst + u%nbz
		b.f("\tVMOVUPS %d(BX), Z%d", u*64, bz)
		for i := 0; i < rows; i++ {
			b.f("\tVFMADD231PS.BCST %s, Z%d, Z%d", row(i, 4*u), bz, i)
		}
	}
	advance := func(steps int) {
		for q := 0; q < nb; q++ {
			b.f("\tADDQ $%d, %s", 4*steps, bases[q])
		}
		b.f("\tADDQ $%d, BX", 64*steps)
	}
	b.f("\tMOVQ CX, DX")
	b.f("\tSHRQ $4, DX")
	b.f("\tJZ rtail")
	b.f("rloop:")
	for u := 0; u < unroll; u++ {
		step(u, true)
	}
	advance(unroll)
	b.f("\tDECQ DX")
	b.f("\tJNZ rloop")
	b.f("rtail:")
	b.f("\tANDQ $%d, CX", unroll-1)
	b.f("\tJZ rstore")
	b.f("rtail1:")
	step(0, false)
	advance(1)
	b.f("\tDECQ CX")
	b.f("\tJNZ rtail1")
	b.f("rstore:")
	b.f("\tMOVQ mask+48(FP), DX")
	b.f("\tKMOVW DX, K1")
	b.f("\tVBROADCASTSS alpha+56(FP), Z%d", alpha)
	b.f("\tMOVL beta+60(FP), DX")
	b.f("\tSHLL $1, DX // drop the sign: -0 is zero too")
	b.f("\tJZ rbeta0")
	b.f("\tVBROADCASTSS beta+60(FP), Z%d", beta)
	for i := 0; i < rows; i++ {
		t := bFirst + i%nbz
		b.f("\tVMOVUPS.Z (DI), K1, Z%d", t)
		b.f("\tVMULPS Z%d, Z%d, Z%d", alpha, i, i)
		b.f("\tVFMADD231PS Z%d, Z%d, Z%d", t, beta, i)
		b.f("\tVMOVUPS Z%d, K1, (DI)", i)
		b.f("\tADDQ SI, DI")
	}
	b.f("\tVZEROUPPER")
	b.f("\tRET")
	b.f("rbeta0:")
	for i := 0; i < rows; i++ {
		b.f("\tVMULPS Z%d, Z%d, Z%d", alpha, i, i)
		b.f("\tVMOVUPS Z%d, K1, (DI)", i)
		b.f("\tADDQ SI, DI")
	}
	b.f("\tVZEROUPPER")
	b.f("\tRET")
	return b.Bytes()
}
