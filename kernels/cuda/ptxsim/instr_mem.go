package ptxsim

// Decoding of memory, call and tensor-core instructions.

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
