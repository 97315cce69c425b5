package ptxsim

import (
	"strings"
)

// opInfo is an opcode split into its base, modifiers and types.
type opInfo struct {
	base  string
	mods  map[string]bool
	types []string
}

func splitOpcode(op string) opInfo {
	parts := strings.Split(op, ".")
	oi := opInfo{base: parts[0], mods: map[string]bool{}}
	for _, p := range parts[1:] {
		if i := strings.Index(p, "::"); i > 0 {
			switch p[:i] {
			case "shared", "global", "local", "const", "param":
				p = p[:i] // .shared::cta is .shared
			}
		}
		if typeSize(p) > 0 {
			oi.types = append(oi.types, p)
		} else {
			oi.mods[p] = true
		}
	}
	return oi
}

// knownMods are the modifiers the decoder handles or may ignore (cache
// and memory-order hints: one schedule, no caches). Any other is refused,
// so that no semantics is dropped silently.
var knownMods = map[string]bool{}

func init() {
	for _, m := range strings.Fields(`global const shared local param
		rn rz rm rp rni rzi rmi rpi ftz sat approx full NaN
		eq ne lt le gt ge lo ls hi hs equ neu ltu leu gtu geu num nan and or xor
		wide v2 v4 nc ca cg cs lu cv wb wt volatile relaxed acquire release weak gpu cta sys
		uni sync aligned up down bfly idx all any ballot m8n8 x1 x2 x4 trans m16n8k16 m16n8k8 row col
		async commit_group wait_group wait_all to add min max exch cas inc dec warp l r wrap clamp`) {
		knownMods[m] = true
	}
}

// checkMods refuses modifiers the simulator does not know.
func (oi opInfo) unknownMod() string {
	for m := range oi.mods {
		if !knownMods[m] && !strings.HasPrefix(m, "L1::") && !strings.HasPrefix(m, "L2::") {
			return m
		}
	}
	return ""
}

func (oi opInfo) typ(i int) string {
	if i < len(oi.types) {
		return oi.types[i]
	}
	return ""
}

func (oi opInfo) mode() int {
	switch {
	case oi.mods["rz"], oi.mods["rzi"]:
		return rz
	case oi.mods["rm"], oi.mods["rmi"]:
		return rm
	case oi.mods["rp"], oi.mods["rpi"]:
		return rp
	}
	return rn
}

func (oi opInfo) space() int {
	switch {
	case oi.mods["global"], oi.mods["const"]:
		return spGlobal
	case oi.mods["shared"]:
		return spShared
	case oi.mods["local"]:
		return spLocal
	case oi.mods["param"]:
		return spKParam
	}
	return spGeneric
}

// instruction decodes one instruction statement.
func (b *builder) instruction(toks []string) error {
	in := inst{guard: -1, e: -1, d2: -1, c: -1}
	if toks[0] == "@" {
		if len(toks) < 3 {
			return b.errf("bad predicate guard")
		}
		i := 1
		if toks[i] == "!" {
			in.gneg = true
			i++
		}
		s, ok := b.lookup(toks[i])
		if !ok || s.kind != symReg {
			return b.errf("unknown guard predicate %s", toks[i])
		}
		in.guard = s.slot
		toks = toks[i+1:]
	}
	if len(toks) == 0 {
		return b.errf("guard without an instruction")
	}
	in.op = toks[0]
	oi := splitOpcode(toks[0])
	if m := oi.unknownMod(); m != "" {
		return b.errf("%s: modifier .%s is not simulated", in.op, m)
	}
	ops := splitOperands(toks[1:])
	t0 := oi.typ(0)
	need := func(n int) error {
		if len(ops) != n {
			return b.errf("%s: %d operands, expected %d", in.op, len(ops), n)
		}
		return nil
	}
	var err error
	srcs := func(typ string, slots ...*int32) error {
		for i, s := range slots {
			if *s, err = b.src(ops[i+1], typ); err != nil {
				return err
			}
		}
		return nil
	}
	setInt := func(typ string) {
		in.mask = typeMask(typ)
		in.w = uint8(typeSize(typ) * 8)
	}
	switch oi.base {
	case "mov":
		if err := need(2); err != nil {
			return err
		}
		setInt(t0)
		if t0 == "f32" {
			in.mask = 0xFFFFFFFF
		}
		switch {
		case ops[0][0] == "{":
			if in.v, err = b.vec(ops[0], "b64", true); err != nil {
				return err
			}
			if in.a, err = b.src(ops[1], t0); err != nil {
				return err
			}
			in.w = uint8(typeSize(t0) * 8 / len(in.v))
			in.fn = opUnpack
		case ops[1][0] == "{":
			if in.d, err = b.dst(ops[0]); err != nil {
				return err
			}
			if in.v, err = b.vec(ops[1], "b64", false); err != nil {
				return err
			}
			in.w = uint8(typeSize(t0) * 8 / len(in.v))
			in.fn = opPack
		default:
			if in.d, err = b.dst(ops[0]); err != nil {
				return err
			}
			if len(ops[1]) == 1 && (ops[1][0] == "%clock" || ops[1][0] == "%clock64" || ops[1][0] == "%globaltimer") {
				in.fn = opClock
				break
			}
			if err := srcs(t0, &in.a); err != nil {
				return err
			}
			in.fn = opMov
		}
	case "add", "sub", "mul", "mad", "fma", "div", "rem", "min", "max", "abs", "neg", "not", "and", "or", "xor",
		"shl", "shr", "popc", "clz", "brev", "cnot", "sqrt", "rsqrt", "rcp", "ex2", "lg2", "sin", "cos", "tanh":
		return b.arith(&in, oi, ops)
	case "selp":
		if err := need(4); err != nil {
			return err
		}
		if in.d, err = b.dst(ops[0]); err != nil {
			return err
		}
		if err := srcs(t0, &in.a, &in.b); err != nil {
			return err
		}
		if in.c, err = b.src(ops[3], "pred"); err != nil {
			return err
		}
		in.fn = opSelp
	case "setp":
		return b.setp(&in, oi, ops)
	case "cvt":
		return b.cvt(&in, oi, ops)
	case "cvta":
		if err := need(2); err != nil {
			return err
		}
		setInt(t0)
		if in.d, err = b.dst(ops[0]); err != nil {
			return err
		}
		if err := srcs(t0, &in.a); err != nil {
			return err
		}
		switch {
		case oi.mods["shared"]:
			in.off = sharedWindow
		case oi.mods["local"]:
			in.off = localWindow
		}
		in.fn = opCvtaFrom
		if oi.mods["to"] {
			in.fn = opCvtaTo
		}
	case "bfi":
		if err := need(5); err != nil {
			return err
		}
		setInt(t0)
		if in.d, err = b.dst(ops[0]); err != nil {
			return err
		}
		if err := srcs(t0, &in.a, &in.b); err != nil {
			return err
		}
		if in.c, err = b.src(ops[3], "u32"); err != nil {
			return err
		}
		if in.e, err = b.src(ops[4], "u32"); err != nil {
			return err
		}
		in.fn = opBfi
	case "bfe":
		if err := need(4); err != nil {
			return err
		}
		setInt(t0)
		if in.d, err = b.dst(ops[0]); err != nil {
			return err
		}
		if err := srcs(t0, &in.a); err != nil {
			return err
		}
		if in.b, err = b.src(ops[2], "u32"); err != nil {
			return err
		}
		if in.c, err = b.src(ops[3], "u32"); err != nil {
			return err
		}
		in.fn = opBfeU
		if t0[0] == 's' {
			in.fn = opBfeS
		}
	case "prmt":
		if len(oi.mods) > 0 {
			return b.errf("%s: prmt modes are not simulated", in.op)
		}
		if err := need(4); err != nil {
			return err
		}
		if in.d, err = b.dst(ops[0]); err != nil {
			return err
		}
		if err := srcs("b32", &in.a, &in.b, &in.c); err != nil {
			return err
		}
		in.fn = opPrmt
	case "ld", "ldu", "st":
		return b.ldst(&in, oi, ops)
	case "atom", "red":
		return b.atom(&in, oi, ops)
	case "cp":
		return b.cpAsync(&in, oi, ops)
	case "bra":
		if err := need(1); err != nil {
			return err
		}
		b.jumps = append(b.jumps, int32(len(b.k.code)))
		b.jlabel = append(b.jlabel, ops[0][0])
		in.fn = opBra
	case "call":
		return b.call(&in, ops)
	case "ret":
		in.fn = opRet
	case "exit":
		in.fn = opExit
	case "trap":
		in.fn = opTrap
	case "bar", "barrier":
		if oi.mods["warp"] {
			// bar.warp.sync membermask: a warp collective without data.
			if err := need(1); err != nil {
				return err
			}
			if in.e, err = b.src(ops[0], "b32"); err != nil {
				return err
			}
			in.fn, in.coll = opParkWarp, collNop
			break
		}
		if oi.mods["arrive"] || oi.mods["red"] {
			return b.errf("%s is not simulated", in.op)
		}
		if len(ops) != 1 {
			return b.errf("%s: only a barrier of the whole block (one operand) is simulated", in.op)
		}
		if in.a, err = b.src(ops[0], "u32"); err != nil {
			return err
		}
		in.fn = opBar
	case "activemask":
		if err := need(1); err != nil {
			return err
		}
		if in.d, err = b.dst(ops[0]); err != nil {
			return err
		}
		// A collective in the simulator, so that lanes run serially do
		// not look inactive: it returns the lanes that reach it together.
		in.fn, in.coll, in.loose = opParkWarp, collActivemask, true
	case "lop3":
		if err := need(5); err != nil {
			return err
		}
		if in.d, err = b.dst(ops[0]); err != nil {
			return err
		}
		if err := srcs("b32", &in.a, &in.b, &in.c, &in.e); err != nil {
			return err
		}
		in.fn = opLop3
	case "shf":
		if err := need(4); err != nil {
			return err
		}
		if in.d, err = b.dst(ops[0]); err != nil {
			return err
		}
		if err := srcs("b32", &in.a, &in.b, &in.c); err != nil {
			return err
		}
		in.fn = pick(oi.mods["l"], handler(opShfL), handler(opShfR))
		if oi.mods["clamp"] {
			in.m = 1
		}
	case "membar", "fence", "nanosleep", "prefetch", "prefetchu":
		in.fn = opNop
	case "shfl":
		if err := need(5); err != nil {
			return err
		}
		d := ops[0]
		if len(d) == 3 && d[1] == "|" {
			s, ok := b.lookup(d[2])
			if !ok || s.kind != symReg {
				return b.errf("bad predicate %s", d[2])
			}
			in.d2 = s.slot
			d = d[:1]
		}
		if in.d, err = b.dst(d); err != nil {
			return err
		}
		if err := srcs("b32", &in.a, &in.b, &in.c, &in.e); err != nil {
			return err
		}
		switch {
		case oi.mods["up"]:
			in.m = shflUp
		case oi.mods["down"]:
			in.m = shflDown
		case oi.mods["bfly"]:
			in.m = shflBfly
		default:
			in.m = shflIdx
		}
		in.fn, in.coll = opParkWarp, collShfl
	case "vote":
		if err := need(3); err != nil {
			return err
		}
		if in.d, err = b.dst(ops[0]); err != nil {
			return err
		}
		p := ops[1]
		if p[0] == "!" {
			in.b = 1
			p = p[1:]
		} else {
			in.b = 0
		}
		if in.a, err = b.src(p, "pred"); err != nil {
			return err
		}
		if in.e, err = b.src(ops[2], "b32"); err != nil {
			return err
		}
		switch {
		case oi.mods["all"]:
			in.m = 0
		case oi.mods["any"]:
			in.m = 1
		case oi.mods["uni"]:
			in.m = 2
		default:
			in.m = 3
		}
		in.fn, in.coll = opParkWarp, collVote
	case "ldmatrix":
		if err := need(2); err != nil {
			return err
		}
		if !oi.mods["m8n8"] || t0 != "b16" {
			return b.errf("%s: only m8n8 .b16 is simulated", in.op)
		}
		if in.v, err = b.vec(ops[0], "b32", true); err != nil {
			return err
		}
		want := map[bool]int{oi.mods["x1"]: 1, oi.mods["x2"]: 2, oi.mods["x4"]: 4}[true]
		if want == 0 || len(in.v) != want {
			return b.errf("%s: %d destination registers", in.op, len(in.v))
		}
		a, err := b.addr(ops[1])
		if err != nil {
			return err
		}
		in.a, in.off, in.m = a.base, a.off, int32(oi.space())
		if oi.mods["trans"] {
			in.n = 1
		}
		in.fn, in.coll = opParkWarp, collLdmatrix
	case "mma":
		return b.mma(&in, oi, ops)
	default:
		return b.errf("instruction %s is not simulated", in.op)
	}
	b.emit(in)
	return nil
}

// arith decodes the integer and float arithmetic instructions.
func (b *builder) arith(in *inst, oi opInfo, ops [][]string) error {
	t := oi.typ(0)
	var err error
	if len(ops) < 2 {
		return b.errf("%s: too few operands", in.op)
	}
	if in.d, err = b.dst(ops[0]); err != nil {
		return err
	}
	srcT := t
	wide := oi.mods["wide"]
	nsrc := len(ops) - 1
	slots := []*int32{&in.a, &in.b, &in.c}
	if nsrc > 3 {
		return b.errf("%s: too many operands", in.op)
	}
	for i := 0; i < nsrc; i++ {
		st := srcT
		if (oi.base == "shl" || oi.base == "shr") && i == 1 {
			st = "u32"
		}
		if wide && (oi.base == "mad") && i == 2 {
			st = wideType(t)
		}
		if *slots[i], err = b.src(ops[i+1], st); err != nil {
			return err
		}
	}
	in.mask, in.w = typeMask(t), uint8(typeSize(t)*8)
	if t == "pred" {
		in.w = 1
	}
	if t == "f32" || t == "f64" {
		return b.floatArith(in, oi, nsrc)
	}
	if t == "f16" || t == "f16x2" || t == "bf16" || t == "bf16x2" {
		return b.errf("%s: half-precision arithmetic is not simulated", in.op)
	}
	signed := t != "" && t[0] == 's'
	switch oi.base {
	case "add":
		in.fn = opAdd
		if oi.mods["sat"] || oi.mods["cc"] {
			return b.errf("%s is not simulated", in.op)
		}
		if t == "s32" || t == "u32" || t == "b32" {
			in.fn = opAdd32
		} else if in.w == 64 {
			in.fn = opAdd64
		}
	case "sub":
		in.fn = opSub
	case "mul", "mad":
		hi, lo := oi.mods["hi"], oi.mods["lo"]
		if oi.mods["sat"] || oi.mods["cc"] || oi.mods["mul24"] {
			return b.errf("%s is not simulated", in.op)
		}
		switch {
		case wide:
			if in.w > 32 {
				return b.errf("%s: .wide needs a 16- or 32-bit type", in.op)
			}
			in.mask = typeMask(wideType(t))
			in.fn = pick(oi.base == "mul", pick(signed, opMulWideS, opMulWideU), pick(signed, opMadWideS, opMadWideU))
		case hi:
			in.fn = pick(oi.base == "mul", pick(signed, opMulHiS, opMulHiU), pick(signed, opMadHiS, opMadHiU))
		case lo || true:
			in.fn = pick(oi.base == "mul", opMulLo, opMadLo)
		}
	case "div":
		in.fn = pick(signed, opDivS, opDivU)
	case "rem":
		in.fn = pick(signed, opRemS, opRemU)
	case "min":
		in.fn = pick(signed, opMinS, opMinU)
	case "max":
		in.fn = pick(signed, opMaxS, opMaxU)
	case "abs":
		in.fn = opAbsS
	case "neg":
		in.fn = opNeg
	case "not":
		in.fn = opNot
	case "cnot":
		in.fn = opCnot
	case "and":
		in.fn = opAnd
	case "or":
		in.fn = opOr
	case "xor":
		in.fn = opXor
	case "shl":
		in.fn = opShl
	case "shr":
		in.fn = pick(signed, opShrS, opShrU)
	case "popc":
		in.fn = opPopc
	case "clz":
		in.fn = opClz
	case "brev":
		in.fn = opBrev
	default:
		return b.errf("%s: not an integer instruction", in.op)
	}
	if oi.base == "popc" || oi.base == "clz" {
		in.mask, in.w = typeMask(t), uint8(typeSize(t)*8)
	}
	b.emit(*in)
	return nil
}

func pick[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}

func wideType(t string) string {
	switch t {
	case "s16":
		return "s32"
	case "u16":
		return "u32"
	case "s32":
		return "s64"
	case "u32":
		return "u64"
	}
	return t
}

func (b *builder) floatArith(in *inst, oi opInfo, nsrc int) error {
	t := oi.typ(0)
	ftz, sat := oi.mods["ftz"], oi.mods["sat"]
	mode := oi.mode()
	if t == "f32" {
		if !ftz && !sat && mode == rn {
			switch oi.base {
			case "add":
				in.fn = opAddF32
			case "sub":
				in.fn = opSubF32
			case "mul":
				in.fn = opMulF32
			case "fma":
				in.fn = opFmaF32
			case "neg":
				in.fn = opNegF32
			case "abs":
				in.fn = opAbsF32
			}
		}
		if in.fn == nil {
			f, n := f32Func(oi.base, mode)
			if f == nil {
				return b.errf("%s is not simulated", in.op)
			}
			if oi.mods["NaN"] {
				if oi.base != "min" && oi.base != "max" {
					return b.errf("%s: .NaN is for min and max", in.op)
				}
				f = nanMinMax(f)
			}
			if n != nsrc {
				return b.errf("%s: %d sources, expected %d", in.op, nsrc, n)
			}
			in.fn = f32Op(n, f, ftz, sat)
		}
	} else {
		if mode != rn || oi.mods["NaN"] {
			return b.errf("%s: directed rounding and .NaN of f64 are not simulated", in.op)
		}
		switch oi.base {
		case "neg":
			in.fn = opNegF64
		case "abs":
			in.fn = opAbsF64
		default:
			f, n := f64Func(oi.base)
			if f == nil {
				return b.errf("%s is not simulated", in.op)
			}
			if n != nsrc {
				return b.errf("%s: %d sources, expected %d", in.op, nsrc, n)
			}
			in.fn = f64Op(n, f, ftz, sat)
		}
	}
	b.emit(*in)
	return nil
}

// setp.cmp[.bool][.ftz].type p[|q], a, b[, [!]c]
func (b *builder) setp(in *inst, oi opInfo, ops [][]string) error {
	t := oi.typ(0)
	var err error
	if len(ops) != 3 && len(ops) != 4 {
		return b.errf("%s: %d operands", in.op, len(ops))
	}
	d := ops[0]
	if len(d) == 3 && d[1] == "|" {
		s, ok := b.lookup(d[2])
		if !ok || s.kind != symReg {
			return b.errf("bad predicate %s", d[2])
		}
		in.d2 = s.slot
		d = d[:1]
	}
	if in.d, err = b.dst(d); err != nil {
		return err
	}
	if in.a, err = b.src(ops[1], t); err != nil {
		return err
	}
	if in.b, err = b.src(ops[2], t); err != nil {
		return err
	}
	cmp := -1
	for m := range oi.mods {
		if c, ok := cmpCodes[m]; ok {
			cmp = c
		}
		switch m {
		case "and":
			in.n = 1
		case "or":
			in.n = 2
		case "xor":
			in.n = 3
		}
	}
	if cmp < 0 {
		return b.errf("%s: no comparison", in.op)
	}
	in.m = int32(cmp)
	if len(ops) == 4 {
		c := ops[3]
		if c[0] == "!" {
			in.off = 1
			c = c[1:]
		}
		if in.c, err = b.src(c, "pred"); err != nil {
			return err
		}
		if in.n == 0 {
			return b.errf("%s: predicate c without a boolean operation", in.op)
		}
	}
	in.mask, in.w = typeMask(t), uint8(typeSize(t)*8)
	switch {
	case t == "f32" && oi.mods["ftz"]:
		in.fn = opSetpF32Ftz
	case t == "f32":
		in.fn = opSetpF32
	case t == "f64":
		in.fn = opSetpF64
	case t[0] == 's':
		in.fn = opSetpS
		if t == "s32" && cmp == cmpLt && in.n == 0 {
			in.fn = opSetpLtS32
		}
	case t[0] == 'u' || t[0] == 'b':
		in.fn = opSetpU
	default:
		return b.errf("%s: type %s not simulated", in.op, t)
	}
	b.emit(*in)
	return nil
}

// cvt[.rnd][.ftz][.sat].dtype.atype d, a (cvt.rn.bf16x2.f32 d, a, b).
func (b *builder) cvt(in *inst, oi opInfo, ops [][]string) error {
	var err error
	dt, st := oi.typ(0), oi.typ(1)
	if in.d, err = b.dst(ops[0]); err != nil {
		return err
	}
	if dt == "bf16x2" || dt == "f16x2" {
		if len(ops) != 3 || st != "f32" || oi.mode() != rn {
			return b.errf("%s: only cvt.rn.%s.f32 d, a, b is simulated", in.op, dt)
		}
		if in.a, err = b.src(ops[1], "f32"); err != nil {
			return err
		}
		if in.b, err = b.src(ops[2], "f32"); err != nil {
			return err
		}
		in.fn = pick(dt == "bf16x2", opCvtBF16x2, opCvtF16x2)
		b.emit(*in)
		return nil
	}
	if len(ops) != 2 || dt == "" || st == "" {
		return b.errf("%s: expected cvt.dtype.atype d, a", in.op)
	}
	if in.a, err = b.src(ops[1], st); err != nil {
		return err
	}
	irnd := -1
	for _, m := range []string{"rni", "rzi", "rmi", "rpi"} {
		if oi.mods[m] {
			irnd = oi.mode()
		}
	}
	frnd := rn
	if irnd < 0 {
		frnd = oi.mode()
	}
	switch {
	case dt == "u32" && (st == "u64" || st == "s64" || st == "b64") && !oi.mods["sat"]:
		in.fn = opCvtU32U64
	case dt == "s64" && st == "s32" && !oi.mods["sat"]:
		in.fn = opCvtS64S32
	default:
		f, err := cvtFunc(dt, st, frnd, irnd, oi.mods["sat"], oi.mods["ftz"])
		if err != nil {
			return b.errf("%s: %v", in.op, err)
		}
		in.fn = cvtHandler(f)
		// A signed result narrower than its register is sign-extended
		// to the register's width.
		if w := b.widths[in.d]; dt[0] == 's' && w > typeSize(dt)*8 {
			n := uint8(typeSize(dt) * 8)
			rm := typeMask(map[int]string{16: "b16", 32: "b32", 64: "b64"}[w])
			in.fn = cvtHandler(func(v uint64) uint64 { return uint64(sx(f(v), n)) & rm })
		}
	}
	b.emit(*in)
	return nil
}

// ld/st[.space][.nc][.vN].type
func (b *builder) ldst(in *inst, oi opInfo, ops [][]string) error {
	var err error
	if len(ops) != 2 {
		return b.errf("%s: %d operands", in.op, len(ops))
	}
	t := oi.typ(0)
	size := typeSize(t)
	if size == 0 {
		return b.errf("%s: no type", in.op)
	}
	isLd := oi.base != "st"
	regOp, addrOp := ops[0], ops[1]
	if !isLd {
		regOp, addrOp = ops[1], ops[0]
	}
	a, err := b.addr(addrOp)
	if err != nil {
		return err
	}
	in.a, in.off, in.n = a.base, a.off, int32(size)
	in.m = int32(oi.space())
	switch a.space {
	case symKParam:
		in.m = spKParam
		if !isLd {
			return b.errf("%s: kernel parameters are read-only", in.op)
		}
	case symTParam:
		in.m = spTParam
	default:
		if in.m == spKParam {
			// ld.param through a register: kernel parameter space
			in.m = spKParam
		}
	}
	if regOp[0] == "{" {
		in.v, err = b.vec(regOp, t, isLd)
	} else if isLd {
		var d int32
		d, err = b.dst(regOp)
		in.v = []int32{d}
	} else {
		var s int32
		s, err = b.src(regOp, t)
		in.v = []int32{s}
	}
	if err != nil {
		return err
	}
	if isLd && t[0] == 's' && size < 8 {
		// sign-extend to the destination register's width
		w := b.widths[in.v[0]]
		if w == 0 {
			w = 64
		}
		in.w = uint8(size * 8)
		in.mask = typeMask(map[int]string{8: "b8", 16: "b16", 32: "b32", 64: "b64"}[w])
	}
	in.fn = pick(isLd, handler(opLd), handler(opSt))
	if len(in.v) == 1 && size == 4 && in.w == 0 {
		switch {
		case isLd && in.m == spShared:
			in.d, in.fn = in.v[0], opLdShared32
		case isLd && in.m == spGlobal:
			in.d, in.fn = in.v[0], opLdGlobal32
		case !isLd && in.m == spGlobal:
			in.d, in.fn = in.v[0], opStGlobal32
		}
	}
	b.emit(*in)
	return nil
}

// atom[.space].op.type d, [a], b[, c]; red[.space].op.type [a], b.
func (b *builder) atom(in *inst, oi opInfo, ops [][]string) error {
	var err error
	t := oi.typ(0)
	in.n = int32(typeSize(t))
	in.tk = t[0]
	if t == "f32" || t == "f64" {
		in.tk = 'f'
	}
	ops0 := ops
	if oi.base == "atom" {
		if in.d, err = b.dst(ops[0]); err != nil {
			return err
		}
		ops0 = ops[1:]
	} else {
		in.d = slotSink
	}
	if len(ops0) < 2 {
		return b.errf("%s: too few operands", in.op)
	}
	a, err := b.addr(ops0[0])
	if err != nil {
		return err
	}
	in.a, in.off = a.base, a.off
	in.m = int32(oi.space())
	if in.m == spKParam {
		return b.errf("%s: atomics on .param", in.op)
	}
	if in.b, err = b.src(ops0[1], t); err != nil {
		return err
	}
	in.c = slotZero
	if len(ops0) > 2 {
		if in.c, err = b.src(ops0[2], t); err != nil {
			return err
		}
	}
	codes := map[string]int32{"add": atomAdd, "min": atomMin, "max": atomMax, "exch": atomExch, "cas": atomCas,
		"and": atomAnd, "or": atomOr, "xor": atomXor, "inc": atomInc, "dec": atomDec}
	in.e = -1
	for m := range oi.mods {
		if c, ok := codes[m]; ok {
			in.e = c
		}
	}
	if in.e < 0 {
		return b.errf("%s: no atomic operation", in.op)
	}
	if in.tk == 'f' && in.e != atomAdd && in.e != atomExch && in.e != atomMin && in.e != atomMax {
		return b.errf("%s is not simulated", in.op)
	}
	if in.m == spGeneric {
		in.m = spGlobal // generic atomics on device memory
	}
	in.fn = opAtom
	// in.e holds the op for opAtom; the memberMask reader never sees atoms.
	b.emit(*in)
	return nil
}

// cp.async.{ca,cg}.shared.global [d], [s], size[, srcsize];
// cp.async.commit_group; cp.async.wait_group n; cp.async.wait_all.
func (b *builder) cpAsync(in *inst, oi opInfo, ops [][]string) error {
	var err error
	switch {
	case oi.mods["commit_group"]:
		in.fn = opCpCommit
	case oi.mods["wait_group"]:
		if len(ops) != 1 {
			return b.errf("%s: expected a group count", in.op)
		}
		if in.a, err = b.src(ops[0], "u32"); err != nil {
			return err
		}
		in.fn = opCpWait
	case oi.mods["wait_all"]:
		in.fn = opCpWaitAll
	case oi.mods["async"] && oi.mods["shared"] && oi.mods["global"]:
		if len(ops) != 3 && len(ops) != 4 {
			return b.errf("%s: %d operands", in.op, len(ops))
		}
		d, err := b.addr(ops[0])
		if err != nil {
			return err
		}
		s, err := b.addr(ops[1])
		if err != nil {
			return err
		}
		if len(ops[2]) != 1 {
			return b.errf("%s: bad copy size", in.op)
		}
		n, ok := parseInt(ops[2][0])
		if !ok || (n != 4 && n != 8 && n != 16) || (oi.mods["cg"] && n != 16) {
			return b.errf("%s: copy size %s (4, 8 or 16; .cg takes 16)", in.op, ops[2][0])
		}
		in.a, in.off, in.b, in.off2, in.n = d.base, d.off, s.base, s.off, int32(n)
		if len(ops) == 4 {
			if in.c, err = b.src(ops[3], "u32"); err != nil {
				return err
			}
		}
		in.fn = opCpAsync
	default:
		return b.errf("%s is not simulated", in.op)
	}
	b.emit(*in)
	return nil
}

// call[.uni] [(ret),] func, (args);
func (b *builder) call(in *inst, ops [][]string) error {
	var rets, args []string
	i := 0
	if i < len(ops) && ops[i][0] == "(" {
		if len(ops) > 1 {
			rets = parenNames(ops[i])
			i++
		}
	}
	if i >= len(ops) {
		return b.errf("call without a target")
	}
	target := ops[i][0]
	i++
	if i < len(ops) {
		args = parenNames(ops[i])
	}
	f := b.m.funcs[target]
	if f == nil || f.entry {
		return b.errf("call of unknown function %s", target)
	}
	if len(args) != len(f.params) || len(rets) != len(f.rets) {
		return b.errf("call of %s with %d arguments and %d results, it takes %d and %d", target, len(args), len(rets), len(f.params), len(f.rets))
	}
	ci := &callInfo{target: target}
	fp := b.fpar[target]
	for j, a := range args {
		s, ok := b.lookup(a)
		if !ok || s.kind != symTParam {
			return b.errf("call argument %s is not a .param variable", a)
		}
		ci.args = append(ci.args, pcopy{from: int(s.off), to: int(fp[j].off), n: min(s.width, fp[j].width)})
	}
	for j, r := range rets {
		s, ok := b.lookup(r)
		if !ok || s.kind != symTParam {
			return b.errf("call result %s is not a .param variable", r)
		}
		c := fp[len(f.params)+j]
		ci.rets = append(ci.rets, pcopy{from: int(c.off), to: int(s.off), n: min(s.width, c.width)})
	}
	b.calls = append(b.calls, ci)
	in.call = ci
	in.fn = opCall
	b.emit(*in)
	return nil
}

func parenNames(op []string) []string {
	var out []string
	for _, t := range op {
		if t != "(" && t != ")" && t != "," {
			out = append(out, t)
		}
	}
	return out
}

// mma.sync.aligned.m16n8k{8,16}.row.col.f32.{bf16,f16}.{bf16,f16}.f32 d, a, b, c
func (b *builder) mma(in *inst, oi opInfo, ops [][]string) error {
	if len(ops) != 4 {
		return b.errf("%s: %d operands", in.op, len(ops))
	}
	k := 0
	switch {
	case oi.mods["m16n8k16"]:
		k = 16
	case oi.mods["m16n8k8"]:
		k = 8
	}
	ab := oi.typ(1)
	if k == 0 || !oi.mods["row"] || !oi.mods["col"] || oi.typ(0) != "f32" || oi.typ(3) != "f32" ||
		(ab != "bf16" && ab != "f16") || oi.typ(2) != ab {
		return b.errf("%s: only mma.sync.aligned.m16n8k{8,16}.row.col.f32.{bf16,f16}.{bf16,f16}.f32 is simulated", in.op)
	}
	var all []int32
	wants := []int{4, k / 4, k / 8, 4}
	for i, op := range ops {
		v, err := b.vec(op, pick(i == 0 || i == 3, "f32", "b32"), i == 0)
		if err != nil {
			return err
		}
		if len(v) != wants[i] {
			return b.errf("%s: operand %d has %d registers, expected %d", in.op, i, len(v), wants[i])
		}
		all = append(all, v...)
	}
	in.v, in.n = all, int32(k)
	if ab == "f16" {
		in.m = 1
	}
	in.fn, in.coll = opParkWarp, collMma
	b.emit(*in)
	return nil
}
