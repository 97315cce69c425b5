package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkAttentionF32 times the CPU attention forward and backward of one
// layer at the two CPU benchmark shapes (bench/README.md): tiny-base
// (batch 8 × 256, 8 query / 4 KV heads of 32) and SmolLM2-135M (1 × 512,
// 9 / 3 heads of 64), and SmolLM2 at 2048 tokens, causal, on the float32
// backend and on CPUBF16 (precision bf16; where the CPU lacks the bf16
// instructions that is the slow Go kernel, so it is skipped).
func BenchmarkAttentionF32(b *testing.B) {
	for _, be := range []*CPUBackend{CPUDefault(), CPUBF16()} {
		if be == CPUBF16() && !CPUBF16Fast() {
			continue
		}
		benchAttention(b, be)
	}
}

func benchAttention(b *testing.B, be *CPUBackend) {
	prec := "f32"
	if be == CPUBF16() {
		prec = "bf16"
	}
	for _, s := range []struct {
		name             string
		B, T, Hq, Hkv, D int
	}{{"tiny-base", 8, 256, 8, 4, 32}, {"smollm2-135m", 1, 512, 9, 3, 64}, {"smollm2-135m-2048", 1, 2048, 9, 3, 64}} {
		r := rand.New(rand.NewPCG(1, 2))
		mk := func(h int) *Tensor {
			x := make([]float32, s.B*s.T*h*s.D)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			return FromF32(be, x, s.B, s.T, h, s.D)
		}
		q, k, v, dout := mk(s.Hq), mk(s.Hkv), mk(s.Hkv), mk(s.Hq)
		out, lse := New(be, F32, s.B, s.T, s.Hq, s.D), New(be, F32, s.B, s.Hq, s.T)
		dq, dk, dv := New(be, F32, s.B, s.T, s.Hq, s.D), New(be, F32, s.B, s.T, s.Hkv, s.D), New(be, F32, s.B, s.T, s.Hkv, s.D)
		p := AttentionParams{Scale: 0.125, Causal: true}
		b.Run(fmt.Sprintf("%s/%s/forward", s.name, prec), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := be.Attention(out, lse, q, k, v, p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%s/%s/backward", s.name, prec), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := be.AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
