//go:build !cudasim

package parity

// simulated is false on a real driver (see simulated_cudasim_test.go).
const simulated = false
