package chat

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
)

// Python's dict() as templates call it: dict(b=1, a=2) is {'b': 1, 'a':
// 2}, its keys in the order written (tojson and loops print them so),
// and dict(mapping or pairs, **kw) starts from the positional argument's
// items. gonja's parser keeps a call's keywords in a Go map, which has no
// order (nine keywords came out shuffled, differently each rendering),
// and its dict() dropped the positional argument (dict(kw, c=3) was
// {'c': 3}). So a dict call with keywords is rewritten when compiled
// (rewrite.go) into dictKwName(dict, number of positional arguments,
// positional..., key, value, key, value...), the keywords in the order
// of their source positions (a macro the template names dict is called
// with them as it was). dict(**kw) is not read: gonja's parser refuses **
// in a call, so such a template fails to load rather than rendering
// otherwise.
const dictKwName = "__ftune_dict_kw"

// orderedDictCall is the call x becomes when it is dict(...) with
// keywords, or nil.
func orderedDictCall(x *nodes.Call) *nodes.Call {
	n, ok := x.Func.(*nodes.Name)
	if !ok || n.Name == nil || n.Name.Val != "dict" || len(x.Kwargs) == 0 {
		return nil
	}
	// Each keyword's value lies between its = and the next comma, so the
	// position of any of its tokens orders the keywords as written.
	pos := func(k string) int {
		if p := x.Kwargs[k].Position(); p != nil {
			return p.Pos
		}
		return -1
	}
	keys := slices.SortedFunc(maps.Keys(x.Kwargs), func(a, b string) int {
		return cmp.Or(cmp.Compare(pos(a), pos(b)), strings.Compare(a, b))
	})
	args := []nodes.Expression{n, &nodes.Integer{Location: x.Location, Val: len(x.Args)}}
	args = append(args, x.Args...)
	for _, k := range keys {
		args = append(args, &nodes.String{Location: x.Kwargs[k].Position(), Val: k}, x.Kwargs[k])
	}
	return callOf(dictKwName, x.Location, args...)
}

// dictWithKeywords is a rewritten dict(...) call (orderedDictCall).
func dictWithKeywords(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	a := params.Args
	if len(a) < 2 || !a[1].IsInteger() || a[1].Integer() < 0 || 2+a[1].Integer() > len(a) || (len(a)-2-a[1].Integer())%2 != 0 {
		return exec.AsValue(fmt.Errorf("%s with %d arguments", dictKwName, len(a)))
	}
	npos := a[1].Integer()
	if !isBuiltinDict(a[0]) {
		// The template gave the name dict to something of its own: a
		// macro takes its keywords by name, in any order.
		var macro exec.Macro
		switch f := a[0].Interface().(type) {
		case exec.Macro:
			macro = f
		case func(*exec.VarArgs) *exec.Value:
			macro = f
		default:
			return exec.AsValue(fmt.Errorf("dict(...) with keywords: the name dict is the template's own (of type %s), not the built-in dict, and ftune cannot call it with keywords", pyType(a[0])))
		}
		call := &exec.VarArgs{Args: a[2 : 2+npos], KwArgs: map[string]*exec.Value{}}
		for i := 2 + npos; i < len(a); i += 2 {
			call.KwArgs[a[i].String()] = a[i+1]
		}
		return macro(call)
	}
	positional := a[2 : 2+npos]
	var keys, values []*exec.Value
	for i := 2 + npos; i < len(a); i += 2 {
		keys, values = append(keys, a[i]), append(values, a[i+1])
	}
	return buildDict(e, positional, keys, values)
}

// isBuiltinDict says whether v is the dict function templates are given.
func isBuiltinDict(v *exec.Value) bool {
	rv := reflect.ValueOf(v.Interface())
	return rv.Kind() == reflect.Func && rv.Pointer() == reflect.ValueOf(checkedDict).Pointer()
}

// checkedDict is dict() where its keywords are not in their order: a
// call the rewrite did not see (a call without keywords, or of dict
// under another name), whose keywords are then taken in sorted order,
// the same every rendering.
func checkedDict(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	var keys, values []*exec.Value
	for _, k := range slices.Sorted(maps.Keys(params.KwArgs)) {
		keys, values = append(keys, exec.AsValue(k)), append(values, params.KwArgs[k])
	}
	return buildDict(e, params.Args, keys, values)
}

// buildDict is Python's dict(positional..., key=value...): the
// positional argument's items (a mapping's, in its order, or a list of
// pairs'), then the keywords, a key given again keeping its place with
// the later value. What it builds is measured.
func buildDict(e *exec.Evaluator, positional, keys, values []*exec.Value) *exec.Value {
	if len(positional) > 1 {
		return exec.AsValue(fmt.Errorf("dict expected at most 1 argument, got %d", len(positional)))
	}
	d := exec.NewDict()
	put := func(k, v *exec.Value) {
		for _, p := range d.Pairs {
			if pyEqualKey(p.Key, k) {
				p.Value = v
				return
			}
		}
		d.Pairs = append(d.Pairs, &exec.Pair{Key: k, Value: v})
	}
	if len(positional) == 1 {
		items, err := dictItems(positional[0])
		if err != nil {
			return exec.AsValue(err)
		}
		for _, p := range items {
			put(p[0], p[1])
		}
	}
	for i, k := range keys {
		put(k, values[i])
	}
	if len(d.Pairs) == 0 {
		return exec.AsValue(emptyDict()) // false, as Python's {} is
	}
	if err := budgetOf(e.Environment.Context).checkValues("dict()", d); err != nil {
		return exec.AsValue(err)
	}
	return exec.AsValue(d)
}

// dictItems are the (key, value) pairs dict(v) starts from: a mapping's
// items in its order (a Go map's, a message's, by sorted key, as tojson
// prints it), or the items of a list of pairs.
func dictItems(v *exec.Value) ([][2]*exec.Value, error) {
	var out [][2]*exec.Value
	switch x := v.Interface().(type) {
	case *exec.Dict:
		for _, p := range x.Pairs {
			out = append(out, [2]*exec.Value{p.Key, p.Value})
		}
		return out, nil
	case exec.Dict:
		return dictItems(exec.AsValue(&x))
	}
	if rv := reflect.ValueOf(v.Interface()); v.IsDict() && rv.Kind() == reflect.Map {
		keys := rv.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			return strings.Compare(fmt.Sprint(a.Interface()), fmt.Sprint(b.Interface()))
		})
		for _, k := range keys {
			out = append(out, [2]*exec.Value{exec.ToValue(k), exec.ToValue(rv.MapIndex(k))})
		}
		return out, nil
	}
	if !v.IsList() {
		return nil, fmt.Errorf("'%s' object is not iterable", pyType(v))
	}
	for i := range v.Len() {
		item := v.Index(i)
		if !item.IsList() {
			return nil, fmt.Errorf("cannot convert dictionary update sequence element #%d to a sequence", i)
		}
		if item.Len() != 2 {
			return nil, fmt.Errorf("dictionary update sequence element #%d has length %d; 2 is required", i, item.Len())
		}
		out = append(out, [2]*exec.Value{item.Index(0), item.Index(1)})
	}
	return out, nil
}
