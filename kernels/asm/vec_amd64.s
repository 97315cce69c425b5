//go:build !purego

#include "textflag.h"
#include "vec_amd64.h"

// AVX2+FMA vector kernels (the exp family is in vec_exp_amd64.s). Each
// routine handles the first len - len%8 elements (whole 8-float vectors);
// vec_tail.go does the rest. The reductions keep four 8-lane accumulators
// (32 partial sums) so the adds are not serialised on latency and the
// rounding error grows with len/32. Go assembler operand order is Intel's
// reversed: VFMADD231PS m, b, a means a += b*m.

V8(negInf, 0xff800000)
V8(lowBit, 0x00000001)
V8(round7fff, 0x00007fff)
V8(bf16QNaN, 0x00007fc0)

// func dotAVX2(x, y []float32) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ x_base+0(FP), SI
	MOVQ y_base+24(FP), DI
	MOVQ x_len+8(FP), CX
	SHRQ $3, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

dot32:
	CMPQ CX, $4
	JLT  dot8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $4, CX
	JMP  dot32

dot8:
	TESTQ CX, CX
	JEQ   dotdone
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JMP  dot8

dotdone:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func sumAVX2(x []float32) float32
TEXT ·sumAVX2(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	SHRQ $3, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

sum32:
	CMPQ CX, $4
	JLT  sum8
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y1, Y1
	VADDPS 64(SI), Y2, Y2
	VADDPS 96(SI), Y3, Y3
	ADDQ $128, SI
	SUBQ $4, CX
	JMP  sum32

sum8:
	TESTQ CX, CX
	JEQ   sumdone
	VADDPS (SI), Y0, Y0
	ADDQ $32, SI
	DECQ CX
	JMP  sum8

sumdone:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func maxAVX2(x []float32) float32
// VMAXPS drops NaNs, so unordered compares are OR-ed into Y9 and checked
// at the end.
TEXT ·maxAVX2(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	SHRQ $3, CX
	VMOVUPS negInf<>(SB), Y0
	VMOVUPS Y0, Y1
	VMOVUPS Y0, Y2
	VMOVUPS Y0, Y3
	VXORPS  Y9, Y9, Y9

max32:
	CMPQ CX, $4
	JLT  max8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VMAXPS  Y4, Y0, Y0
	VMAXPS  Y5, Y1, Y1
	VMAXPS  Y6, Y2, Y2
	VMAXPS  Y7, Y3, Y3
	VCMPPS  $3, Y5, Y4, Y8
	VORPS   Y8, Y9, Y9
	VCMPPS  $3, Y7, Y6, Y8
	VORPS   Y8, Y9, Y9
	ADDQ    $128, SI
	SUBQ    $4, CX
	JMP     max32

max8:
	TESTQ CX, CX
	JEQ   maxdone
	VMOVUPS (SI), Y4
	VMAXPS  Y4, Y0, Y0
	VCMPPS  $3, Y4, Y4, Y8
	VORPS   Y8, Y9, Y9
	ADDQ    $32, SI
	DECQ    CX
	JMP     max8

maxdone:
	VMAXPS Y1, Y0, Y0
	VMAXPS Y3, Y2, Y2
	VMAXPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VMOVMSKPS Y9, AX
	VZEROUPPER
	TESTL AX, AX
	JNE   maxnan
	VMOVSS X0, ret+24(FP)
	RET

maxnan:
	MOVL $0x7fc00000, AX
	MOVL AX, ret+24(FP)
	RET

// func axpyAVX2(alpha float32, x, y []float32)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-56
	VBROADCASTSS alpha+0(FP), Y15
	MOVQ x_base+8(FP), SI
	MOVQ x_len+16(FP), CX
	MOVQ y_base+32(FP), DI
	SHRQ $3, CX

axpy32:
	CMPQ CX, $4
	JLT  axpy8
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS 32(SI), Y15, Y1
	VFMADD231PS 64(SI), Y15, Y2
	VFMADD231PS 96(SI), Y15, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $4, CX
	JMP  axpy32

axpy8:
	TESTQ CX, CX
	JEQ   axpydone
	VMOVUPS (DI), Y0
	VFMADD231PS (SI), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JMP  axpy8

axpydone:
	VZEROUPPER
	RET

// func scaleToAVX2(dst, x []float32, alpha float32)
TEXT ·scaleToAVX2(SB), NOSPLIT, $0-52
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	VBROADCASTSS alpha+48(FP), Y15
	SHRQ $3, CX

scale32:
	CMPQ CX, $4
	JLT  scale8
	VMULPS (SI), Y15, Y0
	VMULPS 32(SI), Y15, Y1
	VMULPS 64(SI), Y15, Y2
	VMULPS 96(SI), Y15, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $4, CX
	JMP  scale32

scale8:
	TESTQ CX, CX
	JEQ   scaledone
	VMULPS (SI), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JMP  scale8

scaledone:
	VZEROUPPER
	RET

// func addAVX2(dst, x, y []float32)
TEXT ·addAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ y_base+48(FP), DX
	SHRQ $3, CX

add16:
	CMPQ CX, $2
	JLT  add8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VADDPS (DX), Y0, Y0
	VADDPS 32(DX), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $2, CX
	JMP  add16

add8:
	TESTQ CX, CX
	JEQ   adddone
	VMOVUPS (SI), Y0
	VADDPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)

adddone:
	VZEROUPPER
	RET

// func mulAVX2(dst, x, y []float32)
TEXT ·mulAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ y_base+48(FP), DX
	SHRQ $3, CX

mul16:
	CMPQ CX, $2
	JLT  mul8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMULPS (DX), Y0, Y0
	VMULPS 32(DX), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $2, CX
	JMP  mul16

mul8:
	TESTQ CX, CX
	JEQ   muldone
	VMOVUPS (SI), Y0
	VMULPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)

muldone:
	VZEROUPPER
	RET

// func subShiftAVX2(dst, x []float32, a, b float32)
TEXT ·subShiftAVX2(SB), NOSPLIT, $0-56
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	VBROADCASTSS a+48(FP), Y14
	VBROADCASTSS b+52(FP), Y15
	SHRQ $3, CX

sub16:
	CMPQ CX, $2
	JLT  sub8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VSUBPS Y14, Y0, Y0
	VSUBPS Y14, Y1, Y1
	VSUBPS Y15, Y0, Y0
	VSUBPS Y15, Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $2, CX
	JMP  sub16

sub8:
	TESTQ CX, CX
	JEQ   subdone
	VMOVUPS (SI), Y0
	VSUBPS Y14, Y0, Y0
	VSUBPS Y15, Y0, Y0
	VMOVUPS Y0, (DI)

subdone:
	VZEROUPPER
	RET

// func scaleMulAVX2(dst, x, w []float32, s float32)
TEXT ·scaleMulAVX2(SB), NOSPLIT, $0-76
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ w_base+48(FP), DX
	VBROADCASTSS s+72(FP), Y15
	SHRQ $3, CX

sm16:
	CMPQ CX, $2
	JLT  sm8
	VMULPS (SI), Y15, Y0
	VMULPS 32(SI), Y15, Y1
	VMULPS (DX), Y0, Y0
	VMULPS 32(DX), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $2, CX
	JMP  sm16

sm8:
	TESTQ CX, CX
	JEQ   smdone
	VMULPS (SI), Y15, Y0
	VMULPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)

smdone:
	VZEROUPPER
	RET

// func bf16ToF32AVX2(dst []float32, src []uint16)
TEXT ·bf16ToF32AVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	SHRQ $3, CX

wid16:
	CMPQ CX, $2
	JLT  wid8
	VPMOVZXWD (SI), Y0
	VPMOVZXWD 16(SI), Y1
	VPSLLD $16, Y0, Y0
	VPSLLD $16, Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $2, CX
	JMP  wid16

wid8:
	TESTQ CX, CX
	JEQ   widdone
	VPMOVZXWD (SI), Y0
	VPSLLD $16, Y0, Y0
	VMOVUPS Y0, (DI)

widdone:
	VZEROUPPER
	RET

// func f32ToBF16AVX2(dst []uint16, src []float32)
// bf16 = (u + 0x7fff + ((u>>16)&1)) >> 16, NaN lanes replaced by 0x7fc0,
// then packed to words (values fit in 16 bits, so the saturating pack is
// exact).
TEXT ·f32ToBF16AVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	VMOVUPS lowBit<>(SB), Y13
	VMOVUPS round7fff<>(SB), Y14
	VMOVUPS bf16QNaN<>(SB), Y15
	SHRQ $3, CX

nar8:
	TESTQ CX, CX
	JEQ   nardone
	VMOVUPS (SI), Y0
	VPSRLD $16, Y0, Y1
	VPAND Y13, Y1, Y1
	VPADDD Y14, Y1, Y1
	VPADDD Y0, Y1, Y1
	VPSRLD $16, Y1, Y1
	VCMPPS $3, Y0, Y0, Y2
	VBLENDVPS Y2, Y15, Y1, Y1
	VEXTRACTI128 $1, Y1, X2
	VPACKUSDW X2, X1, X1
	VMOVDQU X1, (DI)
	ADDQ $32, SI
	ADDQ $16, DI
	DECQ CX
	JMP  nar8

nardone:
	VZEROUPPER
	RET
