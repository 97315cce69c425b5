// The AVX-512 exp machinery shared by vec_exp_avx512_amd64.s and
// vec_tanh_avx512_amd64.s (each gets its own file-local copy of the
// constants). Needs vec_amd64.h for C4.

C4(log2e16, 0x3fb8aa3b)
C4(c1x16, 0x3f318000)
C4(c2x16, 0xb95e8083)
C4(p0x16, 0x39506967)
C4(p1x16, 0x3ab743ce)
C4(p2x16, 0x3c088908)
C4(p3x16, 0x3d2aa9c1)
C4(p4x16, 0x3e2aaaaa)
C4(p5x16, 0x3f000000)
C4(one16, 0x3f800000)
C4(hi16, 0x42b20000)
C4(lo16, 0xc2d00000)
C4(sign16, 0x80000000)

#define EXPCONSTS \
	VBROADCASTSS hi16<>(SB), Z31; \
	VBROADCASTSS lo16<>(SB), Z30; \
	VBROADCASTSS log2e16<>(SB), Z29; \
	VBROADCASTSS c1x16<>(SB), Z28; \
	VBROADCASTSS c2x16<>(SB), Z27; \
	VBROADCASTSS p0x16<>(SB), Z26; \
	VBROADCASTSS p1x16<>(SB), Z25; \
	VBROADCASTSS p2x16<>(SB), Z24; \
	VBROADCASTSS p3x16<>(SB), Z23; \
	VBROADCASTSS p4x16<>(SB), Z22; \
	VBROADCASTSS p5x16<>(SB), Z21; \
	VBROADCASTSS one16<>(SB), Z20; \
	VBROADCASTSS sign16<>(SB), Z19

// EXP16 replaces X with exp(X); N, P, T are scratch.
#define EXP16(X, N, P, T) \
	VMINPS X, Z31, X; \
	VMAXPS X, Z30, X; \
	VMULPS Z29, X, N; \
	VRNDSCALEPS $0, N, N; \
	VFNMADD231PS Z28, N, X; \
	VFNMADD231PS Z27, N, X; \
	VMOVAPS Z26, P; \
	VFMADD213PS Z25, X, P; \
	VFMADD213PS Z24, X, P; \
	VFMADD213PS Z23, X, P; \
	VFMADD213PS Z22, X, P; \
	VFMADD213PS Z21, X, P; \
	VMULPS X, X, T; \
	VFMADD213PS X, T, P; \
	VADDPS Z20, P, P; \
	VSCALEFPS N, P, X

// SILU16 replaces X with X/(1+exp(-X)).
#define SILU16(X, E, N, P, T) \
	VXORPS Z19, X, E; \
	EXP16(E, N, P, T); \
	VADDPS Z20, E, E; \
	VDIVPS E, X, X
