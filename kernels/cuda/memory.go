package cuda

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Ptr is a device address (CUdeviceptr). 0 is the null pointer.
type Ptr uint64

// Add returns p advanced by off bytes.
func (p Ptr) Add(off int) Ptr { return p + Ptr(off) }

// MemAlloc allocates n bytes straight from the driver. Training code uses the
// caching Allocator instead; this is its backing call.
func (d *Device) MemAlloc(n int) (Ptr, error) {
	if n <= 0 {
		return 0, badArg("MemAlloc: size %d", n)
	}
	var p uint64
	err := d.call("cuMemAlloc", func() int32 { return cuMemAlloc(&p, uint64(n)) })
	return Ptr(p), err
}

// MemFree returns memory from MemAlloc to the driver.
func (d *Device) MemFree(p Ptr) error {
	return d.call("cuMemFree", func() int32 { return cuMemFree(uint64(p)) })
}

// byteView returns the bytes of a slice of fixed-size elements.
func byteView[T any](s []T) (unsafe.Pointer, int) {
	if len(s) == 0 {
		return nil, 0
	}
	var z T
	return unsafe.Pointer(&s[0]), len(s) * int(unsafe.Sizeof(z))
}

// CopyHtoD copies src into device memory at dst (synchronous).
func CopyHtoD[T any](d *Device, dst Ptr, src []T) error {
	p, n := byteView(src)
	if n == 0 {
		return nil
	}
	err := d.call("cuMemcpyHtoD", func() int32 { return cuMemcpyHtoD(uint64(dst), p, uint64(n)) })
	runtime.KeepAlive(src)
	return err
}

// CopyDtoH copies device memory at src into dst (synchronous).
func CopyDtoH[T any](d *Device, dst []T, src Ptr) error {
	p, n := byteView(dst)
	if n == 0 {
		return nil
	}
	err := d.call("cuMemcpyDtoH", func() int32 { return cuMemcpyDtoH(p, uint64(src), uint64(n)) })
	runtime.KeepAlive(dst)
	return err
}

// CopyHtoDAsync queues a host-to-device copy on s. The copy overlaps with
// host work only when src is pinned (HostAlloc); from ordinary Go memory the
// driver stages it before returning, so src may be reused at once either way.
func CopyHtoDAsync[T any](d *Device, s Stream, dst Ptr, src []T) error {
	p, n := byteView(src)
	if n == 0 {
		return nil
	}
	err := d.call("cuMemcpyHtoDAsync", func() int32 { return cuMemcpyHtoDAsync(uint64(dst), p, uint64(n), s.h) })
	runtime.KeepAlive(src)
	return err
}

// CopyDtoHAsync queues a device-to-host copy on s. dst must stay untouched
// until the stream is synchronized; into pageable memory the driver
// completes the copy before returning.
func CopyDtoHAsync[T any](d *Device, s Stream, dst []T, src Ptr) error {
	p, n := byteView(dst)
	if n == 0 {
		return nil
	}
	err := d.call("cuMemcpyDtoHAsync", func() int32 { return cuMemcpyDtoHAsync(p, uint64(src), uint64(n), s.h) })
	runtime.KeepAlive(dst)
	return err
}

// CopyDtoD copies n bytes between device buffers (synchronous).
func (d *Device) CopyDtoD(dst, src Ptr, n int) error {
	return d.call("cuMemcpyDtoD", func() int32 { return cuMemcpyDtoD(uint64(dst), uint64(src), uint64(n)) })
}

// CopyDtoDAsync queues a device-to-device copy of n bytes on s.
func (d *Device) CopyDtoDAsync(s Stream, dst, src Ptr, n int) error {
	return d.call("cuMemcpyDtoDAsync", func() int32 { return cuMemcpyDtoDAsync(uint64(dst), uint64(src), uint64(n), s.h) })
}

// Memset8 sets n bytes at dst to v (synchronous).
func (d *Device) Memset8(dst Ptr, v uint8, n int) error {
	return d.call("cuMemsetD8", func() int32 { return cuMemsetD8(uint64(dst), v, uint64(n)) })
}

// Memset32 sets n 32-bit words at dst to v (synchronous); dst must be 4-byte aligned.
func (d *Device) Memset32(dst Ptr, v uint32, n int) error {
	return d.call("cuMemsetD32", func() int32 { return cuMemsetD32(uint64(dst), v, uint64(n)) })
}

// Memset8Async queues a byte fill on s.
func (d *Device) Memset8Async(s Stream, dst Ptr, v uint8, n int) error {
	return d.call("cuMemsetD8Async", func() int32 { return cuMemsetD8Async(uint64(dst), v, uint64(n), s.h) })
}

// Memset32Async queues a 32-bit word fill on s.
func (d *Device) Memset32Async(s Stream, dst Ptr, v uint32, n int) error {
	return d.call("cuMemsetD32Async", func() int32 { return cuMemsetD32Async(uint64(dst), v, uint64(n), s.h) })
}

// HostBuffer is page-locked host memory: copies from and to it run at full
// PCIe/NVLink speed and truly overlap with compute when queued async.
type HostBuffer struct {
	Bytes []byte
	d     *Device
	p     unsafe.Pointer
}

// HostAlloc allocates n bytes of pinned host memory.
func (d *Device) HostAlloc(n int) (*HostBuffer, error) {
	if n <= 0 {
		return nil, badArg("HostAlloc: size %d", n)
	}
	var p unsafe.Pointer
	if err := d.call("cuMemHostAlloc", func() int32 { return cuMemHostAlloc(&p, uint64(n), 0) }); err != nil {
		return nil, fmt.Errorf("pinned host memory of %d bytes: %w", n, err)
	}
	return &HostBuffer{Bytes: unsafe.Slice((*byte)(p), n), d: d, p: p}, nil
}

// Free releases the pinned memory; Bytes must not be used afterwards.
func (h *HostBuffer) Free() error {
	if h.p == nil {
		return nil
	}
	p := h.p
	h.p, h.Bytes = nil, nil
	return h.d.call("cuMemFreeHost", func() int32 { return cuMemFreeHost(p) })
}

// HostSlice views pinned memory as a slice of T (float32, uint16, ...).
func HostSlice[T any](h *HostBuffer) []T {
	var z T
	n := len(h.Bytes) / int(unsafe.Sizeof(z))
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*T)(h.p), n)
}
