//go:build cudasim

package cuda

import (
	"errors"
	"sort"
	"strings"
	"sync"
	"unsafe"

	"github.com/ftune/ftune/kernels/cuda/ptxsim"
)

// moduleLoad parses the PTX and decodes every kernel, so that bad PTX fails
// here, with the line in the JIT error log, as the real JIT does.
//
// Parsed modules are cached by their text (simModuleCache): every test's
// device loads the same embedded modules, flash attention's 10 MB of PTX
// among them, and a cached module's kernels keep their decoded code and
// their reusable blocks. A module with .global/.const variables is reused
// only when no loaded handle holds it, its variables set back to their
// initializers, so each load still sees its own fresh variables.
func (s *simDriver) moduleLoad(m *uintptr, image *byte, nopt uint32, opts *int32, vals *uintptr) int32 {
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(image), n)) != 0 {
		n++
	}
	text := unsafe.Slice(image, n)
	mod := s.cachedModule(text)
	if mod == nil {
		src := string(text)
		var err error
		mod, err = ptxsim.Load(ptxName(src), src)
		if err == nil {
			names := mod.Kernels()
			sort.Strings(names)
			for _, k := range names {
				if _, err = mod.Kernel(k); err != nil {
					break
				}
			}
		}
		if err != nil {
			writeJITLog(nopt, opts, vals, err.Error())
			s.setDetail(simInvalidPTX, err.Error())
			return simInvalidPTX
		}
		s.modCache.Lock()
		if s.modCache.m == nil {
			s.modCache.m = map[string][]*simCachedModule{}
		}
		s.modCache.m[src] = append(s.modCache.m[src], &simCachedModule{mod: mod, live: 1})
		s.modCache.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	*m = s.handle()
	s.modules[*m] = mod
	return 0
}

// simModuleCache holds every module parsed, by PTX text; each text keeps
// one instance per simultaneously loaded copy with module variables (one
// for the others, shared by every handle).
type simModuleCache struct {
	sync.Mutex
	m map[string][]*simCachedModule
}

type simCachedModule struct {
	mod  *ptxsim.Module
	live int // loaded handles using it
}

// cachedModule returns a cached module for the text, counted as loaded, or
// nil when there is none free.
func (s *simDriver) cachedModule(text []byte) *ptxsim.Module {
	s.modCache.Lock()
	defer s.modCache.Unlock()
	for _, c := range s.modCache.m[string(text)] {
		if !c.mod.HasGlobals() {
			c.live++
			return c.mod
		}
		if c.live == 0 {
			c.mod.ResetGlobals()
			c.live++
			return c.mod
		}
	}
	return nil
}

// releaseModule counts one handle of mod unloaded.
func (s *simDriver) releaseModule(mod *ptxsim.Module) {
	s.modCache.Lock()
	defer s.modCache.Unlock()
	for _, cs := range s.modCache.m {
		for _, c := range cs {
			if c.mod == mod && c.live > 0 {
				c.live--
				return
			}
		}
	}
}

// ptxName names a module in errors: our PTX files start with
// "// ftune-ptx source X.cu", so X.ptx, whose lines the errors count.
func ptxName(src string) string {
	const tag = "// ftune-ptx source "
	if strings.HasPrefix(src, tag) {
		if f := strings.Fields(src[len(tag):]); len(f) > 0 {
			return strings.TrimSuffix(f[0], ".cu") + ".ptx"
		}
	}
	return "module"
}

// writeJITLog copies msg into the error log buffer among the JIT options
// (the buffer's address and size are option values).
func writeJITLog(nopt uint32, opts *int32, vals *uintptr, msg string) {
	if nopt == 0 || opts == nil || vals == nil {
		return
	}
	o := unsafe.Slice(opts, nopt)
	v := unsafe.Slice(vals, nopt)
	var buf unsafe.Pointer
	size := 0
	for i := range o {
		switch o[i] {
		case jitErrorLogBuffer:
			buf = ptrFromAddr(v[i])
		case jitErrorLogBufferSize:
			size = int(v[i])
		}
	}
	if buf == nil || size == 0 {
		return
	}
	b := unsafe.Slice((*byte)(buf), size)
	n := copy(b[:size-1], msg)
	b[n] = 0
}

func (s *simDriver) getFunction(f *uintptr, m uintptr, name *byte) int32 {
	s.mu.RLock()
	mod := s.modules[m]
	s.mu.RUnlock()
	if mod == nil {
		return simInvalidHandle
	}
	k, err := mod.Kernel(cString(unsafe.Pointer(name)))
	if err != nil {
		return simNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	*f = s.handle()
	s.funcs[*f] = &simFunc{k: k, maxDyn: simSharedPerBlock - k.StaticShared()}
	return 0
}

func (s *simDriver) funcAttribute(v *int32, attr int32, f uintptr) int32 {
	s.mu.RLock()
	fn := s.funcs[f]
	s.mu.RUnlock()
	if fn == nil {
		return simInvalidHandle
	}
	switch attr {
	case funcAttrMaxThreads:
		*v = 1024
		if mt := fn.k.MaxThreads; mt[0] > 0 {
			*v = int32(mt[0] * max(mt[1], 1) * max(mt[2], 1))
		}
	case funcAttrSharedStatic:
		*v = int32(fn.k.StaticShared())
	case funcAttrLocalBytes:
		*v = int32(fn.k.LocalBytes())
	case funcAttrNumRegs:
		*v = simRegistersReportedAs
	case funcAttrMaxDynamicSmem:
		*v = int32(fn.maxDyn)
	default:
		*v = 0
	}
	return 0
}

// launch runs the kernel now (or records it during capture). Parameters
// are copied at the call, as the driver does.
func (s *simDriver) launch(f uintptr, gx, gy, gz, bx, by, bz, smem uint32, h uintptr, params *uintptr, extra *uintptr) int32 {
	s.mu.RLock()
	fn := s.funcs[f]
	s.mu.RUnlock()
	if fn == nil {
		return simInvalidHandle
	}
	if extra != nil {
		return simInvalidValue
	}
	k := fn.k
	if int(smem) > fn.maxDyn {
		s.setDetail(simInvalidValue, "ptxsim: launch of "+k.Name+" asks for more dynamic shared memory than cuFuncSetAttribute allowed")
		return simInvalidValue
	}
	sizes := k.ParamSizes()
	var ptrs []uintptr
	if len(sizes) > 0 {
		if params == nil {
			return simInvalidValue
		}
		ptrs = unsafe.Slice(params, len(sizes))
	}
	args := make([][]byte, len(sizes))
	for i, n := range sizes {
		p := ptrFromAddr(ptrs[i])
		args[i] = append([]byte(nil), unsafe.Slice((*byte)(p), n)...)
	}
	cfg := ptxsim.Config{
		Grid:  [3]int{int(gx), int(gy), int(gz)},
		Block: [3]int{int(bx), int(by), int(bz)}, SharedBytes: int(smem), Params: args, Memory: s, Budget: s.budget, Racecheck: s.racecheck,
	}
	return s.enqueue(h, func() int32 { return s.run(k, cfg) })
}

// run executes one launch; a fault's detail goes to the error's name.
func (s *simDriver) run(k *ptxsim.Kernel, cfg ptxsim.Config) int32 {
	if s.skipDeviceWork.Load() {
		return 0
	}
	err := k.Launch(cfg)
	if err == nil {
		return 0
	}
	code := int32(simLaunchFailed)
	var f *ptxsim.Fault
	if errors.As(err, &f) {
		switch f.Kind {
		case ptxsim.FaultIllegalAddress:
			code = simIllegalAddress
		case ptxsim.FaultMisaligned:
			code = simMisaligned
		case ptxsim.FaultBudget:
			code = simLaunchTimeout
		}
		// (a racecheck hazard is CUDA_ERROR_LAUNCH_FAILED: the hardware has no code for it)
	} else {
		code = simInvalidValue
	}
	s.setDetail(code, err.Error())
	return code
}

// ptrFromAddr turns an address the driver API passes as an integer (a
// kernel parameter's slot, a JIT log buffer) back into a pointer. The
// memory is Go memory the caller keeps alive for the call (module.go's
// KeepAlive). Reinterpreting the bits, rather than pointer arithmetic from
// nil, keeps checkptr (-race) content.
func ptrFromAddr(a uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&a)) }
