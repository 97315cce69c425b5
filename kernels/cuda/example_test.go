package cuda_test

import (
	"fmt"

	"github.com/ftune/ftune/kernels/cuda"
)

// Example multiplies two bf16 matrices on the first GPU, or says why not.
func Example() {
	if ok, reason := cuda.Available(); !ok {
		fmt.Println("no GPU:", reason)
		return
	}
	d, err := cuda.Open(0)
	if err != nil {
		fmt.Println(err)
		return
	}
	const M, N, K = 256, 512, 1024
	a, _ := d.Allocator().Alloc(M * K * 2) // bf16 [M,K]
	w, _ := d.Allocator().Alloc(N * K * 2) // bf16 [N,K], the nn.Linear layout
	y, _ := d.Allocator().Alloc(M * N * 4) // f32 [M,N]
	defer d.Allocator().Free(a)
	defer d.Allocator().Free(w)
	defer d.Allocator().Free(y)
	s, _ := d.NewStream()
	defer d.DestroyStream(s)
	// y = a w^T (a and w would be filled with CopyHtoD or by earlier kernels).
	if err := d.MatmulBF16(s, false, true, M, N, K, a, K, w, K, y, N, 1, 0); err != nil {
		fmt.Println(err)
		return
	}
	if err := d.SyncStream(s); err != nil {
		fmt.Println(err)
	}
	fmt.Println(d.Allocator().Stats().Live > 0)
}
