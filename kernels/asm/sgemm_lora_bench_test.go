package asm

import (
	"fmt"
	"testing"
)

func BenchmarkLoRAShapes(b *testing.B) {
	SetThreads(1)
	M, r := 2048, 16
	for _, io := range [][2]int{{256, 704}, {704, 256}, {256, 128}} {
		in, out := io[0], io[1]
		x := make([]float32, M*in)
		g := make([]float32, M*out)
		A := make([]float32, r*in)
		B := make([]float32, out*r)
		W := make([]float32, out*in)
		h := make([]float32, M*r)
		dh := make([]float32, M*r)
		y := make([]float32, M*out)
		dx := make([]float32, M*in)
		dA := make([]float32, r*in)
		dBt := make([]float32, r*out)
		for i := range x {
			x[i] = 0.01 * float32(i%13)
		}
		for i := range g {
			g[i] = 0.01 * float32(i%11)
		}
		cases := []struct {
			name  string
			flops int
			f     func()
		}{
			{"base_fwd y=xWt", 2 * M * in * out, func() { Sgemm(false, true, M, out, in, 1, x, in, W, in, 0, y, out) }},
			{"base_bwd dx=gW", 2 * M * in * out, func() { Sgemm(false, false, M, in, out, 1, g, out, W, in, 0, dx, in) }},
			{"h=xAt", 2 * M * in * r, func() { Sgemm(false, true, M, r, in, 1, x, in, A, in, 0, h, r) }},
			{"y+=hBt", 2 * M * out * r, func() { Sgemm(false, true, M, out, r, 2, h, r, B, r, 1, y, out) }},
			{"dh=gB", 2 * M * out * r, func() { Sgemm(false, false, M, r, out, 2, g, out, B, r, 0, dh, r) }},
			{"dBt=htg", 2 * M * out * r, func() { Sgemm(true, false, r, out, M, 2, h, r, g, out, 0, dBt, out) }},
			{"dA=dhtx", 2 * M * in * r, func() { Sgemm(true, false, r, in, M, 1, dh, r, x, in, 0, dA, in) }},
			{"dx+=dhA", 2 * M * in * r, func() { Sgemm(false, false, M, in, r, 1, dh, r, A, in, 1, dx, in) }},
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("%dto%d/%s", in, out, c.name), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					c.f()
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/op")
				b.ReportMetric(float64(c.flops)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
