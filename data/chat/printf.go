package chat

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// Gonja evaluates a % b as a.Integer() % b.Integer() whatever the operands:
// "Step %d" % 3 gave 0 ("Step %d" reads as the integer 0) and "a %s b" %
// "hi" a Go panic (integer divide by zero). In Jinja, as in Python, a
// string on the left is printf-style formatting and numbers take the
// modulo whose sign is the divisor's. So % is rewritten like * + ~
// (rewrite.go) into a call of guardedMod, and the format filter, which is
// s % args in Jinja, uses the same formatting instead of Go's Sprintf
// (which wrote "%!r(string=a)" for %r).

// guardedMod is Python's %: formatting when the left side is a string,
// else modulo of two numbers.
func guardedMod(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	return mod(e, params, false)
}

// guardedModTuple is guardedMod with a tuple literal on the right
// ("%s: %s" % (a, b)), whose items are the format's arguments. Gonja
// evaluates tuples and lists to the same type, so only the rewrite, which
// sees the literal, can tell them apart.
func guardedModTuple(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	return mod(e, params, true)
}

func mod(e *exec.Evaluator, params *exec.VarArgs, tuple bool) *exec.Value {
	l, r, err := operands(params)
	if err != nil {
		return exec.AsValue(err)
	}
	if l.IsString() {
		var args printfArgs
		if tuple {
			args = tupleArgs(r)
		} else {
			args = singleArg(r)
		}
		s, err := printf(l.String(), args, budgetOf(e.Environment.Context))
		if err != nil {
			return exec.AsValue(err)
		}
		return exec.AsValue(s)
	}
	v, err := modulo(l, r)
	if err != nil {
		return exec.AsValue(err)
	}
	return v
}

// modulo is Python's number % number: the result has the divisor's sign
// (-7 % 3 is 2), a float operand gives a float, and a zero divisor is an
// error (Python's ZeroDivisionError) where Go panics or gives NaN.
func modulo(l, r *exec.Value) (*exec.Value, error) {
	if !isNumber(l) || !isNumber(r) {
		return nil, fmt.Errorf("unsupported operand types for %%: %s and %s", pyType(l), pyType(r))
	}
	if l.IsFloat() || r.IsFloat() {
		x, y := l.Float(), r.Float()
		if y == 0 {
			return nil, errors.New("float modulo by zero")
		}
		m := math.Mod(x, y)
		switch {
		case m == 0:
			m = math.Copysign(0, y)
		case (m < 0) != (y < 0):
			m += y
		}
		return exec.AsValue(m), nil
	}
	x, y := intOf(l), intOf(r)
	if y == 0 {
		return nil, errors.New("integer modulo by zero")
	}
	m := x % y // MinInt % -1 is 0 in Go, not a panic
	if m != 0 && (m < 0) != (y < 0) {
		m += y
	}
	return exec.AsValue(m), nil
}

// isNumber: int, float or bool (a bool is an int in Python).
func isNumber(v *exec.Value) bool { return v.IsInteger() || v.IsFloat() || v.IsBool() }

func intOf(v *exec.Value) int {
	if v.IsBool() {
		if v.Bool() {
			return 1
		}
		return 0
	}
	return v.Integer()
}

// pyType names a value's type as Python's errors do.
func pyType(v *exec.Value) string {
	switch {
	case v.IsNil():
		return "None"
	case v.IsBool():
		return "bool"
	case v.IsInteger():
		return "int"
	case v.IsFloat():
		return "float"
	case v.IsString():
		return "str"
	case v.IsList():
		return "list"
	case v.IsDict():
		return "dict"
	case v.IsCallable():
		return "function"
	}
	return v.Val.Kind().String()
}

// printfArgs are the right side of str % args as Python sees it: a tuple's
// items, or one value. A mapping (or a list, which Python also checks as
// one) may be left unused, and only a mapping serves %(key)s.
type printfArgs struct {
	items   []*exec.Value
	mapping *exec.Value
	lenient bool // unused arguments are no error
}

func singleArg(v *exec.Value) printfArgs {
	a := printfArgs{items: []*exec.Value{v}, lenient: v.IsDict() || v.IsList()}
	if v.IsDict() {
		a.mapping = v
	}
	return a
}

func tupleArgs(v *exec.Value) printfArgs {
	var items []*exec.Value
	for i := range v.Len() {
		items = append(items, v.Index(i))
	}
	return printfArgs{items: items}
}

// keywordArgs are the format filter's keyword arguments: a mapping.
func keywordArgs(kw map[string]*exec.Value) printfArgs {
	m := make(map[string]any, len(kw))
	for k, v := range kw {
		m[k] = v
	}
	v := exec.AsValue(m)
	return printfArgs{items: []*exec.Value{v}, mapping: v, lenient: true}
}

// printfError is a formatting failure, worded as Python's.
func printfError(format string, args ...any) error {
	return fmt.Errorf("%% formatting: "+format, args...)
}

// printf is Python's format % args: %s %r %a %c, %d %i %u %o %x %X,
// %e %E %f %F %g %G and %%, with a %(key)s mapping key, the flags - + space
// # 0, a width and a precision (either of them * for an argument), and an
// ignored length modifier (h l L). Anything else, or arguments that do not
// fit the format, is an error, as in Python. Widths, precisions and the
// result are checked against the budget before strings are built.
func printf(format string, args printfArgs, b *budget) (string, error) {
	var out strings.Builder
	next := 0
	nextArg := func() (*exec.Value, error) {
		if next >= len(args.items) {
			return nil, printfError("not enough arguments for format string")
		}
		next++
		return args.items[next-1], nil
	}
	emit := func(s string) error {
		if err := b.value(out.Len()+len(s), "% formatting"); err != nil {
			return err
		}
		out.WriteString(s)
		return nil
	}
	for i := 0; i < len(format); {
		j := strings.IndexByte(format[i:], '%')
		if j < 0 {
			if err := emit(format[i:]); err != nil {
				return "", err
			}
			break
		}
		if err := emit(format[i : i+j]); err != nil {
			return "", err
		}
		start := i + j
		i = start + 1
		var spec printfSpec
		var arg *exec.Value
		if i < len(format) && format[i] == '(' {
			if args.mapping == nil {
				return "", printfError("format requires a mapping")
			}
			depth, k := 1, i+1
			for ; k < len(format) && depth > 0; k++ {
				switch format[k] {
				case '(':
					depth++
				case ')':
					depth--
				}
			}
			if depth > 0 {
				return "", printfError("incomplete format key")
			}
			key := format[i+1 : k-1]
			v, ok := args.mapping.GetItem(key)
			if !ok {
				return "", printfError("key %q not found", key)
			}
			arg, i = v, k
		}
		for ; i < len(format) && strings.IndexByte("-+ #0", format[i]) >= 0; i++ {
			spec.flags |= 1 << strings.IndexByte("-+ #0", format[i])
		}
		if i < len(format) && format[i] == '*' {
			n, err := starArg(nextArg, "width")
			if err != nil {
				return "", err
			}
			if n < 0 {
				spec.flags |= flagMinus
				n = -n
			}
			spec.width, i = n, i+1
		} else {
			n, k, err := printfNumber(format, i)
			if err != nil {
				return "", err
			}
			spec.width, i = n, k
		}
		spec.prec = -1
		if i < len(format) && format[i] == '.' {
			i++
			if i < len(format) && format[i] == '*' {
				n, err := starArg(nextArg, "precision")
				if err != nil {
					return "", err
				}
				spec.prec, i = max(n, 0), i+1
			} else {
				n, k, err := printfNumber(format, i)
				if err != nil {
					return "", err
				}
				spec.prec, i = n, k
			}
		}
		if i < len(format) && strings.IndexByte("hlL", format[i]) >= 0 {
			i++
		}
		if i == len(format) {
			return "", printfError("incomplete format")
		}
		c, size := utf8.DecodeRuneInString(format[i:])
		i += size
		if c == '%' {
			if err := emit("%"); err != nil {
				return "", err
			}
			continue
		}
		spec.verb = c
		if !strings.ContainsRune("sracdiuoxXeEfFgG", c) {
			return "", printfError("unsupported format character %q (%#x) at index %d", c, c, utf8.RuneCountInString(format[:i-size]))
		}
		// A width or precision larger than the budget would build a
		// larger string: refused before anything is padded.
		if err := b.value(max(spec.width, spec.prec), "% formatting"); err != nil {
			return "", err
		}
		if arg == nil {
			var err error
			if arg, err = nextArg(); err != nil {
				return "", err
			}
		}
		s, err := spec.format(arg)
		if err != nil {
			return "", err
		}
		if err := emit(s); err != nil {
			return "", err
		}
	}
	if next < len(args.items) && !args.lenient {
		return "", printfError("not all arguments converted during string formatting")
	}
	return out.String(), nil
}

// printfNumber reads the digits of a width or precision at i (none is 0).
func printfNumber(format string, i int) (n, end int, err error) {
	k := i
	for k < len(format) && format[k] >= '0' && format[k] <= '9' {
		k++
	}
	if k == i {
		return 0, k, nil
	}
	n, err = strconv.Atoi(format[i:k])
	if err != nil {
		return 0, k, printfError("width or precision too big")
	}
	return n, k, nil
}

// starArg is the argument a * width or precision takes: an int.
func starArg(nextArg func() (*exec.Value, error), what string) (int, error) {
	v, err := nextArg()
	if err != nil {
		return 0, err
	}
	if !v.IsInteger() && !v.IsBool() {
		return 0, printfError("* wants int for the %s, not %s", what, pyType(v))
	}
	return intOf(v), nil
}

const (
	flagMinus = 1 << iota
	flagPlus
	flagSpace
	flagAlt
	flagZero
)

type printfSpec struct {
	flags int
	width int
	prec  int // -1: none
	verb  rune
}

// format converts one argument and pads it to the width.
func (s printfSpec) format(v *exec.Value) (string, error) {
	switch s.verb {
	case 's', 'r', 'a':
		var str string
		switch s.verb {
		case 's':
			str = pyStr(v)
		case 'r':
			str = pyRepr(v, false)
		default:
			str = pyRepr(v, true)
		}
		if s.prec >= 0 && utf8.RuneCountInString(str) > s.prec {
			str = string([]rune(str)[:s.prec])
		}
		return s.pad("", str, false), nil
	case 'c':
		switch {
		case v.IsString() && utf8.RuneCountInString(v.String()) == 1:
			return s.pad("", v.String(), false), nil
		case v.IsInteger() || v.IsBool():
			n := intOf(v)
			if n < 0 || n > unicode.MaxRune {
				return "", printfError("%%c arg not in range(0x110000)")
			}
			return s.pad("", string(rune(n)), false), nil
		}
		return "", printfError("%%c requires an int or a unicode character, not %s", pyType(v))
	case 'd', 'i', 'u', 'o', 'x', 'X':
		n, err := s.integer(v)
		if err != nil {
			return "", err
		}
		return s.formatInt(n), nil
	default: // e E f F g G
		if !isNumber(v) {
			return "", printfError("%%%c format: a real number is required, not %s", s.verb, pyType(v))
		}
		f := v.Float()
		if v.IsBool() {
			f = float64(intOf(v))
		}
		return s.formatFloat(f), nil
	}
}

// integer is the argument of an integer conversion: an int or a bool, or
// for %d %i %u a float, truncated as Python's int() does.
func (s printfSpec) integer(v *exec.Value) (*big.Int, error) {
	switch {
	case v.IsInteger() || v.IsBool():
		if v.IsInteger() && v.Val.Kind() >= reflect.Uint && v.Val.Kind() <= reflect.Uint64 {
			return new(big.Int).SetUint64(v.Val.Uint()), nil
		}
		return big.NewInt(int64(intOf(v))), nil
	case v.IsFloat() && strings.ContainsRune("diu", s.verb):
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, printfError("cannot convert float %s to integer", v.String())
		}
		n, _ := big.NewFloat(math.Trunc(f)).Int(nil)
		return n, nil
	case strings.ContainsRune("diu", s.verb):
		return nil, printfError("%%%c format: a real number is required, not %s", s.verb, pyType(v))
	}
	return nil, printfError("%%%c format: an integer is required, not %s", s.verb, pyType(v))
}

func (s printfSpec) formatInt(n *big.Int) string {
	base, prefix := 10, ""
	switch s.verb {
	case 'o':
		base, prefix = 8, "0o"
	case 'x':
		base, prefix = 16, "0x"
	case 'X':
		base, prefix = 16, "0X"
	}
	if s.flags&flagAlt == 0 {
		prefix = ""
	}
	digits := new(big.Int).Abs(n).Text(base)
	if s.verb == 'X' {
		digits = strings.ToUpper(digits)
	}
	if len(digits) < s.prec {
		digits = strings.Repeat("0", s.prec-len(digits)) + digits
	}
	return s.pad(s.sign(n.Sign() < 0)+prefix, digits, true)
}

func (s printfSpec) formatFloat(f float64) string {
	neg := math.Signbit(f) && !math.IsNaN(f)
	var body string
	switch {
	case math.IsNaN(f):
		body = "nan"
	case math.IsInf(f, 0):
		body = "inf"
	default:
		prec := s.prec
		if prec < 0 {
			prec = 6
		}
		alt := ""
		if s.flags&flagAlt != 0 {
			alt = "#"
		}
		body = fmt.Sprintf("%"+alt+".*"+string(s.verb), prec, math.Abs(f))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		if s.verb >= 'A' && s.verb <= 'Z' {
			body = strings.ToUpper(body)
		}
		return s.pad(s.sign(neg), body, false) // never zero-padded
	}
	return s.pad(s.sign(neg), body, true)
}

// sign is what goes before a number's digits.
func (s printfSpec) sign(neg bool) string {
	switch {
	case neg:
		return "-"
	case s.flags&flagPlus != 0:
		return "+"
	case s.flags&flagSpace != 0:
		return " "
	}
	return ""
}

// pad justifies prefix+body in the width: left with -, else zeros after
// the prefix with 0 (numbers only), else spaces before.
func (s printfSpec) pad(prefix, body string, numeric bool) string {
	n := utf8.RuneCountInString(prefix) + utf8.RuneCountInString(body)
	if n >= s.width {
		return prefix + body
	}
	fill := s.width - n
	switch {
	case s.flags&flagMinus != 0:
		return prefix + body + strings.Repeat(" ", fill)
	case s.flags&flagZero != 0 && numeric:
		return prefix + strings.Repeat("0", fill) + body
	}
	return strings.Repeat(" ", fill) + prefix + body
}

// pyRepr is Python's repr (ascii: ascii()) for %r and %a: strings quoted
// and escaped, None for a missing value, other values as printed.
func pyRepr(v *exec.Value, ascii bool) string {
	if v.IsNil() {
		return "None"
	}
	if !v.IsString() {
		s := valueRepr(v)
		if ascii {
			return asciiEscape(s)
		}
		return s
	}
	s := v.String()
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\' || r == rune(q):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && r >= 0x20 && r != 0x7f || r >= 0x80 && !ascii && unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			b.WriteString(escapeRune(r))
		}
	}
	b.WriteByte(q)
	return b.String()
}

func asciiEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 {
			b.WriteRune(r)
		} else {
			b.WriteString(escapeRune(r))
		}
	}
	return b.String()
}

// escapeRune is Python's \xhh, \uhhhh or \Uhhhhhhhh.
func escapeRune(r rune) string {
	switch {
	case r < 0x100:
		return fmt.Sprintf(`\x%02x`, r)
	case r < 0x10000:
		return fmt.Sprintf(`\u%04x`, r)
	}
	return fmt.Sprintf(`\U%08x`, r)
}

// formatFilter is Jinja's format filter, s|format(*args) or
// s|format(**kwargs): s % args, formatted as the % operator formats.
func formatFilter(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if len(params.Args) > 0 && len(params.KwArgs) > 0 {
		return exec.AsValue(errors.New("format filter: can't handle positional and keyword arguments at the same time"))
	}
	args := printfArgs{items: params.Args}
	if len(params.KwArgs) > 0 {
		args = keywordArgs(params.KwArgs)
	}
	s, err := printf(in.String(), args, budgetOf(e.Environment.Context))
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsValue(s)
}
