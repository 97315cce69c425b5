package chat

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"unsafe"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// The operators that can build a large string from small ones ('x' *
// 100000000, s ~ s) are evaluated by gonja itself, with no hook. So the
// parsed template is rewritten once, when compiled: each such operator
// becomes a call of a guarded function with gonja's own semantics plus a
// size check made before the string is built. % is rewritten too, for
// Python's semantics where gonja's are wrong (printf.go).
var guardedOperators = map[tokens.Type]string{
	tokens.Multiply: "__ftune_mul",
	tokens.Addition: "__ftune_add",
	tokens.Tilde:    "__ftune_concat",
	tokens.Modulo:   "__ftune_mod",
}

// modTupleName is the call of a % whose right side is a tuple literal.
const modTupleName = "__ftune_mod_tuple"

// operatorFunctions are the functions the rewritten calls reach.
var operatorFunctions = map[string]any{
	"__ftune_mul":    guardedMul,
	"__ftune_add":    guardedAdd,
	"__ftune_concat": guardedConcat,
	"__ftune_mod":    guardedMod,
	modTupleName:     guardedModTuple,
	checkedValueName: checkedValue,
	getItemName:      pyGetItem,
	dictKwName:       dictWithKeywords,
	emptyDictName:    func(*exec.Evaluator, *exec.VarArgs) *exec.Value { return exec.AsValue(emptyDict()) },
	noneName:         func(*exec.Evaluator, *exec.VarArgs) *exec.Value { return exec.AsValue(pyNone) },
}

// emptyDictName is the call a {} literal becomes.
const emptyDictName = "__ftune_empty_dict"

// emptyDict is Python's {} as templates see it: an empty Go map. gonja
// takes every *exec.Dict (a struct) for true, where Python takes an empty
// dict for false ({% if tool.parameters.properties %} in gpt-oss's and
// Apertus's templates, {% if {} %}); an empty map is false in gonja, and
// with no keys there is no order for *exec.Dict to keep. JSON's {} and
// dict() are one too.
func emptyDict() map[string]any { return map[string]any{} }

// getItemName is the call x[key] becomes: gonja's subscript misses the
// first item for the negative index of the whole length (x[-1] of a
// one-item list is undefined: "Can't use Getitem on None" for
// messages[-1].role on one message, and Mistral Nemo's template leaves its
// tools out of a conversation with one user message), and indexes a
// string by bytes where Python takes characters.
const getItemName = "__ftune_getitem"

// pyGetItem is x[key] with Python's indexes: negative ones count from the
// end, strings by character, out of range is undefined (Jinja's getitem
// turns the IndexError into Undefined). Anything else is gonja's own
// subscript: the item, else the attribute of that name.
func pyGetItem(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	target, key, err := operands(params)
	if err != nil {
		return exec.AsValue(err)
	}
	if target.IsError() {
		return target
	}
	if key.IsInteger() && (target.IsList() || target.IsString()) {
		i := key.Integer()
		if target.IsString() {
			r := []rune(target.String())
			if i < 0 {
				i += len(r)
			}
			if i < 0 || i >= len(r) {
				return exec.AsValue(nil)
			}
			return exec.AsValue(string(r[i]))
		}
		if i < 0 {
			i += target.Len()
		}
		if i < 0 || i >= target.Len() {
			return exec.AsValue(nil)
		}
		return target.Index(i)
	}
	if item, found, ok := dictItem(target, key); ok {
		if !found {
			return exec.AsValue(nil)
		}
		return item
	}
	var k any
	switch {
	case key.IsString():
		k = key.String()
	case key.IsInteger():
		k = key.Integer()
	case key.IsNil():
		return exec.AsValue(nil)
	default:
		return exec.AsValue(fmt.Errorf("subscript %s does not evaluate to a string or an integer", key.String()))
	}
	item, found := target.GetItem(k)
	if !found && key.IsString() {
		item, found = target.GetAttribute(key.String())
	}
	if !found {
		if item.IsError() {
			return item
		}
		return exec.AsValue(nil)
	}
	return item
}

// dictItem is d[key] of a dict for a key that is not a string (ok false
// for a string key or a target that is no dict: gonja's GetItem serves
// those): Python's dicts take any hashable key ({16384: ...} in
// ByteDance Seed-OSS's template), where gonja's refused an integer. A key
// matches by Python's ==, 1 and 1.0 and True alike.
func dictItem(target, key *exec.Value) (*exec.Value, bool, bool) {
	if key.IsString() || key.IsNil() {
		return nil, false, false
	}
	return dictLookup(target, key)
}

// dictLookup finds key in a dict (*exec.Dict or Go map) by Python's ==;
// ok is false when target is no dict.
func dictLookup(target, key *exec.Value) (*exec.Value, bool, bool) {
	if !target.IsDict() {
		return nil, false, false
	}
	if d, ok := target.Interface().(*exec.Dict); ok {
		for _, p := range d.Pairs {
			if pyEqualKey(p.Key, key) {
				return p.Value, true, true
			}
		}
		return nil, false, true
	}
	rv := reflect.ValueOf(target.Interface())
	if rv.Kind() != reflect.Map {
		return nil, false, false
	}
	for it := rv.MapRange(); it.Next(); {
		if pyEqualKey(exec.ToValue(it.Key()), key) {
			return exec.ToValue(it.Value()), true, true
		}
	}
	return nil, false, true
}

// pyEqualKey is == between two dict keys, bools as the integers Python
// takes them for.
func pyEqualKey(a, b *exec.Value) bool {
	asNumber := func(v *exec.Value) *exec.Value {
		if v.IsBool() {
			if v.Bool() {
				return exec.AsValue(1)
			}
			return exec.AsValue(0)
		}
		return v
	}
	a, b = asNumber(a), asNumber(b)
	if a.IsString() != b.IsString() {
		return false
	}
	return a.EqualValueTo(b)
}

var (
	expressionType = reflect.TypeFor[nodes.Expression]()
	nodeType       = reflect.TypeFor[nodes.Node]()
	setType        = reflect.TypeFor[controlStructures.SetControlStructure]()
	guardedSetType = reflect.TypeFor[guardedSet]()
)

// rewriteOperators replaces the guarded binary operators everywhere in
// the tree under root. Gonja keeps some expressions in unexported fields
// of its control structures ({% set x = a * b %}), which are reached
// through their addresses: the tree was built by this compilation and is
// not shared.
func rewriteOperators(root any, prints *printTable) {
	seen := map[uintptr]bool{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Pointer:
			if v.IsNil() || seen[v.Pointer()] {
				return
			}
			seen[v.Pointer()] = true
			walk(v.Elem())
			if o, ok := v.Interface().(*nodes.Output); ok {
				// {{ x }} prints str(x) (pyprint.go).
				o.Expression = prints.call(o.Expression, o)
				o.Alternative = prints.call(o.Alternative, o)
			}
		case reflect.Struct:
			for i := range v.NumField() {
				f := v.Field(i)
				if !f.CanSet() && f.CanAddr() {
					f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
				}
				if (v.Type() == setType || v.Type() == guardedSetType) && v.Type().Field(i).Name == "target" {
					walk(f) // {% set ns['n'] = ... %} assigns: its subscript stays one
					continue
				}
				visitSlot(f, func(nv reflect.Value) { f.Set(nv) }, walk)
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				e := v.Index(i)
				visitSlot(e, func(nv reflect.Value) { e.Set(nv) }, walk)
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				k, e := it.Key(), it.Value()
				visitSlot(e, func(nv reflect.Value) { v.SetMapIndex(k, nv) }, walk)
			}
		}
	}
	walk(reflect.ValueOf(root))
}

// visitSlot walks what a field, element or map value holds, then replaces
// it when it is a guarded operator, a subscript (pyGetItem), a literal
// that can repeat a value (checkedValue), {} (emptyDict), None (pyNone)
// or dict() with keywords (orderedDictCall),
// and the slot can hold a call; a method call without its receiver gets
// it.
func visitSlot(slot reflect.Value, set func(reflect.Value), walk func(reflect.Value)) {
	walk(slot)
	if slot.Kind() != reflect.Interface || slot.IsNil() {
		return
	}
	var call *nodes.Call
	switch x := slot.Elem().Interface().(type) {
	case *nodes.BinaryExpression:
		if x.Operator == nil || x.Operator.Token == nil {
			return
		}
		name, ok := guardedOperators[x.Operator.Token.Type]
		if !ok {
			return
		}
		if isTuple(x.Right) && x.Operator.Token.Type == tokens.Modulo {
			name = modTupleName
		}
		call = callOf(name, x.Operator.Token, x.Left, x.Right)
	case *nodes.GetItem:
		target, ok := x.Node.(nodes.Expression)
		key, kok := x.Arg.(nodes.Expression)
		if !ok || !kok {
			return
		}
		call = callOf(getItemName, x.Location, target, key)
	case *nodes.Call:
		// (x|trim).replace(...): gonja's parser gives a method call on a
		// parenthesized expression no receiver, and the call then fails
		// as "not callable" (Nemotron Nano v2's template); the receiver
		// is the attribute's object, as x.replace(...) has it.
		if g, ok := x.Func.(*nodes.GetAttribute); ok && x.Parent == nil && g.Attribute != "" {
			x.Parent = g.Node
		}
		if call = orderedDictCall(x); call == nil { // dict(b=1, a=2): pydict.go
			return
		}
	case *nodes.None:
		call = callOf(noneName, x.Location) // Python's None, not undefined (pyprint.go)
	case *nodes.Name:
		// Jinja's none is the literal None (gonja's is None or nil; its
		// none was a variable, undefined).
		if x.Name == nil || x.Name.Val != "none" {
			return
		}
		call = callOf(noneName, x.Name)
	case *nodes.Dict:
		if len(x.Pairs) == 0 {
			call = callOf(emptyDictName, x.Token)
			break
		}
		if variableParts(x) < 2 {
			return
		}
		call = callOf(checkedValueName, x.Position(), x)
	case *nodes.List, *nodes.Tuple:
		if variableParts(x.(nodes.Expression)) < 2 {
			return // [x] or {'content': x} is only one level more than x
		}
		call = callOf(checkedValueName, x.(nodes.Expression).Position(), x.(nodes.Expression))
	default:
		return
	}
	cv := reflect.ValueOf(call)
	if slot.Type() == expressionType || slot.Type() == nodeType || cv.Type().AssignableTo(slot.Type()) {
		set(cv)
	}
}

// callOf is a call of the function name at pos.
func callOf(name string, pos *tokens.Token, args ...nodes.Expression) *nodes.Call {
	var p tokens.Token
	if pos != nil {
		p = *pos
	}
	return &nodes.Call{
		Location: pos,
		Func:     &nodes.Name{Name: &tokens.Token{Type: tokens.Name, Val: name, Pos: p.Pos, Line: p.Line, Col: p.Col}},
		Args:     args,
		Kwargs:   map[string]nodes.Expression{},
	}
}

// isTuple says whether e is a tuple literal, measured or not.
func isTuple(e nodes.Expression) bool {
	if c, ok := e.(*nodes.Call); ok {
		if n, ok := c.Func.(*nodes.Name); ok && n.Name != nil && n.Name.Val == checkedValueName && len(c.Args) == 1 {
			e = c.Args[0]
		}
	}
	_, ok := e.(*nodes.Tuple)
	return ok
}

// variableParts counts the elements (keys and values) of a literal that
// are not constants.
func variableParts(e nodes.Expression) int {
	var parts []nodes.Expression
	switch x := e.(type) {
	case *nodes.List:
		parts = x.Val
	case *nodes.Tuple:
		parts = x.Val
	case *nodes.Dict:
		for _, p := range x.Pairs {
			parts = append(parts, p.Key, p.Value)
		}
	}
	n := 0
	for _, p := range parts {
		if !constant(p) {
			n++
		}
	}
	return n
}

// constant says whether e is a literal made of literals only: it cannot
// hold a value the template computed.
func constant(e nodes.Expression) bool {
	switch x := e.(type) {
	case *nodes.String, *nodes.Integer, *nodes.Float, *nodes.Bool, *nodes.None:
		return true
	case *nodes.List, *nodes.Tuple, *nodes.Dict:
		return variableParts(x) == 0
	}
	return false
}

func operands(params *exec.VarArgs) (*exec.Value, *exec.Value, error) {
	if len(params.Args) != 2 {
		return nil, nil, fmt.Errorf("operator with %d operands", len(params.Args))
	}
	return params.Args[0], params.Args[1], nil
}

// guardedMul is gonja's *, with the size of a repeated string checked
// first (and a negative count giving "", as in Python, where
// strings.Repeat panics).
func guardedMul(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	l, r, err := operands(params)
	if err != nil {
		return exec.AsValue(err)
	}
	if l.IsFloat() || r.IsFloat() {
		return exec.AsValue(l.Float() * r.Float())
	}
	if l.IsString() {
		n := max(r.Integer(), 0)
		s := l.String()
		size := -1 // overflows int: more than any limit
		if len(s) == 0 || n <= math.MaxInt/len(s) {
			size = len(s) * n
		}
		if err := budgetOf(e.Environment.Context).value(size, "string * integer"); err != nil {
			return exec.AsValue(err)
		}
		return exec.AsValue(strings.Repeat(s, n))
	}
	return exec.AsValue(l.Integer() * r.Integer())
}

// guardedConcat is gonja's ~.
func guardedConcat(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	l, r, err := operands(params)
	if err != nil {
		return exec.AsValue(err)
	}
	ls, rs := pyStr(l), pyStr(r) // ~ joins str() of each, as printing does
	if err := budgetOf(e.Environment.Context).value(len(ls)+len(rs), "~"); err != nil {
		return exec.AsValue(err)
	}
	return exec.AsValue(ls + rs)
}

// guardedAdd is gonja's +: lists concatenate (bounded by MaxSteps
// elements), strings concatenate (bounded by MaxValue bytes), numbers add.
func guardedAdd(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	l, r, err := operands(params)
	if err != nil {
		return exec.AsValue(err)
	}
	b := budgetOf(e.Environment.Context)
	if l.IsList() {
		if !r.IsList() {
			return exec.AsValue(fmt.Errorf("unable to concatenate list to %s", r.String()))
		}
		if err := b.step(l.Len() + r.Len()); err != nil {
			return exec.AsValue(err)
		}
		out := make([]any, 0, l.Len()+r.Len())
		for _, v := range []*exec.Value{l, r} {
			for i := range v.Len() {
				out = append(out, v.Index(i).Interface())
			}
		}
		if err := b.checkValues("+", out); err != nil { // l + l + l ... repeats l's items
			return exec.AsValue(err)
		}
		return exec.AsValue(out)
	}
	if l.IsFloat() || r.IsFloat() {
		return exec.AsValue(l.Float() + r.Float())
	}
	if l.IsString() || r.IsString() {
		ls, rs := l.String(), r.String()
		if err := b.value(len(ls)+len(rs), "+"); err != nil {
			return exec.AsValue(err)
		}
		return exec.AsValue(ls + rs)
	}
	return exec.AsValue(l.Integer() + r.Integer())
}
