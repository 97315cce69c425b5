// Package backendtest is the conformance suite every tensor.Backend runs:
// each op on fresh random data at ragged sizes, outputs poisoned with NaN
// beforehand, compared with a float64 reference computed on the CPU by
// composite (unfused) formulas; and every op called with operands of the
// wrong shape, which must return tensor's shared shape error (the CPU
// backend's text after the backend's name), never panic. The CPU backend's
// own tests call Run, and so does the CUDA backend's.
package backendtest
