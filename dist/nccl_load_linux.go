//go:build !cudasim

package dist

import (
	"fmt"
	"sync"

	"github.com/ebitengine/purego"
)

var (
	ncclOnce   sync.Once
	ncclLoaded *ncclLib
	ncclErr    error
)

// loadNCCL opens libnccl.so.2 and libcuda.so.1 once and binds what the
// NCCL engine calls; the error says which library or symbol is missing.
func loadNCCL() (*ncclLib, error) {
	ncclOnce.Do(func() { ncclLoaded, ncclErr = bindNCCL() })
	return ncclLoaded, ncclErr
}

func bindNCCL() (*ncclLib, error) {
	l := &ncclLib{}
	nccl, err := purego.Dlopen("libnccl.so.2", purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("nccl: libnccl.so.2 not found (%v): install NCCL (Debian/Ubuntu with NVIDIA's repository: apt-get install libnccl2)", err)
	}
	cuda, err := purego.Dlopen("libcuda.so.1", purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("nccl: the CUDA driver libcuda.so.1 not found (%v): NCCL needs an NVIDIA GPU and its driver", err)
	}
	for _, s := range []struct {
		lib  uintptr
		fn   any
		name string
	}{
		{nccl, &l.getVersion, "ncclGetVersion"},
		{nccl, &l.getUniqueID, "ncclGetUniqueId"},
		{nccl, &l.commInitRank, "ncclCommInitRank"},
		{nccl, &l.allReduce, "ncclAllReduce"},
		{nccl, &l.broadcast, "ncclBroadcast"},
		{nccl, &l.commDestroy, "ncclCommDestroy"},
		{nccl, &l.commAbort, "ncclCommAbort"},
		{nccl, &l.errorString, "ncclGetErrorString"},
		{nccl, &l.getAsyncError, "ncclCommGetAsyncError"},
		{cuda, &l.cuInit, "cuInit"},
		{cuda, &l.cuDeviceGetCount, "cuDeviceGetCount"},
		{cuda, &l.cuDeviceGet, "cuDeviceGet"},
		{cuda, &l.cuPrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
		{cuda, &l.cuCtxSetCurrent, "cuCtxSetCurrent"},
		{cuda, &l.cuMemAlloc, "cuMemAlloc_v2"},
		{cuda, &l.cuMemFree, "cuMemFree_v2"},
		{cuda, &l.cuMemcpyHtoD, "cuMemcpyHtoD_v2"},
		{cuda, &l.cuMemcpyDtoH, "cuMemcpyDtoH_v2"},
		{cuda, &l.cuStreamQuery, "cuStreamQuery"},
	} {
		if _, err := purego.Dlsym(s.lib, s.name); err != nil {
			return nil, fmt.Errorf("nccl: symbol %s missing (NCCL 2.4 or newer and a CUDA driver are needed)", s.name)
		}
		purego.RegisterLibFunc(s.fn, s.lib, s.name)
	}
	if err := cuErr("cuInit", l.cuInit(0)); err != nil {
		return nil, fmt.Errorf("nccl: %w", err)
	}
	return l, nil
}
