package ptxsim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Kernel is an .entry decoded for execution: one flat code array holding the
// kernel's body and the bodies of the functions it calls, and the template
// of its register file (registers, then constant slots).
type Kernel struct {
	Name string
	mod  *Module

	code       []inst
	tmpl       []uint64 // fixed slots, registers (zero), constants
	constStart int      // first constant slot
	params     []paramDecl
	paramOff   []int
	paramSize  int
	pmemSize   int // per-thread .param memory of called functions
	localSize  int // per-thread .local memory

	sharedStatic int // bytes of static shared memory (dynamic follows)
	MaxThreads   [3]int
}

// StaticShared is the kernel's static shared memory in bytes.
func (k *Kernel) StaticShared() int { return k.sharedStatic }

// LocalBytes is the kernel's per-thread local memory (its depots).
func (k *Kernel) LocalBytes() int { return k.localSize }

// Params returns the byte sizes of the kernel's parameters.
func (k *Kernel) ParamSizes() []int {
	out := make([]int, len(k.params))
	for i, p := range k.params {
		out[i] = p.size
	}
	return out
}

// Fixed register-file slots.
const (
	slotZero = iota
	slotTid
	_
	_
	slotNtid
	_
	_
	slotCtaid
	_
	_
	slotNctaid
	_
	_
	slotLaneid
	slotWarpid
	slotNwarpid
	slotLanemaskEq
	slotLanemaskLt
	slotLanemaskLe
	slotLanemaskGt
	slotLanemaskGe
	slotSink
	slotSMID
	slotDynSmem
	slotTotalSmem
	numFixed
)

var specialSlots = map[string]int32{
	"%tid.x": slotTid, "%tid.y": slotTid + 1, "%tid.z": slotTid + 2,
	"%ntid.x": slotNtid, "%ntid.y": slotNtid + 1, "%ntid.z": slotNtid + 2,
	"%ctaid.x": slotCtaid, "%ctaid.y": slotCtaid + 1, "%ctaid.z": slotCtaid + 2,
	"%nctaid.x": slotNctaid, "%nctaid.y": slotNctaid + 1, "%nctaid.z": slotNctaid + 2,
	"%laneid": slotLaneid, "%warpid": slotWarpid, "%nwarpid": slotNwarpid,
	"%lanemask_eq": slotLanemaskEq, "%lanemask_lt": slotLanemaskLt, "%lanemask_le": slotLanemaskLe,
	"%lanemask_gt": slotLanemaskGt, "%lanemask_ge": slotLanemaskGe,
	"%smid": slotSMID, "%nsmid": slotSMID, "%gridid": slotZero,
	"%dynamic_smem_size": slotDynSmem, "%total_smem_size": slotTotalSmem,
}

// Symbol kinds.
const (
	symReg = iota
	symKParam
	symTParam
	symShared
	symLocal
	symGlobal
)

type sym struct {
	kind  int
	slot  int32  // symReg
	off   uint64 // param/shared/local offset, global address
	width int    // symReg: declared bits
}

type callInfo struct {
	target string
	pc     int32
	args   []pcopy
	rets   []pcopy
}

type pcopy struct{ from, to, n int }

// Kernel decodes the named .entry (once; later calls return the same).
func (m *Module) Kernel(name string) (*Kernel, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k := m.kernels[name]; k != nil {
		return k, nil
	}
	f := m.funcs[name]
	if f == nil || !f.entry {
		return nil, fmt.Errorf("ptxsim: %s: no kernel %s", m.Name, name)
	}
	b := &builder{m: m, k: &Kernel{Name: name, mod: m, MaxThreads: f.maxTid}, consts: map[uint64]int32{}}
	b.k.tmpl = make([]uint64, numFixed)
	if err := b.build(f); err != nil {
		return nil, err
	}
	m.kernels[name] = b.k
	return b.k, nil
}

type builder struct {
	m         *Module
	k         *Kernel
	fn        *funcDecl
	scopes    []map[string]sym
	consts    map[uint64]int32
	widths    []int // declared width of each register slot (0: fixed)
	constVals []uint64
	labels    map[string]int32
	jumps     []int32 // code indices of branches to patch
	jlabel    []string
	calls     []*callInfo
	entry     map[string]int32
	fpar      map[string][]sym // function -> params then rets (thread .param offsets)
	line      int
}

func (b *builder) errf(format string, args ...any) error {
	return fmt.Errorf("ptxsim: %s:%d: %s", b.m.Name, b.line, fmt.Sprintf(format, args...))
}

// build decodes the kernel and every function it calls.
func (b *builder) build(kf *funcDecl) error {
	k := b.k
	// Kernel parameters.
	base := map[string]sym{}
	off := 0
	for _, p := range kf.params {
		off = alignUp(off, p.align)
		k.params = append(k.params, p)
		k.paramOff = append(k.paramOff, off)
		base[p.name] = sym{kind: symKParam, off: uint64(off)}
		off += p.size
	}
	k.paramSize = off
	// Functions reachable from the kernel.
	order, err := b.callees(kf)
	if err != nil {
		return err
	}
	b.fpar = map[string][]sym{}
	for _, f := range order[1:] {
		var ps []sym
		for _, p := range append(append([]paramDecl{}, f.params...), f.rets...) {
			k.pmemSize = alignUp(k.pmemSize, max(p.align, 1))
			ps = append(ps, sym{kind: symTParam, off: uint64(k.pmemSize), width: p.size})
			k.pmemSize += p.size
		}
		b.fpar[f.name] = ps
	}
	// Shared memory: module statics, then the functions' statics, then the
	// dynamic (extern) part.
	dynAlign := 16
	for _, v := range sortedVars(b.m) {
		if v.space == ".shared" && !v.ext {
			k.sharedStatic = alignUp(k.sharedStatic, v.align)
			base[v.name] = sym{kind: symShared, off: uint64(k.sharedStatic)}
			k.sharedStatic += v.size
		} else if v.space == ".shared" {
			dynAlign = max(dynAlign, v.align)
		}
	}
	sharedNext := k.sharedStatic
	for _, f := range order {
		for _, s := range f.body {
			if len(s.toks) > 0 && s.toks[0] == ".shared" {
				d, err := parseDecl(s.toks)
				if err != nil {
					b.line = s.line
					return b.errf("%v", err)
				}
				k.sharedStatic = alignUp(k.sharedStatic, d.align)
				k.sharedStatic += d.size
			}
		}
	}
	k.sharedStatic = alignUp(k.sharedStatic, dynAlign)
	for _, v := range b.m.vars {
		if v.space == ".shared" && v.ext {
			base[v.name] = sym{kind: symShared, off: uint64(k.sharedStatic)}
		} else if v.space == ".global" || v.space == ".const" {
			base[v.name] = sym{kind: symGlobal, off: v.addr}
		}
	}
	b.widths = make([]int, numFixed)
	b.entry = map[string]int32{}
	for fi, f := range order {
		b.fn = f
		b.scopes = []map[string]sym{base, {}}
		if fi > 0 {
			for i, p := range append(append([]paramDecl{}, f.params...), f.rets...) {
				b.scopes[1][p.name] = b.fpar[f.name][i]
			}
		}
		b.labels = map[string]int32{}
		b.jumps, b.jlabel = nil, nil
		b.entry[f.name] = int32(len(k.code))
		if err := b.body(f, &sharedNext); err != nil {
			return err
		}
		// Falling off the end returns.
		b.emit(inst{fn: opRet, instX: &instX{op: "ret"}})
		for i, pc := range b.jumps {
			t, ok := b.labels[b.jlabel[i]]
			if !ok {
				b.line = int(k.code[pc].line)
				return b.errf("branch to unknown label %s", b.jlabel[i])
			}
			k.code[pc].n = t
		}
	}
	for _, c := range b.calls {
		c.pc = b.entry[c.target]
	}
	b.fixConsts()
	return nil
}

// callees lists the kernel then every function reachable from it, and
// refuses recursion (each function's .param and .local memory is static).
func (b *builder) callees(kf *funcDecl) ([]*funcDecl, error) {
	order := []*funcDecl{kf}
	seen := map[string]bool{kf.name: true}
	var visit func(f *funcDecl, path map[string]bool) error
	visit = func(f *funcDecl, path map[string]bool) error {
		for _, s := range f.body {
			if len(s.toks) == 0 {
				continue
			}
			op := s.toks[0]
			if op == "@" && len(s.toks) > 2 {
				op = s.toks[2]
				if op == "!" && len(s.toks) > 3 {
					op = s.toks[3]
				}
			}
			if op != "call" && !strings.HasPrefix(op, "call.") {
				continue
			}
			for _, t := range s.toks {
				g := b.m.funcs[t]
				if g == nil || g.entry {
					continue
				}
				if path[g.name] {
					b.line = s.line
					return b.errf("recursive call of %s is not supported", g.name)
				}
				if g.body == nil {
					b.line = s.line
					return b.errf("call of %s, which has no body in this module", g.name)
				}
				if !seen[g.name] {
					seen[g.name] = true
					order = append(order, g)
					path[g.name] = true
					if err := visit(g, path); err != nil {
						return err
					}
					delete(path, g.name)
				}
			}
		}
		return nil
	}
	return order, visit(kf, map[string]bool{kf.name: true})
}

// sortedVars lists the module's variables in declaration order, so shared
// layouts do not depend on map order.
func sortedVars(m *Module) []*variable {
	out := make([]*variable, 0, len(m.vars))
	for _, v := range m.vars {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].line < out[j].line })
	return out
}

func alignUp(n, a int) int {
	if a <= 1 {
		return n
	}
	return (n + a - 1) / a * a
}

func (b *builder) emit(in inst) {
	x := *in.instX // each instruction its own (a builder may emit one inst value twice)
	in.instX = &x
	if in.op == "" {
		in.op = "?"
	}
	in.line = int32(b.line)
	if in.fn == nil {
		in.fn = opNop
	}
	if in.guard == 0 {
		in.guard = -1
	}
	b.k.code = append(b.k.code, in)
}

func (b *builder) lookup(name string) (sym, bool) {
	for i := len(b.scopes) - 1; i >= 0; i-- {
		if s, ok := b.scopes[i][name]; ok {
			return s, true
		}
	}
	return sym{}, false
}

func (b *builder) newReg(name string, width int) {
	slot := int32(len(b.k.tmpl))
	b.k.tmpl = append(b.k.tmpl, 0)
	b.widths = append(b.widths, width)
	b.scopes[len(b.scopes)-1][name] = sym{kind: symReg, slot: slot, width: width}
}

// constTag marks constant slots during decoding: constants are placed
// after all registers once the kernel is decoded (fixConsts), so that a
// block's setup copies the few constants and not the large register part.
const constTag = 1 << 30

func (b *builder) constSlot(v uint64) int32 {
	if s, ok := b.consts[v]; ok {
		return s
	}
	s := int32(constTag + len(b.constVals))
	b.constVals = append(b.constVals, v)
	b.consts[v] = s
	return s
}

// fixConsts lays out [fixed slots][registers][constants] and rewrites the
// tagged constant slots in every instruction. Fields that are not slots
// (atomic op codes, flags, -1) never carry the tag.
func (b *builder) fixConsts() {
	k := b.k
	k.constStart = len(k.tmpl)
	k.tmpl = append(k.tmpl, b.constVals...)
	fix := func(p *int32) {
		if *p >= constTag {
			*p = int32(k.constStart) + *p - constTag
		}
	}
	for i := range k.code {
		in := &k.code[i]
		for _, p := range []*int32{&in.d, &in.a, &in.b, &in.c, &in.e, &in.d2, &in.guard} {
			fix(p)
		}
		for j := range in.v {
			fix(&in.v[j])
		}
	}
}

// body decodes one function's statements.
func (b *builder) body(f *funcDecl, sharedNext *int) error {
	k := b.k
	for _, s := range f.body {
		b.line = s.line
		toks := s.toks
		switch {
		case len(toks) == 1 && toks[0] == "{":
			b.scopes = append(b.scopes, map[string]sym{})
		case len(toks) == 1 && toks[0] == "}":
			if len(b.scopes) <= 2 {
				return b.errf("unbalanced }")
			}
			b.scopes = b.scopes[:len(b.scopes)-1]
		case len(toks) == 2 && toks[1] == ":":
			b.labels[toks[0]] = int32(len(k.code))
		case toks[0] == ".reg":
			if err := b.declRegs(toks); err != nil {
				return err
			}
		case toks[0] == ".shared":
			d, err := parseDecl(toks)
			if err != nil {
				return b.errf("%v", err)
			}
			*sharedNext = alignUp(*sharedNext, d.align)
			b.scopes[len(b.scopes)-1][d.name] = sym{kind: symShared, off: uint64(*sharedNext)}
			*sharedNext += d.size
		case toks[0] == ".local":
			d, err := parseDecl(toks)
			if err != nil {
				return b.errf("%v", err)
			}
			k.localSize = alignUp(k.localSize, d.align)
			b.scopes[len(b.scopes)-1][d.name] = sym{kind: symLocal, off: uint64(k.localSize)}
			k.localSize += d.size
		case toks[0] == ".param":
			d, err := parseDecl(toks)
			if err != nil {
				return b.errf("%v", err)
			}
			k.pmemSize = alignUp(k.pmemSize, d.align)
			b.scopes[len(b.scopes)-1][d.name] = sym{kind: symTParam, off: uint64(k.pmemSize), width: d.size}
			k.pmemSize += d.size
		case toks[0] == ".pragma" || toks[0] == ".loc" || toks[0] == ".file":
		case strings.HasPrefix(toks[0], "."):
			return b.errf("unsupported directive %s", toks[0])
		default:
			if err := b.instruction(toks); err != nil {
				return err
			}
		}
	}
	return nil
}

// declRegs handles ".reg .b32 %r<10>;" and ".reg .b32 a, b;".
func (b *builder) declRegs(toks []string) error {
	i := 1
	width := 0
	for ; i < len(toks) && strings.HasPrefix(toks[i], "."); i++ {
		switch toks[i] {
		case ".v2", ".v4":
			return b.errf("vector registers are not supported")
		}
		if n := typeSize(toks[i][1:]); n > 0 {
			width = n * 8
			if toks[i] == ".pred" {
				width = 1
			}
		}
	}
	if width == 0 {
		return b.errf("register declaration without a type")
	}
	for _, op := range splitOperands(toks[i:]) {
		if len(op) == 4 && op[1] == "<" && op[3] == ">" {
			n, ok := parseInt(op[2])
			if !ok {
				return b.errf("bad register count %q", op[2])
			}
			for j := 0; j < int(n); j++ {
				b.newReg(op[0]+strconv.Itoa(j), width)
			}
		} else if len(op) == 1 {
			b.newReg(op[0], width)
		} else {
			return b.errf("bad register declaration %q", strings.Join(op, ""))
		}
	}
	return nil
}
