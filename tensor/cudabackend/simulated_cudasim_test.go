//go:build cudasim

package cudabackend

// simulated: the CUDA tests run on ptxsim (-tags cudasim), which interprets
// each kernel's PTX on the CPU some 10⁴ times slower than a GPU; tests
// scale their sizes down under it and skip what only a real GPU can show.
const simulated = true

// Simulated is simulated for the external test package (cudabackend_test).
const Simulated = simulated
