package cuda

import (
	"fmt"
	"sync"
	"unsafe"
)

// The CUDA driver API, bound at run time. Every function below is a symbol of
// libcuda.so.1; the _v2 names are the ones the CUDA headers map the plain
// names to since CUDA 4/10/11, so they are what a C program would call.
var (
	cuInit                                      func(flags uint32) int32
	cuDriverGetVersion                          func(v *int32) int32
	cuGetErrorName                              func(code int32, name *unsafe.Pointer) int32
	cuDeviceGetCount                            func(n *int32) int32
	cuDeviceGet                                 func(dev *int32, ordinal int32) int32
	cuDeviceGetName                             func(name *byte, n int32, dev int32) int32
	cuDeviceGetAttribute                        func(v *int32, attr int32, dev int32) int32
	cuDeviceTotalMem                            func(bytes *uint64, dev int32) int32
	cuDevicePrimaryCtxRetain                    func(ctx *uintptr, dev int32) int32
	cuDevicePrimaryCtxRelease                   func(dev int32) int32
	cuCtxSetCurrent                             func(ctx uintptr) int32
	cuCtxSynchronize                            func() int32
	cuMemGetInfo                                func(free, total *uint64) int32
	cuMemAlloc                                  func(p *uint64, n uint64) int32
	cuMemFree                                   func(p uint64) int32
	cuMemHostAlloc                              func(p *unsafe.Pointer, n uint64, flags uint32) int32
	cuMemFreeHost                               func(p unsafe.Pointer) int32
	cuMemcpyHtoD                                func(dst uint64, src unsafe.Pointer, n uint64) int32
	cuMemcpyDtoH                                func(dst unsafe.Pointer, src uint64, n uint64) int32
	cuMemcpyDtoD                                func(dst, src uint64, n uint64) int32
	cuMemcpyHtoDAsync                           func(dst uint64, src unsafe.Pointer, n uint64, s uintptr) int32
	cuMemcpyDtoHAsync                           func(dst unsafe.Pointer, src uint64, n uint64, s uintptr) int32
	cuMemcpyDtoDAsync                           func(dst, src uint64, n uint64, s uintptr) int32
	cuMemsetD8                                  func(dst uint64, v uint8, n uint64) int32
	cuMemsetD32                                 func(dst uint64, v uint32, n uint64) int32
	cuMemsetD8Async                             func(dst uint64, v uint8, n uint64, s uintptr) int32
	cuMemsetD32Async                            func(dst uint64, v uint32, n uint64, s uintptr) int32
	cuStreamCreate                              func(s *uintptr, flags uint32) int32
	cuStreamDestroy                             func(s uintptr) int32
	cuStreamSynchronize                         func(s uintptr) int32
	cuEventCreate                               func(e *uintptr, flags uint32) int32
	cuEventDestroy                              func(e uintptr) int32
	cuEventRecord                               func(e, s uintptr) int32
	cuEventSynchronize                          func(e uintptr) int32
	cuEventElapsedTime                          func(ms *float32, start, end uintptr) int32
	cuEventQuery                                func(e uintptr) int32
	cuStreamWaitEvent                           func(s, e uintptr, flags uint32) int32
	cuModuleLoadDataEx                          func(m *uintptr, image *byte, nopt uint32, opts *int32, vals *uintptr) int32
	cuModuleUnload                              func(m uintptr) int32
	cuModuleGetFunction                         func(f *uintptr, m uintptr, name *byte) int32
	cuFuncGetAttribute                          func(v *int32, attr int32, f uintptr) int32
	cuFuncSetAttribute                          func(f uintptr, attr int32, v int32) int32
	cuLaunchKernel                              func(f uintptr, gx, gy, gz, bx, by, bz, smem uint32, s uintptr, params *uintptr, extra *uintptr) int32
	cuStreamBeginCapture                        func(s uintptr, mode int32) int32
	cuStreamEndCapture                          func(s uintptr, g *uintptr) int32
	cuGraphInstantiateWithFlags                 func(e *uintptr, g uintptr, flags uint64) int32
	cuGraphLaunch                               func(e, s uintptr) int32
	cuGraphExecDestroy                          func(e uintptr) int32
	cuGraphDestroy                              func(g uintptr) int32
	cuOccupancyMaxActiveBlocksPerMultiprocessor func(n *int32, f uintptr, block int32, smem uint64) int32
	cuTensorMapEncodeTiled                      func(m *TensorMap, dtype int32, rank uint32, addr uint64, dims, strides *uint64, box, elemStrides *uint32, interleave, swizzle, l2, oob int32) int32
)

var (
	loadOnce   sync.Once
	loadErr    error
	driverVer  int
	numDevices int
	// simNote is Available's reason under the simulated driver (-tags
	// cudasim, driver_sim.go); empty with the real one.
	simNote string
)

// symbol is a binding: a pointer to a func variable and its library name.
type symbol struct {
	fn   any
	name string
}

// symbols lists every binding.
func symbols() []symbol {
	return []symbol{
		{&cuInit, "cuInit"},
		{&cuDriverGetVersion, "cuDriverGetVersion"},
		{&cuGetErrorName, "cuGetErrorName"},
		{&cuDeviceGetCount, "cuDeviceGetCount"},
		{&cuDeviceGet, "cuDeviceGet"},
		{&cuDeviceGetName, "cuDeviceGetName"},
		{&cuDeviceGetAttribute, "cuDeviceGetAttribute"},
		{&cuDeviceTotalMem, "cuDeviceTotalMem_v2"},
		{&cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
		{&cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"},
		{&cuCtxSetCurrent, "cuCtxSetCurrent"},
		{&cuCtxSynchronize, "cuCtxSynchronize"},
		{&cuMemGetInfo, "cuMemGetInfo_v2"},
		{&cuMemAlloc, "cuMemAlloc_v2"},
		{&cuMemFree, "cuMemFree_v2"},
		{&cuMemHostAlloc, "cuMemHostAlloc"},
		{&cuMemFreeHost, "cuMemFreeHost"},
		{&cuMemcpyHtoD, "cuMemcpyHtoD_v2"},
		{&cuMemcpyDtoH, "cuMemcpyDtoH_v2"},
		{&cuMemcpyDtoD, "cuMemcpyDtoD_v2"},
		{&cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"},
		{&cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"},
		{&cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"},
		{&cuMemsetD8, "cuMemsetD8_v2"},
		{&cuMemsetD32, "cuMemsetD32_v2"},
		{&cuMemsetD8Async, "cuMemsetD8Async"},
		{&cuMemsetD32Async, "cuMemsetD32Async"},
		{&cuStreamCreate, "cuStreamCreate"},
		{&cuStreamDestroy, "cuStreamDestroy_v2"},
		{&cuStreamSynchronize, "cuStreamSynchronize"},
		{&cuEventCreate, "cuEventCreate"},
		{&cuEventDestroy, "cuEventDestroy_v2"},
		{&cuEventRecord, "cuEventRecord"},
		{&cuEventSynchronize, "cuEventSynchronize"},
		{&cuEventElapsedTime, "cuEventElapsedTime"},
		{&cuEventQuery, "cuEventQuery"},
		{&cuStreamWaitEvent, "cuStreamWaitEvent"},
		{&cuModuleLoadDataEx, "cuModuleLoadDataEx"},
		{&cuModuleUnload, "cuModuleUnload"},
		{&cuModuleGetFunction, "cuModuleGetFunction"},
		{&cuFuncGetAttribute, "cuFuncGetAttribute"},
		{&cuFuncSetAttribute, "cuFuncSetAttribute"},
		{&cuLaunchKernel, "cuLaunchKernel"},
		{&cuStreamBeginCapture, "cuStreamBeginCapture_v2"},
		{&cuStreamEndCapture, "cuStreamEndCapture"},
		{&cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags"},
		{&cuGraphLaunch, "cuGraphLaunch"},
		{&cuGraphExecDestroy, "cuGraphExecDestroy"},
		{&cuGraphDestroy, "cuGraphDestroy"},
		{&cuOccupancyMaxActiveBlocksPerMultiprocessor, "cuOccupancyMaxActiveBlocksPerMultiprocessor"},
		{&cuTensorMapEncodeTiled, "cuTensorMapEncodeTiled"},
	}
}

// load opens the driver once. It never panics: a missing library or symbol,
// a failing cuInit or zero devices all end up in loadErr.
func load() error {
	loadOnce.Do(func() {
		if loadErr = bindDriver(symbols()); loadErr != nil {
			return
		}
		if err := check("cuInit", cuInit(0)); err != nil {
			loadErr = err
			return
		}
		var v, n int32
		if err := check("cuDriverGetVersion", cuDriverGetVersion(&v)); err != nil {
			loadErr = err
			return
		}
		driverVer = int(v)
		if v < 12000 {
			loadErr = fmt.Errorf("cuda: driver supports CUDA %d.%d; ftune's PTX needs 12.0 or newer", v/1000, v%1000/10)
			return
		}
		if err := check("cuDeviceGetCount", cuDeviceGetCount(&n)); err != nil {
			loadErr = err
			return
		}
		if n == 0 {
			loadErr = fmt.Errorf("cuda: driver loaded (CUDA %d.%d) but no device found", v/1000, v%1000/10)
			return
		}
		numDevices = int(n)
	})
	return loadErr
}

// Available reports whether a usable NVIDIA driver and at least one device
// are present. When not, reason says why in one line (for `ftune env` and
// for test skips).
func Available() (ok bool, reason string) {
	if err := load(); err != nil {
		return false, err.Error()
	}
	if simNote != "" {
		return true, simNote
	}
	return true, fmt.Sprintf("cuda: driver CUDA %d.%d, %d device(s)", driverVer/1000, driverVer%1000/10, numDevices)
}

// DriverVersion returns the CUDA version the driver supports (e.g. 13000 for 13.0).
func DriverVersion() (int, error) {
	if err := load(); err != nil {
		return 0, err
	}
	return driverVer, nil
}

// DeviceCount returns the number of CUDA devices.
func DeviceCount() (int, error) {
	if err := load(); err != nil {
		return 0, err
	}
	return numDevices, nil
}

// cString converts a NUL-terminated C string to Go.
func cString(p unsafe.Pointer) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(p, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(p), n))
}

// cBytes returns a NUL-terminated copy of s.
func cBytes(s string) []byte { return append([]byte(s), 0) }
