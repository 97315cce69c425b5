package dist

import (
	"fmt"
	"unsafe"
)

// The NCCL library (libnccl.so.2) and the few CUDA driver calls
// (libcuda.so.1) the NCCL engine needs: a context current on the calling
// thread (NCCL runs on the context current where it is called), a staging
// buffer on the GPU, and the stream's state. dist imports no tensor or
// kernel package (internal/archtest), so these are bound here.

// ncclUniqueID is ncclUniqueId: 128 opaque bytes that rank 0 makes and every
// rank passes by value to ncclCommInitRank (purego copies a struct this
// large onto the stack on amd64, and passes a pointer to a copy on arm64,
// as the C ABIs do).
type ncclUniqueID struct{ internal [128]byte }

// NCCL's enum values (nccl.h, stable since NCCL 2.0).
const (
	ncclSuccess    = 0
	ncclInProgress = 7 // ncclCommGetAsyncError while a nonblocking comm initialises
	ncclUint8      = 1
	ncclFloat32    = 7
	ncclFloat64    = 8
	ncclSum        = 0

	cuErrorNotReady = 600 // CUDA_ERROR_NOT_READY: cuStreamQuery on a busy stream
)

type ncclLib struct {
	getVersion    func(version *int32) int32
	getUniqueID   func(id *ncclUniqueID) int32
	commInitRank  func(comm *uintptr, nranks int32, id ncclUniqueID, rank int32) int32
	allReduce     func(send, recv uintptr, count uintptr, dtype, op int32, comm, stream uintptr) int32
	broadcast     func(send, recv uintptr, count uintptr, dtype, root int32, comm, stream uintptr) int32
	commDestroy   func(comm uintptr) int32
	commAbort     func(comm uintptr) int32
	errorString   func(result int32) string
	getAsyncError func(comm uintptr, result *int32) int32

	//lint:ignore U1000 the real loader (nccl_load_linux.go) binds and calls it; the simulator's (-tags cudasim) needs no cuInit
	cuInit             func(flags uint32) int32
	cuDeviceGetCount   func(n *int32) int32
	cuDeviceGet        func(dev *int32, ordinal int32) int32
	cuPrimaryCtxRetain func(ctx *uintptr, dev int32) int32
	cuCtxSetCurrent    func(ctx uintptr) int32
	cuMemAlloc         func(p *uintptr, bytes uintptr) int32
	cuMemFree          func(p uintptr) int32
	cuMemcpyHtoD       func(dst uintptr, src unsafe.Pointer, bytes uintptr) int32
	cuMemcpyDtoH       func(dst unsafe.Pointer, src uintptr, bytes uintptr) int32
	cuStreamQuery      func(stream uintptr) int32
}

func (l *ncclLib) err(call string, rc int32) error {
	if rc == ncclSuccess {
		return nil
	}
	return fmt.Errorf("%s: %s (NCCL error %d)", call, l.errorString(rc), rc)
}

func cuErr(call string, rc int32) error {
	if rc == 0 {
		return nil
	}
	return fmt.Errorf("%s: CUDA driver error %d", call, rc)
}

// ncclVersion formats ncclGetVersion's code (major*10000 + minor*100 +
// patch since NCCL 2.9; major*1000 + minor*100 + patch before).
func ncclVersion(code int) string {
	if code >= 10000 {
		return fmt.Sprintf("%d.%d.%d", code/10000, code/100%100, code%100)
	}
	return fmt.Sprintf("%d.%d.%d", code/1000, code/100%10, code%100)
}
