package main

// The packing helpers and the few-row dot kernels, written by main in
// sgemm_gen.go.

// packAVX: packA4AVX transposes 4 rows of row-major A, 8 k steps at a
// time, into an A micro-panel: two unpack and two shuffle rounds turn four
// 8-float rows into eight 4-float columns (one per k step, as 128-bit
// halves), stored mr floats apart. 8 shuffles per 32 floats instead of 32
// scalar moves; the Go loop it replaces cost a tenth of a 1024³ GEMM.
func packAVX() []byte {
	out := append([]byte(header), packA4(false)...)
	out = append(out, packA4(true)...)
	return append(out, cvtBF16()...)
}

// packA4 writes packA4AVX, or with bf16 packA4BF16AVX, the same transposer
// reading bfloat16 rows: VPMOVZXWD widens 8 of them to 32 bits and a shift
// by 16 makes them the float32s they stand for.
func packA4(bf16 bool) []byte {
	var b w
	name, elem, typ := "packA4AVX", 4, "float32"
	if bf16 {
		name, elem, typ = "packA4BF16AVX", 2, "uint16"
	}
	b.f("// func %s(dst *float32, a *%s, lda, n8, mr int)", name, typ)
	b.f("TEXT ·%s(SB), NOSPLIT, $0-40", name)
	b.f("\tMOVQ dst+0(FP), DI")
	b.f("\tMOVQ a+8(FP), SI")
	b.f("\tMOVQ lda+16(FP), R8")
	b.f("\tSHLQ $%d, R8", elem/2)
	b.f("\tMOVQ n8+24(FP), CX")
	b.f("\tMOVQ mr+32(FP), R9")
	b.f("\tSHLQ $2, R9 // bytes per k step in the panel")
	b.f("\tLEAQ (SI)(R8*2), R10 // row 2")
	b.f("\tLEAQ (R9)(R9*2), R11 // 3 k steps")
	b.f("\tMOVQ R9, R12")
	b.f("\tSHLQ $2, R12 // 4 k steps")
	b.f("\tTESTQ CX, CX")
	b.f("\tJZ done")
	b.f("loop:")
	for r, src := range []string{"(SI)", "(SI)(R8*1)", "(R10)", "(R10)(R8*1)"} {
		if bf16 {
			b.f("\tVPMOVZXWD %s, Y%d", src, r)
			b.f("\tVPSLLD $16, Y%d, Y%d", r, r)
		} else {
			b.f("\tVMOVUPS %s, Y%d", src, r)
		}
	}
	b.f("\tVUNPCKLPS Y1, Y0, Y4 // r0p0 r1p0 r0p1 r1p1 | p4 p5")
	b.f("\tVUNPCKHPS Y1, Y0, Y5 // r0p2 r1p2 r0p3 r1p3 | p6 p7")
	b.f("\tVUNPCKLPS Y3, Y2, Y6")
	b.f("\tVUNPCKHPS Y3, Y2, Y7")
	b.f("\tVSHUFPS $0x44, Y6, Y4, Y0 // r0..r3 at p0 | p4")
	b.f("\tVSHUFPS $0xEE, Y6, Y4, Y1 // p1 | p5")
	b.f("\tVSHUFPS $0x44, Y7, Y5, Y2 // p2 | p6")
	b.f("\tVSHUFPS $0xEE, Y7, Y5, Y3 // p3 | p7")
	b.f("\tVMOVUPS X0, (DI)")
	b.f("\tVMOVUPS X1, (DI)(R9*1)")
	b.f("\tVMOVUPS X2, (DI)(R9*2)")
	b.f("\tVMOVUPS X3, (DI)(R11*1)")
	b.f("\tLEAQ (DI)(R12*1), DX")
	b.f("\tVEXTRACTF128 $1, Y0, (DX)")
	b.f("\tVEXTRACTF128 $1, Y1, (DX)(R9*1)")
	b.f("\tVEXTRACTF128 $1, Y2, (DX)(R9*2)")
	b.f("\tVEXTRACTF128 $1, Y3, (DX)(R11*1)")
	b.f("\tLEAQ (DX)(R12*1), DI")
	b.f("\tADDQ $%d, SI", 8*elem)
	b.f("\tADDQ $%d, R10", 8*elem)
	b.f("\tDECQ CX")
	b.f("\tJNZ loop")
	b.f("done:")
	b.f("\tVZEROUPPER")
	b.f("\tRET")
	return b.Bytes()
}

// cvtBF16 writes cvtBF16AVX: rows×(8*n8) bfloat16s, rows ld apart, to
// float32 rows 8*n8 apart: a row-major bf16 B block to its packed panel.
func cvtBF16() []byte {
	var b w
	b.f("// func cvtBF16AVX(dst *float32, src *uint16, ld, rows, n8 int)")
	b.f("TEXT ·cvtBF16AVX(SB), NOSPLIT, $0-40")
	b.f("\tMOVQ dst+0(FP), DI")
	b.f("\tMOVQ src+8(FP), SI")
	b.f("\tMOVQ ld+16(FP), R8")
	b.f("\tSHLQ $1, R8")
	b.f("\tMOVQ rows+24(FP), CX")
	b.f("\tMOVQ n8+32(FP), R9")
	b.f("\tTESTQ CX, CX")
	b.f("\tJZ done")
	b.f("\tTESTQ R9, R9")
	b.f("\tJZ done")
	b.f("row:")
	b.f("\tMOVQ SI, R10")
	b.f("\tMOVQ R9, DX")
	b.f("col:")
	b.f("\tVPMOVZXWD (R10), Y0")
	b.f("\tVPSLLD $16, Y0, Y0")
	b.f("\tVMOVUPS Y0, (DI)")
	b.f("\tADDQ $16, R10")
	b.f("\tADDQ $32, DI")
	b.f("\tDECQ DX")
	b.f("\tJNZ col")
	b.f("\tADDQ R8, SI")
	b.f("\tDECQ CX")
	b.f("\tJNZ row")
	b.f("done:")
	b.f("\tVZEROUPPER")
	b.f("\tRET")
	return b.Bytes()
}

// dot8 writes sgemmDot8AVX512 (or, with bf16, sgemmDot8BF16AVX512): one
// row of A (k floats, contiguous) against eight stored rows of an n×k B,
// giving 8 consecutive outputs c[0..7] = alpha*dot + beta*c. This is the
// transB product for a few rows (one token, where B is a weight in the
// Hugging Face [out, in] layout): B is read once, in place, k contiguous,
// 16 lanes per FMA, and the eight accumulators are summed across lanes
// only at the end (a hadd tree, then one 256-bit store). The k tail is a
// masked load, so nothing past row ends is read.
func dot8(bf16 bool) []byte {
	var b w
	name, bshift, bstep, aIdx, btype := "sgemmDot8AVX512", 2, 64, "(AX)(DX*1)", "float32"
	if bf16 {
		name, bshift, bstep, aIdx, btype = "sgemmDot8BF16AVX512", 1, 32, "(AX)(DX*2)", "uint16"
	}
	b.f("// func %s(k int, a *float32, b *%s, ldb int, c *float32, alpha, beta float32)", name, btype)
	b.f("TEXT ·%s(SB), NOSPLIT, $0-48", name)
	b.f("\tMOVQ k+0(FP), CX")
	b.f("\tMOVQ a+8(FP), AX")
	b.f("\tMOVQ b+16(FP), BX")
	b.f("\tMOVQ ldb+24(FP), R9")
	b.f("\tSHLQ $%d, R9", bshift)
	rows := []string{"BX", "R8", "R10", "R11", "R12", "R13", "SI", "DI"}
	b.f("\tLEAQ (BX)(R9*1), R8")
	b.f("\tLEAQ (BX)(R9*2), R10")
	b.f("\tLEAQ (R8)(R9*2), R11")
	b.f("\tLEAQ (BX)(R9*4), R12")
	b.f("\tLEAQ (R8)(R9*4), R13")
	b.f("\tLEAQ (R10)(R9*4), SI")
	b.f("\tLEAQ (R11)(R9*4), DI")
	for i := 0; i < 8; i++ {
		b.f("\tVPXORD Z%d, Z%d, Z%d", i, i, i)
	}
	b.f("\tXORQ DX, DX // byte offset into the B rows")
	load := func(i int, mask string) {
		src := "(" + rows[i] + ")(DX*1)"
		t := 9 + i
		if bf16 {
			b.f("\tVPMOVZXWD%s %s, %sZ%d", mask, src, maskReg(mask), t)
			b.f("\tVPSLLD $16, Z%d, Z%d", t, t)
			b.f("\tVFMADD231PS Z%d, Z8, Z%d", t, i)
		} else if mask != "" {
			b.f("\tVMOVUPS%s %s, %sZ%d", mask, src, maskReg(mask), t)
			b.f("\tVFMADD231PS Z%d, Z8, Z%d", t, i)
		} else {
			b.f("\tVFMADD231PS %s, Z8, Z%d", src, i)
		}
	}
	b.f("\tMOVQ CX, R9")
	b.f("\tSHRQ $4, R9")
	b.f("\tJZ tail")
	b.f("loop:")
	b.f("\tVMOVUPS %s, Z8", aIdx)
	for i := 0; i < 8; i++ {
		load(i, "")
	}
	b.f("\tADDQ $%d, DX", bstep)
	b.f("\tDECQ R9")
	b.f("\tJNZ loop")
	b.f("tail:")
	b.f("\tANDQ $15, CX")
	b.f("\tJZ reduce")
	b.f("\tMOVL $1, R9")
	b.f("\tSHLL CX, R9")
	b.f("\tDECL R9")
	b.f("\tKMOVW R9, K1")
	b.f("\tVMOVUPS.Z %s, K1, Z8", aIdx)
	for i := 0; i < 8; i++ {
		load(i, ".Z")
	}
	b.f("reduce:")
	for i := 0; i < 8; i++ {
		b.f("\tVEXTRACTF64X4 $1, Z%d, Y8", i)
		b.f("\tVADDPS Y8, Y%d, Y%d", i, i)
	}
	b.f("\tVHADDPS Y1, Y0, Y0 // a01 a23 b01 b23 | a45 a67 b45 b67")
	b.f("\tVHADDPS Y3, Y2, Y2")
	b.f("\tVHADDPS Y2, Y0, Y0 // a b c d (k lanes 0-3) | a b c d (lanes 4-7)")
	b.f("\tVHADDPS Y5, Y4, Y4")
	b.f("\tVHADDPS Y7, Y6, Y6")
	b.f("\tVHADDPS Y6, Y4, Y4")
	b.f("\tVPERM2F128 $0x20, Y4, Y0, Y1")
	b.f("\tVPERM2F128 $0x31, Y4, Y0, Y2")
	b.f("\tVADDPS Y2, Y1, Y0 // the 8 dot products")
	b.f("\tVBROADCASTSS alpha+40(FP), Y1")
	b.f("\tVMULPS Y1, Y0, Y0")
	b.f("\tMOVQ c+32(FP), DI")
	b.f("\tMOVL beta+44(FP), R9")
	b.f("\tSHLL $1, R9 // drop the sign: -0 is zero too")
	b.f("\tJZ store")
	b.f("\tVBROADCASTSS beta+44(FP), Y2")
	b.f("\tVFMADD231PS (DI), Y2, Y0")
	b.f("store:")
	b.f("\tVMOVUPS Y0, (DI)")
	b.f("\tVZEROUPPER")
	b.f("\tRET")
	return b.Bytes()
}

func maskReg(mask string) string {
	if mask == "" {
		return ""
	}
	return "K1, "
}
