//go:build cudasim

package cuda

// On ptxsim (Simulated) the tests' largest sizes are scaled down (see the
// callers; edge cases are kept).

func init() {
	// 300007 elements (odd) still exceed the elementwise kernels' grid cap
	// of 864 blocks x 256 threads, so their grid-stride loops run, at 30%
	// of the cost of 1000003.
	elemSizes[len(elemSizes)-1] = 300007
}
