package asm_test

import (
	"fmt"
	"math"

	"github.com/ftune/ftune/kernels/asm"
)

// A masked attention row: -Inf entries get probability 0.
func ExampleSoftmaxRow() {
	row := []float32{1, 2, float32(math.Inf(-1)), 3}
	asm.SoftmaxRow(row, row)
	fmt.Printf("%.4f\n", row)
	// Output: [0.0900 0.2447 0.0000 0.6652]
}

func ExampleLogSoftmaxRow() {
	row := []float32{1, 2, 3}
	asm.LogSoftmaxRow(row, row)
	fmt.Printf("%.4f\n", row)
	// Output: [-2.4076 -1.4076 -0.4076]
}

func ExampleRMSNormRow() {
	x := []float32{1, -2, 3, -4}
	w := []float32{1, 1, 0.5, 2}
	out := make([]float32, len(x))
	inv := asm.RMSNormRow(out, x, w, 1e-6)
	fmt.Printf("invRMS %.4f out %.4f\n", inv, out)
	// Output: invRMS 0.3651 out [0.3651 -0.7303 0.5477 -2.9212]
}

func ExampleF32ToBF16() {
	src := []float32{1, 1.00390625, 3.14159265, float32(math.NaN())}
	dst := make([]uint16, len(src))
	asm.F32ToBF16(dst, src)
	back := make([]float32, len(src))
	asm.BF16ToF32(back, dst)
	fmt.Printf("%#04x %v\n", dst, back)
	// Output: [0x3f80 0x3f80 0x4049 0x7fc0] [1 1 3.140625 NaN]
}

func ExampleDot() {
	fmt.Println(asm.Dot([]float32{1, 2, 3}, []float32{4, 5, 6}))
	// Output: 32
}
