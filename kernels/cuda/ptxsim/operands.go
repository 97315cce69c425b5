package ptxsim

import (
	"math"
	"strconv"
	"strings"
)

// operand kinds for immediates
type kind int

const (
	kInt kind = iota
	kF32
	kF64
)

// typeMask is the register bits an operand of type t occupies.
func typeMask(t string) uint64 {
	switch typeSize(t) {
	case 1:
		if t == "pred" {
			return 1
		}
		return 0xFF
	case 2:
		return 0xFFFF
	case 4:
		return 0xFFFFFFFF
	}
	return ^uint64(0)
}

func typeKind(t string) kind {
	switch t {
	case "f32":
		return kF32
	case "f64":
		return kF64
	}
	return kInt
}

// src decodes a source operand into a slot.
func (b *builder) src(op []string, typ string) (int32, error) {
	k := typeKind(typ)
	if len(op) == 2 && op[0] == "-" {
		v, err := b.imm(op[1], k, true)
		if err != nil {
			return 0, err
		}
		return b.constSlot(v & typeMask(typ)), nil
	}
	if len(op) != 1 {
		return 0, b.errf("bad operand %q", strings.Join(op, " "))
	}
	name := op[0]
	if s, ok := specialSlots[name]; ok {
		return s, nil
	}
	if name == "_" {
		return slotSink, nil
	}
	if s, ok := b.lookup(name); ok {
		switch s.kind {
		case symReg:
			return s.slot, nil
		case symShared, symLocal, symGlobal, symKParam:
			// a kernel parameter's address is its offset in the
			// parameter space (cvta.param makes it generic)
			return b.constSlot(s.off), nil
		}
		return 0, b.errf("operand %s: the address of a function's .param variable is not supported", name)
	}
	if c := name[0]; c >= '0' && c <= '9' {
		v, err := b.imm(name, k, false)
		if err != nil {
			return 0, err
		}
		return b.constSlot(v & typeMask(typ)), nil
	}
	return 0, b.errf("unknown operand %s", name)
}

// imm converts a literal to register bits for an operand of kind k.
func (b *builder) imm(s string, k kind, neg bool) (uint64, error) {
	if bits, n, ok := parseFloatBits(s); ok {
		f := 0.0
		if n == 4 {
			f = float64(math.Float32frombits(uint32(bits)))
		} else {
			f = math.Float64frombits(bits)
		}
		if neg {
			f = -f
		}
		switch {
		case k == kF32 && n == 4 && !neg:
			return bits, nil
		case k == kF64 && n == 8 && !neg:
			return bits, nil
		case k == kF32:
			return uint64(math.Float32bits(float32(f))), nil
		case k == kF64:
			return math.Float64bits(f), nil
		}
		return bits, nil
	}
	if v, ok := parseInt(s); ok {
		if neg {
			v = -v
		}
		switch k {
		case kF32:
			return uint64(math.Float32bits(float32(v))), nil
		case kF64:
			return math.Float64bits(float64(v)), nil
		}
		return uint64(v), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if neg {
			f = -f
		}
		switch k {
		case kF32:
			return uint64(math.Float32bits(float32(f))), nil
		case kF64:
			return math.Float64bits(f), nil
		}
	}
	return 0, b.errf("bad immediate %q", s)
}

// dst decodes a destination register.
func (b *builder) dst(op []string) (int32, error) {
	if len(op) == 1 && op[0] == "_" {
		return slotSink, nil
	}
	if len(op) == 1 {
		if s, ok := b.lookup(op[0]); ok && s.kind == symReg {
			return s.slot, nil
		}
	}
	return 0, b.errf("bad destination %q", strings.Join(op, " "))
}

// vec decodes "{%a, %b, ...}".
func (b *builder) vec(op []string, typ string, isDst bool) ([]int32, error) {
	if len(op) < 3 || op[0] != "{" || op[len(op)-1] != "}" {
		return nil, b.errf("expected a vector operand, got %q", strings.Join(op, " "))
	}
	var out []int32
	for _, e := range splitOperands(op[1 : len(op)-1]) {
		var s int32
		var err error
		if isDst {
			s, err = b.dst(e)
		} else {
			s, err = b.src(e, typ)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// address is a decoded [base+offset].
type address struct {
	base  int32
	off   uint64
	space int // symKParam, symTParam for .param symbols; symReg otherwise
}

func (b *builder) addr(op []string) (address, error) {
	bad := func() (address, error) {
		return address{}, b.errf("bad address %q", strings.Join(op, ""))
	}
	if len(op) < 3 || op[0] != "[" || op[len(op)-1] != "]" {
		return bad()
	}
	in := op[1 : len(op)-1]
	a := address{base: slotZero, space: symReg}
	var off int64
	if len(in) >= 3 && in[len(in)-2] == "+" || len(in) >= 4 && in[len(in)-3] == "+" && in[len(in)-2] == "-" || len(in) >= 3 && in[len(in)-2] == "-" {
		neg := in[len(in)-2] == "-"
		v, ok := parseInt(in[len(in)-1])
		if !ok {
			return bad()
		}
		if neg {
			v = -v
		}
		off = v
		in = in[:len(in)-2]
		if len(in) > 0 && in[len(in)-1] == "+" {
			in = in[:len(in)-1]
		}
	}
	if len(in) != 1 {
		return bad()
	}
	name := in[0]
	if v, ok := parseInt(name); ok {
		a.off = uint64(v + off)
		return a, nil
	}
	if s, ok := specialSlots[name]; ok {
		a.base = s
		a.off = uint64(off)
		return a, nil
	}
	s, ok := b.lookup(name)
	if !ok {
		return address{}, b.errf("unknown symbol %s in address", name)
	}
	switch s.kind {
	case symReg:
		a.base = s.slot
	case symKParam, symTParam:
		a.space = s.kind
		a.off = s.off
	default:
		a.off = s.off
	}
	a.off += uint64(off)
	return a, nil
}
