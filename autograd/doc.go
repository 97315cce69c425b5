// Package autograd is ftune's reverse-mode differentiation: a Tape records
// each op applied to Vars together with a closure computing its backward,
// and Backward replays the tape in reverse from a scalar.
//
// A nil *Tape is inference mode: ops compute values and record nothing, so
// the same model code serves training and generation. An inference tape
// (NewInference) computes the same values and records nothing too, but
// remembers what its ops read, so that a forward without a backward
// (validation, a preference run's reference) gives its activations back to
// the backend at points its caller names (ReleaseRead after each block,
// ReleasePass at the end) instead of leaving them to Go's collector.
//
// Frozen Vars (base weights) never get a gradient buffer; ops whose inputs
// are all frozen or constant are not recorded. Checkpoint records a region
// whose activations are dropped after the forward and recomputed during
// the backward; its first forward runs on a training tape that records
// nothing, and the state the region names with Preserve (dropout streams)
// is replayed for the recompute, so both passes draw the same random
// numbers. Values the forward is done with can leave the device until a
// backward reads them: Forget drops what an op can compute again bit for
// bit (a norm's output, the MLP's product), and Offload moves a
// checkpointed region's saved input to host memory on a backend that
// offers it (a GPU's pinned memory).
//
// Hot blocks (RMSNorm, RoPE, SwiGLU, attention, cross-entropy, the linear
// layer) are single tape nodes with hand-derived backwards computed by the
// backend's fused ops; every backward is checked against float64 central
// finite differences in the tests.
package autograd
