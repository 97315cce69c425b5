package cuda

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"unsafe"
)

// JIT options (CUjit_option).
const (
	jitInfoLogBuffer       = 3
	jitInfoLogBufferSize   = 4
	jitErrorLogBuffer      = 5
	jitErrorLogBufferSize  = 6
	funcAttrMaxThreads     = 0
	funcAttrSharedStatic   = 1
	funcAttrLocalBytes     = 3
	funcAttrNumRegs        = 4
	funcAttrMaxDynamicSmem = 8
)

// Module is a loaded PTX module.
type Module struct {
	d *Device
	h uintptr
}

// LoadModule JIT-compiles PTX for this device. On failure the error carries
// the JIT compiler's log (the line and message of the PTX error).
func (d *Device) LoadModule(name, ptx string) (*Module, error) {
	image := cBytes(ptx)
	errLog := make([]byte, 16<<10)
	infoLog := make([]byte, 16<<10)
	opts := []int32{jitErrorLogBuffer, jitErrorLogBufferSize, jitInfoLogBuffer, jitInfoLogBufferSize}
	// Option values are void*: buffers by address, sizes by value.
	vals := []uintptr{
		uintptr(unsafe.Pointer(&errLog[0])), uintptr(len(errLog)),
		uintptr(unsafe.Pointer(&infoLog[0])), uintptr(len(infoLog)),
	}
	m := &Module{d: d}
	err := d.call("cuModuleLoadDataEx", func() int32 {
		return cuModuleLoadDataEx(&m.h, &image[0], uint32(len(opts)), &opts[0], &vals[0])
	})
	runtime.KeepAlive(errLog)
	runtime.KeepAlive(infoLog)
	runtime.KeepAlive(image)
	if err != nil {
		log := strings.TrimSpace(string(errLog[:clen(errLog)]))
		return nil, fmt.Errorf("load PTX module %s: %w\n%s", name, err, log)
	}
	return m, nil
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// Unload frees the module.
func (m *Module) Unload() error {
	return m.d.call("cuModuleUnload", func() int32 { return cuModuleUnload(m.h) })
}

// Function is a kernel of a loaded module.
type Function struct {
	d    *Device
	h    uintptr
	Name string
}

// Function looks up a kernel by its extern "C" name.
func (m *Module) Function(name string) (*Function, error) {
	f := &Function{d: m.d, Name: name}
	b := cBytes(name)
	if err := m.d.call("cuModuleGetFunction", func() int32 { return cuModuleGetFunction(&f.h, m.h, &b[0]) }); err != nil {
		return nil, fmt.Errorf("kernel %s: %w", name, err)
	}
	return f, nil
}

// FuncInfo is the compiled kernel's resource use.
type FuncInfo struct {
	Registers, StaticSmem, LocalBytes, MaxThreads int
}

// Info reads the kernel's register count, static shared memory, local
// memory (spills, stack) and largest block size.
func (f *Function) Info() (FuncInfo, error) {
	var fi FuncInfo
	for _, a := range []struct {
		dst  *int
		attr int32
	}{{&fi.Registers, funcAttrNumRegs}, {&fi.StaticSmem, funcAttrSharedStatic}, {&fi.LocalBytes, funcAttrLocalBytes}, {&fi.MaxThreads, funcAttrMaxThreads}} {
		var v int32
		if err := f.d.call("cuFuncGetAttribute", func() int32 { return cuFuncGetAttribute(&v, a.attr, f.h) }); err != nil {
			return fi, err
		}
		*a.dst = int(v)
	}
	return fi, nil
}

// SetMaxDynamicSmem lets launches of f use up to n bytes of dynamic shared
// memory; above 48 KB the driver refuses launches until this is set.
func (f *Function) SetMaxDynamicSmem(n int) error {
	if n > f.d.SharedOptin {
		return fmt.Errorf("kernel %s: %d bytes of shared memory requested, device allows %d", f.Name, n, f.d.SharedOptin)
	}
	return f.d.call("cuFuncSetAttribute", func() int32 { return cuFuncSetAttribute(f.h, funcAttrMaxDynamicSmem, int32(n)) })
}

// Occupancy returns how many blocks of the given size fit on one SM.
func (f *Function) Occupancy(block, smem int) (int, error) {
	var n int32
	err := f.d.call("cuOccupancyMaxActiveBlocksPerMultiprocessor", func() int32 {
		return cuOccupancyMaxActiveBlocksPerMultiprocessor(&n, f.h, int32(block), uint64(smem))
	})
	return int(n), err
}

// Dim3 is a grid or block shape.
type Dim3 struct{ X, Y, Z int }

// Args collects kernel arguments. Each argument takes an 8-byte slot; the
// driver reads as many bytes as the parameter's type needs, and on a
// little-endian host the low bytes of the slot hold 4-byte values.
type Args struct {
	slots []uint64
	// starts[i] is parameter i's first slot: one slot each but for Blob's.
	starts []int
}

// add appends one parameter of n slots.
func (a *Args) add(v ...uint64) *Args {
	a.starts = append(a.starts, len(a.slots))
	a.slots = append(a.slots, v...)
	return a
}

// Ptr appends a device pointer.
func (a *Args) Ptr(p Ptr) *Args { return a.add(uint64(p)) }

// Int appends a 32-bit int.
func (a *Args) Int(v int) *Args { return a.add(uint64(uint32(int32(v)))) }

// I64 appends a 64-bit int.
func (a *Args) I64(v int64) *Args { return a.add(uint64(v)) }

// F32 appends a float.
func (a *Args) F32(v float32) *Args { return a.add(uint64(math.Float32bits(v))) }

// TensorMap appends a 128-byte CUtensorMap passed by value (a kernel's
// __grid_constant__ parameter).
func (a *Args) TensorMap(m *TensorMap) *Args { return a.add(m[:]...) }

// Launch queues f on s. Grid dimensions of zero are an error; callers skip
// empty work before launching.
func (f *Function) Launch(s Stream, grid, block Dim3, smem int, args *Args) error {
	if grid.X <= 0 || grid.Y <= 0 || grid.Z <= 0 || block.X <= 0 || block.Y <= 0 || block.Z <= 0 {
		return badArg("launch %s: grid %v block %v", f.Name, grid, block)
	}
	if grid.Y > 65535 || grid.Z > 65535 {
		return badArg("launch %s: grid %v exceeds 65535 in y or z", f.Name, grid)
	}
	// kernelParams is an array of pointers to the argument values. The
	// slots live in Go memory that does not move; KeepAlive holds it.
	var ptrs []uintptr
	if args != nil && len(args.starts) > 0 {
		ptrs = make([]uintptr, len(args.starts))
		for i, j := range args.starts {
			ptrs[i] = uintptr(unsafe.Pointer(&args.slots[j]))
		}
	}
	var pp *uintptr
	if len(ptrs) > 0 {
		pp = &ptrs[0]
	}
	err := f.d.call("cuLaunchKernel", func() int32 {
		return cuLaunchKernel(f.h, uint32(grid.X), uint32(grid.Y), uint32(grid.Z),
			uint32(block.X), uint32(block.Y), uint32(block.Z), uint32(smem), s.h, pp, nil)
	})
	runtime.KeepAlive(args)
	runtime.KeepAlive(ptrs)
	if err == nil {
		f.d.callsMu.Lock()
		if f.d.launches == nil {
			f.d.launches = map[string]int64{}
		}
		f.d.launches[f.Name]++
		f.d.callsMu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("launch %s grid %v block %v smem %d: %w", f.Name, grid, block, smem, err)
	}
	return nil
}
