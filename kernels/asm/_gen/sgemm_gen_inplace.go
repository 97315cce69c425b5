package main

import "fmt"

// In-place-A kernels for the blocked driver (gemmPacked): the 12×32 tile
// of sgemmKernelAVX512, but with A's 12 rows read where they are stored
// (row-major, leading dimension lda) instead of from a packed micro-panel,
// so a row-major A is never copied:
//
//	func sgemmKernelAVX512R12x32(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)
//	for i < 12, j < 32: s := sum_p a[i*lda+p]*b[p*32+j]
//	    c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]  (alpha*s when beta == ±0)
//
// b is a packed kc×32 B micro-panel (pack.go), as for sgemmKernelAVX512.
// Row i is addressed as base[i/3] + (i%3)*lda, as in the skinny kernels
// (sgemm_gen_skinny.go): four base registers and one lda register.
//
// bcst selects how A reaches the FMAs: false broadcasts each A value into
// a register (VBROADCASTSS, 12+2 loads per 24 FMAs, as the packed kernel),
// true uses the FMA's embedded broadcast (24+2 loads per 24 FMAs).
// Measured on the 2-core Sapphire Rapids VM, one 12×32 tile with kc=256,
// lda=576 and its operands in L1/L2 (6 rounds): packed kernel 103-135
// GFLOP/s, in place with explicit broadcasts 95-131, embedded broadcasts
// 79-123 (load-port bound). The committed kernel uses explicit broadcasts;
// -inplacebcst writes the other for experiments.
func avx512InPlaceKernels() []byte {
	return append([]byte(header), avx512InPlaceKernel("sgemmKernelAVX512R12x32", inPlaceBcst, inPlacePF)...)
}

var inPlaceBcst = false

// inPlacePF is how far ahead (bytes) each A row is prefetched, one row per
// k step of the 16-step loop, so every row's next line is requested once
// per 16 steps. A micro-panel's first pass over a new kc block reads its
// rows from L3 or memory in pieces of kc*4 bytes (768 for kc=192), too
// short for the hardware prefetchers to follow 12 of them: without the
// prefetch the SmolLM2 shapes (lda=576, 1536) ran at 87 against 112
// GFLOP/s packed (best of 8 rounds); with it, at 113-115. 256 and 1024
// measured the same as 512. With A in L1 the prefetches cost nothing
// measurable (95-131 against 98-130 GFLOP/s without). -inplacepf changes it.
var inPlacePF = 512

func avx512InPlaceKernel(name string, bcst bool, pf int) []byte {
	const mr, nv, nr = 12, 2, 32
	const unroll = 16
	bases := []string{"AX", "R8", "R9", "R10"}
	bReg, tFirst := mr*nv, mr*nv+nv // Z24, Z25 hold B; Z26-Z31 broadcasts
	nt := 32 - tFirst
	var b w
	b.f("// func %s(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)", name)
	b.f("TEXT ·%s(SB), NOSPLIT, $0-56", name)
	b.f("\tMOVQ kc+0(FP), CX")
	b.f("\tMOVQ a+8(FP), AX")
	b.f("\tMOVQ lda+16(FP), R13")
	b.f("\tSHLQ $2, R13")
	b.f("\tMOVQ b+24(FP), BX")
	b.f("\tMOVQ c+32(FP), DI")
	b.f("\tMOVQ ldc+40(FP), SI")
	b.f("\tSHLQ $2, SI")
	b.f("\tLEAQ (R13)(R13*2), DX // 3*lda")
	for q := 1; q < len(bases); q++ {
		b.f("\tLEAQ (%s)(DX*1), %s", bases[q-1], bases[q])
	}
	for i := 0; i < mr*nv; i++ {
		b.f("\tVPXORD Z%d, Z%d, Z%d", i, i, i)
	}
	// Touch the C tile now so its lines arrive while the k loop runs.
	b.f("\tMOVQ DI, R11")
	for i := 0; i < mr; i++ {
		for off := 0; off < nr*4; off += 64 {
			b.f("\tPREFETCHT0 %d(R11)", off)
		}
		b.f("\tADDQ SI, R11")
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
	step := func(u int, prefetch bool) {
		if prefetch && pf > 0 && u < mr {
			// Row u's line pf bytes ahead: over the 16 steps of one
			// unrolled iteration (one 64-byte line of every row) each
			// row is prefetched once.
			b.f("\tPREFETCHT0 %s", row(u, pf+4*u))
		}
		for x := 0; x < nv; x++ {
			b.f("\tVMOVUPS %d(BX), Z%d", (u*nr+16*x)*4, bReg+x)
		}
		for i := 0; i < mr; i++ {
			if bcst {
				for x := 0; x < nv; x++ {
					b.f("\tVFMADD231PS.BCST %s, Z%d, Z%d", row(i, 4*u), bReg+x, nv*i+x)
				}
				continue
			}
			t := tFirst + i%nt
			b.f("\tVBROADCASTSS %s, Z%d", row(i, 4*u), t)
			for x := 0; x < nv; x++ {
				b.f("\tVFMADD231PS Z%d, Z%d, Z%d", t, bReg+x, nv*i+x)
			}
		}
	}
	advance := func(steps int) {
		for _, r := range bases {
			b.f("\tADDQ $%d, %s", 4*steps, r)
		}
		b.f("\tADDQ $%d, BX", nr*4*steps)
	}
	b.f("\tMOVQ CX, DX")
	b.f("\tSHRQ $4, DX")
	b.f("\tJZ itail")
	b.f("iloop:")
	for u := 0; u < unroll; u++ {
		step(u, true)
	}
	advance(unroll)
	b.f("\tDECQ DX")
	b.f("\tJNZ iloop")
	b.f("itail:")
	b.f("\tANDQ $%d, CX", unroll-1)
	b.f("\tJZ istore")
	b.f("itail1:")
	step(0, false)
	advance(1)
	b.f("\tDECQ CX")
	b.f("\tJNZ itail1")
	b.f("istore:")
	// The store sequence of sgemmKernelAVX512 (vecKernel): C = alpha*acc +
	// beta*C, and beta == ±0 writes alpha*acc without reading C.
	alpha, beta := tFirst, tFirst+1
	b.f("\tVBROADCASTSS alpha+48(FP), Z%d", alpha)
	b.f("\tMOVL beta+52(FP), R9")
	b.f("\tSHLL $1, R9 // drop the sign: -0 is zero too")
	b.f("\tJZ ibeta0")
	b.f("\tVBROADCASTSS beta+52(FP), Z%d", beta)
	for i := 0; i < mr; i++ {
		for x := 0; x < nv; x++ {
			r := nv*i + x
			b.f("\tVMULPS Z%d, Z%d, Z%d", alpha, r, r)
			b.f("\tVFMADD231PS %d(DI), Z%d, Z%d", 64*x, beta, r)
			b.f("\tVMOVUPS Z%d, %d(DI)", r, 64*x)
		}
		b.f("\tADDQ SI, DI")
	}
	b.f("\tVZEROUPPER")
	b.f("\tRET")
	b.f("ibeta0:")
	for i := 0; i < mr; i++ {
		for x := 0; x < nv; x++ {
			r := nv*i + x
			b.f("\tVMULPS Z%d, Z%d, Z%d", alpha, r, r)
			b.f("\tVMOVUPS Z%d, %d(DI)", r, 64*x)
		}
		b.f("\tADDQ SI, DI")
	}
	b.f("\tVZEROUPPER")
	b.f("\tRET")
	return b.Bytes()
}
