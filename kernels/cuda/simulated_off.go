//go:build !cudasim

package cuda

// Simulated reports whether the driver is ptxsim's (-tags cudasim): false
// here, the real driver.
const Simulated = false
