package ptxsim

// Decoding of arithmetic, comparison and conversion instructions.

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
	case !oi.mods["sat"] && unsignedInt(st) && unsignedInt(dt) && irnd < 0:
		// unsigned integer to unsigned integer: cvtFunc's v & src mask & dst mask
		in.mask = typeMask(st) & typeMask(dt)
		in.fn = opAndMask
	case dt == "f32" && st == "f32" && oi.mods["sat"] && !oi.mods["ftz"] && irnd < 0 && frnd == rn:
		in.fn = opCvtSatF32
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

// unsignedInt says whether t is a .u or .b integer type (not bf16, pred).
func unsignedInt(t string) bool {
	switch t {
	case "u8", "u16", "u32", "u64", "b8", "b16", "b32", "b64":
		return true
	}
	return false
}
