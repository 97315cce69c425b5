// Package cuda drives NVIDIA GPUs without cgo: it opens libcuda.so.1 at run
// time through github.com/ebitengine/purego, so a CGO_ENABLED=0 ftune binary
// uses a GPU where the driver is installed and reports it unavailable
// (Available) elsewhere, without panicking.
//
// It has three layers:
//
//   - the driver runtime: Device (attributes, primary context), memory and
//     copies (sync and async, pinned host memory), streams, events, PTX
//     modules with the JIT error log, kernel attributes and launches, and
//     stream capture into graphs;
//   - Allocator, a caching allocator per device with live and peak counts;
//   - Kernels: the CUDA C sources (*.cu, one per op family), compiled by
//     `make ptx` to PTX that is committed and embedded, and one Go launcher
//     per kernel taking device pointers and sizes.
//
// Nothing here knows about tensors; the tensor backend adapter sits above.
// Every kernel has a small pure-Go reference in this package's tests, which
// compare them on random data with NaN-poisoned outputs (see README.md for
// the tolerances, the PTX toolchain and the compiler resource reports).
package cuda
