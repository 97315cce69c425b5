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
	in := inst{guard: -1, e: -1, d2: -1, c: -1, instX: &instX{}}
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
		case oi.mods["param"]:
			in.off = paramWindow
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
		if oi.mods["bulk"] {
			return b.tma(&in, oi, ops)
		}
		return b.cpAsync(&in, oi, ops)
	case "mbarrier":
		return b.mbarrier(&in, oi, ops)
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
	case "wgmma":
		return b.wgmma(&in, oi, ops)
	default:
		return b.errf("instruction %s is not simulated", in.op)
	}
	b.emit(in)
	return nil
}
