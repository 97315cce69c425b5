//go:build !cudasim

package cudabackend

// simulated is false on a real driver (see simulated_cudasim_test.go).
const simulated = false

// Simulated is simulated for the external test package (cudabackend_test).
const Simulated = simulated
