// Helpers shared by vec_arm64.s and vec_exp_arm64.s.
//
// Go's arm64 assembler has no vector floating-point arithmetic besides
// FMLA/FMLS, so those instructions are emitted as WORDs by the macros
// below, which take register NUMBERS. Each is named after the A64
// instruction on .4S lanes; arguments are (m, n, d) for d = n op m, the
// order Go uses for its own three-register instructions.
#define FADD4(m, n, d) WORD $(0x4E20D400 | ((m)<<16) | ((n)<<5) | (d))
#define FSUB4(m, n, d) WORD $(0x4EA0D400 | ((m)<<16) | ((n)<<5) | (d))
#define FMUL4(m, n, d) WORD $(0x6E20DC00 | ((m)<<16) | ((n)<<5) | (d))
#define FDIV4(m, n, d) WORD $(0x6E20FC00 | ((m)<<16) | ((n)<<5) | (d))
#define FMAX4(m, n, d) WORD $(0x4E20F400 | ((m)<<16) | ((n)<<5) | (d))
#define FMIN4(m, n, d) WORD $(0x4EA0F400 | ((m)<<16) | ((n)<<5) | (d))
#define FMLA4(m, n, d) WORD $(0x4E20CC00 | ((m)<<16) | ((n)<<5) | (d))
#define FMLS4(m, n, d) WORD $(0x4EA0CC00 | ((m)<<16) | ((n)<<5) | (d))
#define FADDP4(m, n, d) WORD $(0x6E20D400 | ((m)<<16) | ((n)<<5) | (d))
#define FMAXP4(m, n, d) WORD $(0x6E20F400 | ((m)<<16) | ((n)<<5) | (d))
#define FCMEQ4(m, n, d) WORD $(0x4E20E400 | ((m)<<16) | ((n)<<5) | (d))
#define ADD4(m, n, d) WORD $(0x4EA08400 | ((m)<<16) | ((n)<<5) | (d))
#define SUB4(m, n, d) WORD $(0x6EA08400 | ((m)<<16) | ((n)<<5) | (d))
#define MOV16(n, d) WORD $(0x4EA01C00 | ((n)<<16) | ((n)<<5) | (d))
#define FRINTN4(n, d) WORD $(0x4E218800 | ((n)<<5) | (d))
#define FCVTZS4(n, d) WORD $(0x4EA1B800 | ((n)<<5) | (d))
#define FNEG4(n, d) WORD $(0x6EA0F800 | ((n)<<5) | (d))
#define FABS4(n, d) WORD $(0x4EA0F800 | ((n)<<5) | (d))
// FCMGT4: d = all ones where n > m (ordered: false for NaN).
#define FCMGT4(m, n, d) WORD $(0x6EA0E400 | ((m)<<16) | ((n)<<5) | (d))
// BIT16: d takes n's bits where m's are set (bitwise insert if true).
#define BIT16(m, n, d) WORD $(0x6EA01C00 | ((m)<<16) | ((n)<<5) | (d))
// BIC16: d = n AND NOT m.
#define BIC16(m, n, d) WORD $(0x4E601C00 | ((m)<<16) | ((n)<<5) | (d))
#define SSHR4_1(n, d) WORD $(0x4F3F0400 | ((n)<<5) | (d))
#define SHL4_23(n, d) WORD $(0x4F375400 | ((n)<<5) | (d))

// HSUM4 folds V0..V3 into lane 0 of V0 (F0).
#define HSUM4 \
	FADD4(1, 0, 0); \
	FADD4(3, 2, 2); \
	FADD4(2, 0, 0); \
	FADDP4(0, 0, 0); \
	FADDP4(0, 0, 0)

// BF16RND2 rounds V0 and V1 (float32 lanes) to bfloat16, to nearest even,
// every NaN to 0x7fc0: V4 and V5 hold the results in their lanes' high
// halves. t = u + 0x7fff + ((u>>16)&1), and NaN lanes (u != u) take
// 0x7fc00000. Needs V29 = 1, V28 = 0x7fff, V27 = 0x7fc00000 broadcast
// (bf16Tab); clobbers V2, V3.
#define BF16RND2 \
	VUSHR $16, V0.S4, V2.S4; \
	VUSHR $16, V1.S4, V3.S4; \
	VAND  V29.B16, V2.B16, V2.B16; \
	VAND  V29.B16, V3.B16, V3.B16; \
	ADD4(28, 2, 2); \
	ADD4(28, 3, 3); \
	ADD4(0, 2, 2); \
	ADD4(1, 3, 3); \
	FCMEQ4(0, 0, 4); \
	FCMEQ4(1, 1, 5); \
	VBSL  V27.B16, V2.B16, V4.B16; \
	VBSL  V27.B16, V3.B16, V5.B16
