package chat

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"

	"github.com/ftune/ftune/internal/pyfmt"
)

// Values print as Python's str() prints them: None as "None", lists and
// dicts as their repr (strings inside quoted and escaped as repr quotes
// them, None inside as None, a JSON object in its order). gonja printed
// None as "" and strings inside containers raw between quotes: Qwen3
// Coder's template prints a null argument as None, Apriel's prints the
// tool dicts themselves.
//
// gonja has one nil for undefined and None, and Python prints undefined
// as "". So None is marked where it is known to be None: JSON's null, the
// none literal, dict.get of a missing key. It is a typed nil pointer,
// which gonja's IsNil still takes for nil: tests (is none, is defined),
// truth, == and the filters see what they saw. Only printing (each
// {{ }}, ~, |string, |join, soft_str in |trim, %s) tells it from
// undefined.

// pyNoneType is the type of pyNone.
type pyNoneType struct{}

// pyNone is Python's None.
var pyNone *pyNoneType

var pyNoneReflectType = reflect.TypeFor[*pyNoneType]()

// isPyNone says whether v is pyNone.
func isPyNone(v *exec.Value) bool {
	return v != nil && v.Val.IsValid() && v.Val.Type() == pyNoneReflectType
}

// pyStr is str(v) as Jinja prints it: strings as they are, undefined as
// "", everything else as its repr.
func pyStr(v *exec.Value) string {
	switch {
	case v == nil:
		return ""
	case isPyNone(v):
		return "None"
	case v.IsNil():
		return ""
	case v.IsString():
		return v.String()
	}
	var sb strings.Builder
	writeRepr(&sb, v, 0)
	return sb.String()
}

// valueRepr is Python's repr of v (None for gonja's nil).
func valueRepr(v *exec.Value) string {
	var sb strings.Builder
	writeRepr(&sb, v, 0)
	return sb.String()
}

// writeRepr writes Python's repr of v. Values nest at most maxValueDepth
// (valuecheck.go); deeper is cut off as Python's reprlib would not, but
// the check refuses such values before they print.
func writeRepr(sb *strings.Builder, v *exec.Value, depth int) {
	if depth > maxValueDepth {
		sb.WriteString("...")
		return
	}
	if v == nil || v.IsNil() {
		sb.WriteString("None")
		return
	}
	switch x := v.Interface().(type) {
	case *exec.Dict:
		sb.WriteByte('{')
		for i, p := range x.Pairs {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeRepr(sb, p.Key, depth+1)
			sb.WriteString(": ")
			writeRepr(sb, p.Value, depth+1)
		}
		sb.WriteByte('}')
		return
	case *big.Int:
		sb.WriteString(x.String())
		return
	case bool:
		if x {
			sb.WriteString("True")
		} else {
			sb.WriteString("False")
		}
		return
	}
	switch {
	case v.IsString():
		sb.WriteString(pyRepr(v, false))
		return
	case v.IsFloat():
		sb.WriteString(pyFloatStr(v.Float()))
		return
	case v.IsInteger():
		sb.WriteString(v.String())
		return
	}
	rv := reflect.ValueOf(v.Interface())
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			sb.WriteString(v.String())
			return
		}
		sb.WriteByte('[')
		for i := range rv.Len() {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeRepr(sb, exec.ToValue(rv.Index(i)), depth+1)
		}
		sb.WriteByte(']')
		return
	case reflect.Map:
		// A Go map has no order (a message, a namespace): its keys sorted.
		keys := rv.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			return strings.Compare(fmt.Sprint(a.Interface()), fmt.Sprint(b.Interface()))
		})
		sb.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeRepr(sb, exec.ToValue(k), depth+1)
			sb.WriteString(": ")
			writeRepr(sb, exec.ToValue(rv.MapIndex(k)), depth+1)
		}
		sb.WriteByte('}')
		return
	}
	sb.WriteString(v.String())
}

// pyFloatStr is Python's str of a float: repr's digits, inf and nan
// spelled as Python spells them (json.dumps spells them otherwise).
func pyFloatStr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return pyfmt.JSONFloat(f)
}

// printName is the call wrapped around each printed expression.
const printName = "__ftune_print"

// noneName is the call the none literal becomes.
const noneName = "__ftune_none"

// printTable holds a template's printed expressions: {{ x }} becomes
// {{ __ftune_print(i) }}, which evaluates the i-th and prints str() of
// it. The expression is not the call's argument, so that its errors reach
// the render error as they were, not wrapped as the call's.
type printTable struct{ exprs []nodes.Expression }

// call wraps a printed expression; at is where the output starts, for an
// expression without a position.
func (t *printTable) call(expr nodes.Expression, at *nodes.Output) nodes.Expression {
	if expr == nil || t == nil {
		return expr
	}
	pos := expr.Position()
	if pos == nil {
		pos = at.Start
	}
	i := len(t.exprs)
	t.exprs = append(t.exprs, expr)
	return callOf(printName, pos, &nodes.Integer{Location: pos, Val: i})
}

// print is {{ x }}: str(x).
func (t *printTable) print(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	if len(params.Args) != 1 || !params.Args[0].IsInteger() || params.Args[0].Integer() < 0 || params.Args[0].Integer() >= len(t.exprs) {
		return exec.AsValue(fmt.Errorf("%s: bad arguments", printName))
	}
	v := e.Eval(t.exprs[params.Args[0].Integer()])
	if v.IsString() || v.IsError() {
		return v
	}
	return exec.AsValue(pyStr(v))
}

// pyStringFilter is Jinja's string filter: str(x), undefined "".
func pyStringFilter(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if err := params.Take(); err != nil {
		return exec.AsValue(exec.ErrInvalidCall(err))
	}
	if in.IsString() {
		return in
	}
	return exec.AsValue(pyStr(in))
}

// strItems gives a list's items as Jinja's join makes them (soft_str
// of each: undefined "", None "None", a list its repr), for gonja's join,
// which printed undefined as "None" and lists inside raw; other values as
// they are.
func strItems(in *exec.Value) *exec.Value {
	if !in.IsList() {
		return in
	}
	out := make([]any, in.Len())
	for i := range out {
		item := in.Index(i)
		if item.IsString() {
			out[i] = item.Interface()
			continue
		}
		out[i] = pyStr(item)
	}
	return exec.AsValue(out)
}
