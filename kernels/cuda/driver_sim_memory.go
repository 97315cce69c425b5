//go:build cudasim

package cuda

import (
	"sort"
	"unsafe"
)

// Device memory of the simulated driver: Go memory, 256-byte aligned, whose
// address is the device pointer.

func (s *simDriver) memAlloc(p *uint64, n uint64) int32 {
	if n == 0 {
		return simInvalidValue
	}
	s.mu.Lock()
	if s.used+n > s.total {
		s.mu.Unlock()
		return simOutOfMemory
	}
	s.used += n
	s.mu.Unlock()
	buf := make([]byte, n+256)
	off := (256 - uintptr(unsafe.Pointer(&buf[0]))%256) % 256
	mem := buf[off : off+uintptr(n) : off+uintptr(n)]
	a := simAlloc{base: uint64(uintptr(unsafe.Pointer(&mem[0]))), mem: mem}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.list()
	i := sort.Search(len(old), func(i int) bool { return old[i].base >= a.base })
	l := make([]simAlloc, 0, len(old)+1)
	l = append(append(append(l, old[:i]...), a), old[i:]...)
	s.allocs.Store(&l)
	*p = a.base
	return 0
}

func (s *simDriver) list() []simAlloc {
	if l := s.allocs.Load(); l != nil {
		return *l
	}
	return nil
}

func (s *simDriver) memFree(p uint64) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.list()
	i := sort.Search(len(old), func(i int) bool { return old[i].base >= p })
	if i == len(old) || old[i].base != p {
		return simInvalidValue
	}
	s.used -= uint64(len(old[i].mem))
	l := append(append(make([]simAlloc, 0, len(old)-1), old[:i]...), old[i+1:]...)
	s.allocs.Store(&l)
	return 0
}

// Find implements ptxsim.Memory.
func (s *simDriver) Find(addr uint64) (uint64, []byte, bool) {
	l := s.list()
	i := sort.Search(len(l), func(i int) bool { return l[i].base > addr }) - 1
	if i < 0 || addr-l[i].base >= uint64(len(l[i].mem)) {
		return 0, nil, false
	}
	return l[i].base, l[i].mem, true
}

// device returns the n bytes of device memory at p, inside one allocation.
func (s *simDriver) device(p, n uint64) []byte {
	base, mem, ok := s.Find(p)
	if !ok || p-base+n > uint64(len(mem)) {
		return nil
	}
	return mem[p-base : p-base+n]
}

func (s *simDriver) copyHtoD(dst uint64, src unsafe.Pointer, n uint64) int32 {
	if n == 0 {
		return 0
	}
	d := s.device(dst, n)
	if d == nil {
		return simInvalidValue
	}
	if s.skipDeviceWork.Load() {
		return 0
	}
	copy(d, unsafe.Slice((*byte)(src), n))
	return 0
}

func (s *simDriver) copyDtoH(dst unsafe.Pointer, src uint64, n uint64) int32 {
	if n == 0 {
		return 0
	}
	m := s.device(src, n)
	if m == nil {
		return simInvalidValue
	}
	if s.skipDeviceWork.Load() {
		return 0
	}
	copy(unsafe.Slice((*byte)(dst), n), m)
	return 0
}

func (s *simDriver) copyDtoD(dst, src uint64, n uint64) int32 {
	if n == 0 {
		return 0
	}
	d, m := s.device(dst, n), s.device(src, n)
	if d == nil || m == nil {
		return simInvalidValue
	}
	if s.skipDeviceWork.Load() {
		return 0
	}
	copy(d, m)
	return 0
}

func (s *simDriver) memset(dst uint64, v uint32, size int, n uint64) int32 {
	if n == 0 {
		return 0
	}
	if size == 4 && dst%4 != 0 {
		return simInvalidValue
	}
	d := s.device(dst, n*uint64(size))
	if d == nil {
		return simInvalidValue
	}
	if s.skipDeviceWork.Load() {
		return 0
	}
	for i := 0; i < len(d); i += size {
		for k := 0; k < size; k++ {
			d[i+k] = byte(v >> (8 * k))
		}
	}
	return 0
}

// pinned reports whether [p, p+n) lies in one cuMemHostAlloc allocation.
func (d *simDriver) pinned(p unsafe.Pointer, n uint64) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for base, buf := range d.host {
		off := uintptr(p) - uintptr(base)
		if uintptr(p) >= uintptr(base) && uint64(off)+n <= uint64(len(buf)) {
			return true
		}
	}
	return false
}
