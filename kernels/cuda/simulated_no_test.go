//go:build !cudasim

package cuda

// simulated: false on a real driver (see simulated_test.go).
const simulated = false
