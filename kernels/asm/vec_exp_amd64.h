// The AVX2+FMA exp machinery shared by vec_exp_amd64.s and
// vec_tanh_amd64.s (each gets its own file-local copy of the constants).
// Needs vec_amd64.h for V8.

// exp constants: the float32 bit patterns of those in vec_ref.go.
V8(expLog2e, 0x3fb8aa3b)
V8(expC1, 0x3f318000)
V8(expC2, 0xb95e8083)
V8(expP0, 0x39506967)
V8(expP1, 0x3ab743ce)
V8(expP2, 0x3c088908)
V8(expP3, 0x3d2aa9c1)
V8(expP4, 0x3e2aaaaa)
V8(expP5, 0x3f000000)
V8(one, 0x3f800000)
V8(expHi, 0x42b20000)
V8(expLo, 0xc2d00000)
V8(signBit, 0x80000000)
V8(bias127, 0x0000007f)

// EXP8 replaces X with exp(X); N, P, T are scratch. Y15 = expHi and
// Y14 = expLo must be loaded. 2^n is applied as 2^(n>>1) * 2^(n-(n>>1)).
#define EXP8(X, N, P, T) \
	VMINPS X, Y15, X; \
	VMAXPS X, Y14, X; \
	VMULPS expLog2e<>(SB), X, N; \
	VROUNDPS $0, N, N; \
	VFNMADD231PS expC1<>(SB), N, X; \
	VFNMADD231PS expC2<>(SB), N, X; \
	VMOVUPS expP0<>(SB), P; \
	VFMADD213PS expP1<>(SB), X, P; \
	VFMADD213PS expP2<>(SB), X, P; \
	VFMADD213PS expP3<>(SB), X, P; \
	VFMADD213PS expP4<>(SB), X, P; \
	VFMADD213PS expP5<>(SB), X, P; \
	VMULPS X, X, T; \
	VFMADD213PS X, T, P; \
	VADDPS one<>(SB), P, P; \
	VCVTPS2DQ N, N; \
	VPSRAD $1, N, T; \
	VPSUBD T, N, N; \
	VPADDD bias127<>(SB), T, T; \
	VPSLLD $23, T, T; \
	VPADDD bias127<>(SB), N, N; \
	VPSLLD $23, N, N; \
	VMULPS T, P, P; \
	VMULPS N, P, X

// SILU8 replaces X with X/(1+exp(-X)); E, N, P, T are scratch; needs
// signBit in Y13 besides EXP8's registers.
#define SILU8(X, E, N, P, T) \
	VXORPS Y13, X, E; \
	EXP8(E, N, P, T); \
	VADDPS one<>(SB), E, E; \
	VDIVPS E, X, X
