package ptxsim

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// Module is a parsed PTX module: its functions and its module-level
// variables (.global and .const ones live in Go memory owned by the module,
// so kernels address them like device memory).
type Module struct {
	Name    string
	funcs   map[string]*funcDecl
	vars    map[string]*variable // .global/.const (addressable) and module .shared
	globals []*variable          // .global/.const in address order, for lookups

	mu      sync.Mutex
	kernels map[string]*Kernel
}

// variable is a state-space variable: module-level .global/.const/.shared,
// or a function's .shared/.local.
type variable struct {
	name  string
	space string // ".global", ".const", ".shared", ".local"
	align int
	size  int
	init  []byte
	line  int
	mem   []byte // .global/.const: the backing memory
	addr  uint64 // .global/.const: address of mem[0]
	ext   bool   // .extern .shared (dynamic shared memory)
}

type paramDecl struct {
	name        string
	size, align int
}

type funcDecl struct {
	name   string
	entry  bool
	line   int
	params []paramDecl
	rets   []paramDecl
	body   []stmt
	maxTid [3]int
}

// Load parses PTX source. name labels errors (e.g. the file name).
func Load(name, src string) (*Module, error) {
	sts, err := tokenize(src)
	if err != nil {
		return nil, fmt.Errorf("ptxsim: %s: %v", name, err)
	}
	m := &Module{Name: name, funcs: map[string]*funcDecl{}, vars: map[string]*variable{}, kernels: map[string]*Kernel{}}
	for i := 0; i < len(sts); i++ {
		s := sts[i]
		errf := func(format string, args ...any) error {
			return fmt.Errorf("ptxsim: %s:%d: %s", name, s.line, fmt.Sprintf(format, args...))
		}
		toks := s.toks
		for len(toks) > 0 && (toks[0] == ".visible" || toks[0] == ".weak" || toks[0] == ".extern") {
			if toks[0] == ".extern" && len(toks) > 1 && toks[1] == ".shared" {
				break
			}
			toks = toks[1:]
		}
		if len(toks) == 0 {
			continue
		}
		switch toks[0] {
		case ".version", ".target", ".address_size", ".file", ".section":
			continue
		case ".entry", ".func":
			f, err := parseHeader(toks)
			if err != nil {
				return nil, errf("%v", err)
			}
			f.line = s.line
			if i+1 < len(sts) && len(sts[i+1].toks) == 1 && sts[i+1].toks[0] == "{" {
				depth := 0
				j := i + 1
				for ; j < len(sts); j++ {
					if len(sts[j].toks) == 1 {
						switch sts[j].toks[0] {
						case "{":
							depth++
						case "}":
							depth--
						}
					}
					if depth == 0 {
						break
					}
				}
				if j == len(sts) {
					return nil, errf("function %s: body not closed", f.name)
				}
				f.body = sts[i+2 : j]
				i = j
				m.funcs[f.name] = f
			} else if m.funcs[f.name] == nil {
				m.funcs[f.name] = f // prototype; the body may follow
			}
		case ".global", ".const", ".shared", ".extern":
			v, err := parseVar(toks)
			if err != nil {
				return nil, errf("%v", err)
			}
			v.line = s.line
			if v.space == ".global" || v.space == ".const" {
				// Over-allocate to align the backing memory.
				buf := make([]byte, v.size+v.align+1)
				off := 0
				for (uintptr(unsafe.Pointer(&buf[0]))+uintptr(off))%uintptr(v.align) != 0 {
					off++
				}
				v.mem = buf[off : off+v.size : off+v.size]
				copy(v.mem, v.init)
				if v.size > 0 {
					v.addr = uint64(uintptr(unsafe.Pointer(&v.mem[0])))
				}
				m.globals = append(m.globals, v)
			}
			m.vars[v.name] = v
		default:
			return nil, errf("unexpected %q at module level", strings.Join(toks, " "))
		}
	}
	return m, nil
}

// HasGlobals says whether the module has .global or .const variables,
// memory its kernels may change (a driver reusing a parsed module for a
// new load resets them: ResetGlobals).
func (m *Module) HasGlobals() bool { return len(m.globals) > 0 }

// ResetGlobals sets the module's .global and .const variables back to their
// initializers (zero past them), as a fresh load has them. No launch of
// the module's kernels may be running.
func (m *Module) ResetGlobals() {
	for _, v := range m.globals {
		clear(v.mem[copy(v.mem, v.init):])
	}
}

// Kernels lists the module's .entry names.
func (m *Module) Kernels() []string {
	var out []string
	for n, f := range m.funcs {
		if f.entry {
			out = append(out, n)
		}
	}
	return out
}

// parseHeader reads ".entry name ( params ) directives" or
// ".func (rets) name ( params )".
func parseHeader(toks []string) (*funcDecl, error) {
	f := &funcDecl{entry: toks[0] == ".entry"}
	i := 1
	if !f.entry && i < len(toks) && toks[i] == "(" {
		j := closeParen(toks, i)
		if j < 0 {
			return nil, fmt.Errorf("unclosed return parameter list")
		}
		rets, err := parseParams(toks[i+1 : j])
		if err != nil {
			return nil, err
		}
		f.rets = rets
		i = j + 1
	}
	if i >= len(toks) {
		return nil, fmt.Errorf("function name missing")
	}
	f.name = toks[i]
	i++
	if i < len(toks) && toks[i] == "(" {
		j := closeParen(toks, i)
		if j < 0 {
			return nil, fmt.Errorf("function %s: unclosed parameter list", f.name)
		}
		ps, err := parseParams(toks[i+1 : j])
		if err != nil {
			return nil, fmt.Errorf("function %s: %v", f.name, err)
		}
		f.params = ps
		i = j + 1
	}
	for i < len(toks) {
		switch toks[i] {
		case ".maxntid", ".reqntid":
			k := 0
			for i++; i < len(toks) && k < 3; i++ {
				if toks[i] == "," {
					continue
				}
				v, ok := parseInt(toks[i])
				if !ok {
					break
				}
				f.maxTid[k] = int(v)
				k++
			}
		default:
			i++
		}
	}
	return f, nil
}

func closeParen(toks []string, open int) int {
	depth := 0
	for j := open; j < len(toks); j++ {
		switch toks[j] {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// parseParams reads ".param .u64 name, .param .align 8 .b8 name[16]".
func parseParams(toks []string) ([]paramDecl, error) {
	var out []paramDecl
	for _, op := range splitOperands(toks) {
		v, err := parseDecl(op)
		if err != nil {
			return nil, err
		}
		out = append(out, paramDecl{name: v.name, size: v.size, align: v.align})
	}
	return out, nil
}

// parseVar reads a variable declaration with an optional initializer.
func parseVar(toks []string) (*variable, error) {
	eq := -1
	for i, t := range toks {
		if t == "=" {
			eq = i
			break
		}
	}
	decl := toks
	if eq >= 0 {
		decl = toks[:eq]
	}
	v, err := parseDecl(decl)
	if err != nil {
		return nil, err
	}
	if eq >= 0 {
		init, err := parseInit(toks[eq+1:], v.elem, v.size)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %v", v.name, err)
		}
		v.init = init
	}
	return v.variable, nil
}

type declared struct {
	*variable
	elem int // element size in bytes
	typ  string
}

// parseDecl reads "[.extern] .space [.align N] [.v2] .type name[dims]" (the
// space may be absent, as in register-like .param lists).
func parseDecl(toks []string) (declared, error) {
	d := declared{variable: &variable{align: 0}}
	i := 0
	vec := 1
	for ; i < len(toks) && strings.HasPrefix(toks[i], "."); i++ {
		t := toks[i]
		switch {
		case t == ".extern":
			d.ext = true
		case t == ".global" || t == ".const" || t == ".shared" || t == ".local" || t == ".param" || t == ".reg":
			d.space = t
		case t == ".align":
			if i+1 >= len(toks) {
				return d, fmt.Errorf(".align without a value")
			}
			a, ok := parseInt(toks[i+1])
			if !ok {
				return d, fmt.Errorf("bad .align %q", toks[i+1])
			}
			d.align = int(a)
			i++
		case t == ".v2":
			vec = 2
		case t == ".v4":
			vec = 4
		case t == ".ptr" || t == ".volatile":
		default:
			if n := typeSize(t[1:]); n > 0 {
				d.elem = n * vec
				d.typ = t[1:]
			} else {
				// state-space qualifiers of .ptr (.global, .align) are handled above;
				// anything else is unknown.
				return d, fmt.Errorf("unknown declaration qualifier %s", t)
			}
		}
	}
	if i >= len(toks) {
		return d, fmt.Errorf("declaration without a name")
	}
	if d.elem == 0 {
		return d, fmt.Errorf("declaration of %s without a type", toks[i])
	}
	d.name = toks[i]
	count := 1
	for i++; i < len(toks); i++ {
		if toks[i] == "[" {
			if i+1 < len(toks) && toks[i+1] == "]" {
				count = 0 // unsized (extern shared)
				i++
				continue
			}
			if i+2 >= len(toks) || toks[i+2] != "]" {
				return d, fmt.Errorf("%s: bad array size", d.name)
			}
			n, ok := parseInt(toks[i+1])
			if !ok {
				return d, fmt.Errorf("%s: bad array size %q", d.name, toks[i+1])
			}
			count *= int(n)
			i += 2
		}
	}
	d.size = count * d.elem
	if d.align == 0 {
		d.align = d.elem
	}
	return d, nil
}

// parseInit reads "{1, 2, ...}" or a single value into bytes.
func parseInit(toks []string, elem, size int) ([]byte, error) {
	out := make([]byte, 0, size)
	neg := false
	for _, t := range toks {
		switch t {
		case "{", "}", ",":
			continue
		case "-":
			neg = true
			continue
		}
		var u uint64
		if b, n, ok := parseFloatBits(t); ok && n == elem {
			u = b
		} else if v, ok := parseInt(t); ok {
			if neg {
				v = -v
			}
			u = uint64(v)
		} else {
			return nil, fmt.Errorf("bad initializer value %q", t)
		}
		neg = false
		for k := 0; k < elem; k++ {
			out = append(out, byte(u>>(8*k)))
		}
	}
	if len(out) > size {
		return nil, fmt.Errorf("initializer has %d bytes, variable %d", len(out), size)
	}
	return out, nil
}

// typeSize is the byte size of a PTX fundamental type (0 if unknown).
func typeSize(t string) int {
	switch t {
	case "b8", "u8", "s8":
		return 1
	case "b16", "u16", "s16", "f16", "bf16":
		return 2
	case "b32", "u32", "s32", "f32", "f16x2", "bf16x2":
		return 4
	case "b64", "u64", "s64", "f64":
		return 8
	case "pred":
		return 1
	}
	return 0
}
