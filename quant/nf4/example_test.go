package nf4_test

import (
	"fmt"

	"github.com/ftune/ftune/quant/nf4"
)

func Example() {
	// A 2x64 weight: one block of 64 per row.
	w := make([]float32, 128)
	for i := range w {
		w[i] = float32(i%64-32) / 32
	}
	q, err := nf4.Quantize(w, []int{2, 64})
	if err != nil {
		panic(err)
	}
	row := make([]float32, 64)
	q.DequantizeRows(row, 1, 1) // second row only
	fmt.Printf("%d bytes packed, %d scales; w[64]=%.3f -> %.3f, w[127]=%.3f -> %.3f\n",
		len(q.Packed), q.NumBlocks(), w[64], row[0], w[127], row[63])
	// Output:
	// 64 bytes packed, 2 scales; w[64]=-1.000 -> -1.000, w[127]=0.969 -> 1.000
}
