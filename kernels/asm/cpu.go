package asm

import (
	"fmt"

	"github.com/klauspost/cpuid/v2"
)

// Impl names one family of kernel implementations.
type Impl string

const (
	ImplGo     Impl = "go"     // pure-Go reference loops; always available
	ImplAVX2   Impl = "avx2"   // amd64 AVX2 + FMA
	ImplAVX512 Impl = "avx512" // amd64 AVX-512 F (+DQ/BW/VL)
	ImplNEON   Impl = "neon"   // arm64 Advanced SIMD
)

// cpu features detected once; kept in variables so the purego build and the
// per-arch files can narrow them.
var (
	hasAVX2   = cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3) && haveAsm
	hasAVX512 = cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512DQ, cpuid.AVX512BW, cpuid.AVX512VL) && haveAsm
	hasNEON   = cpuid.CPU.Supports(cpuid.ASIMD) && haveAsm
)

// Available lists the implementations this CPU and build can run, fastest last.
func Available() []Impl {
	out := []Impl{ImplGo}
	if isAMD64 && hasAVX2 {
		out = append(out, ImplAVX2)
	}
	if isAMD64 && hasAVX512 && hasAVX2 {
		out = append(out, ImplAVX512)
	}
	if isARM64 && hasNEON {
		out = append(out, ImplNEON)
	}
	return out
}

// Best is the implementation chosen at init.
func Best() Impl {
	a := Available()
	return a[len(a)-1]
}

// current is the implementation the kernels dispatch to; package variables
// are initialised before any init function runs, so registerImpl sees it.
var current = Best()

// setters are registered by each kernel family (sgemm, vector ops...) in
// their init; SetImpl calls every one so the whole package switches at once.
var setters []func(Impl)

func registerImpl(set func(Impl)) {
	setters = append(setters, set)
	set(current)
}

// SetImpl switches every kernel to impl; tests use it to run each
// implementation against the Go reference. It is not safe to call while
// kernels run on other goroutines.
func SetImpl(impl Impl) error {
	ok := false
	for _, a := range Available() {
		if a == impl {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("asm: implementation %q not available on this CPU/build (have %v)", impl, Available())
	}
	current = impl
	for _, s := range setters {
		s(impl)
	}
	return nil
}

// CurrentImpl reports the implementation kernels dispatch to now.
func CurrentImpl() Impl { return current }
