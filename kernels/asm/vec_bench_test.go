package asm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Benchmarks of every vector kernel on every available implementation
// ("go" is the reference loop). b.SetBytes counts each input and output
// element once (what the kernel must move at least), so MB/s compares
// with memory bandwidth: n=1024 stays in L1, n=1<<18 (1 MiB per operand)
// in L2/L3. Compare runs with benchstat.
//
//	go test -run - -bench Vec ./kernels/asm

type vecBench struct {
	name  string
	bytes int // per element
	run   func(dst []float32, x, y []float32, h []uint16)
}

var vecBenches = []vecBench{
	{"Dot", 8, func(_, x, y []float32, _ []uint16) { Dot(x, y) }},
	{"Axpy", 12, func(_, x, y []float32, _ []uint16) { Axpy(0.5, x, y) }},
	{"Scale", 8, func(_, x, _ []float32, _ []uint16) { Scale(1.0001, x) }},
	{"Add", 12, func(d, x, y []float32, _ []uint16) { Add(d, x, y) }},
	{"Mul", 12, func(d, x, y []float32, _ []uint16) { Mul(d, x, y) }},
	{"Sum", 4, func(_, x, _ []float32, _ []uint16) { Sum(x) }},
	{"Max", 4, func(_, x, _ []float32, _ []uint16) { Max(x) }},
	{"Exp", 8, func(d, x, _ []float32, _ []uint16) { Exp(d, x) }},
	{"Silu", 8, func(d, x, _ []float32, _ []uint16) { Silu(d, x) }},
	{"SwiGLU", 12, func(d, x, y []float32, _ []uint16) { SwiGLU(d, x, y) }},
	{"Softcap", 8, func(d, x, _ []float32, _ []uint16) { Softcap(d, x, 3) }},
	{"SoftcapBackward", 12, func(d, x, y []float32, _ []uint16) { SoftcapBackward(d, x, y, 4) }},
	{"GeGLU", 12, func(d, x, y []float32, _ []uint16) { GeGLU(d, x, y) }},
	{"GeGLUBackward", 20, func(d, x, y []float32, _ []uint16) { GeGLUBackward(d, d, x, y, x) }},
	{"SoftmaxRow", 8, func(d, x, _ []float32, _ []uint16) { SoftmaxRow(d, x) }},
	{"LogSoftmaxRow", 8, func(d, x, _ []float32, _ []uint16) { LogSoftmaxRow(d, x) }},
	{"RMSNormRow", 12, func(d, x, y []float32, _ []uint16) { RMSNormRow(d, x, y, 1e-5) }},
	{"BF16ToF32", 6, func(d, _, _ []float32, h []uint16) { BF16ToF32(d, h) }},
	{"F32ToBF16", 6, func(_, x, _ []float32, h []uint16) { F32ToBF16(h, x) }},
}

func BenchmarkVec(b *testing.B) {
	defer SetImpl(Best())
	for _, k := range vecBenches {
		for _, n := range []int{1024, 1 << 18} {
			r := rand.New(rand.NewPCG(1, 2))
			x := randSlice(r, n, 0, vecUniform(-4, 4))
			y := randSlice(r, n, 0, vecUniform(-4, 4))
			d := make([]float32, n)
			h := make([]uint16, n)
			F32ToBF16Ref(h, x)
			for _, impl := range Available() {
				b.Run(fmt.Sprintf("%s/n=%d/%s", k.name, n, impl), func(b *testing.B) {
					if err := SetImpl(impl); err != nil {
						b.Fatal(err)
					}
					b.SetBytes(int64(k.bytes * n))
					for b.Loop() {
						k.run(d, x, y, h)
					}
				})
			}
		}
	}
}
