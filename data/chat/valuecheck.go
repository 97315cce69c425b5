package chat

import (
	"fmt"
	"math"
	"reflect"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// maxValueDepth bounds how deeply the lists, dicts and namespaces of a
// rendering nest. Printing, |tojson, |string, ==, in, sort and dictsort
// recurse once per level in gonja, and so does the stringifying of a
// method's receiver that gonja does on every method call: a 109-byte
// template that wrapped a namespace attribute in a dict a million times
// ({% set ns.x = {'a': ns.x} %} in a loop) overflowed the stack when it
// printed it. Real values (a conversation, a tool's JSON schema) nest
// fewer than 20 deep; Python's json gives up near 1,000.
//
// The bound is checked where values can grow without end: whenever a
// value is stored ({% set %}, with every namespace, the only values a
// template can change), passed to a macro or to a recursive loop's
// loop(), or built by something that can repeat its operands (list, tuple
// and dict literals, + on lists, dict(), namespace(), batch, slice). A
// value in flight is at most one expression deeper than those, and
// expressions are at most maxSyntaxDepth deep.
const maxValueDepth = 512

// valueCheck measures values as gonja's recursive functions will see
// them: how deep their lists, dicts and namespaces nest, whether one
// contains itself, and how long they would print, with a part that is
// shared counted each time it appears ({% set x = [x, x] %} forty times
// would print as a terabyte). Each container is measured once per check,
// so a check costs the number of distinct containers, however often they
// are shared.
type valueCheck struct {
	maxSize int // printed bytes
	done    map[valueID]valueShape
	path    map[valueID]bool
}

// valueID names a container: a map, a *exec.Dict, or a slice (with its
// length, since slices of one array can differ in it).
type valueID struct {
	kind reflect.Kind
	ptr  uintptr
	len  int
}

type valueShape struct {
	depth int // levels of containers, 0 for a scalar
	size  int // printed bytes, at least (a scalar counts 1, a string its length)
}

var (
	valuePtrType = reflect.TypeFor[*exec.Value]()
	dictPtrType  = reflect.TypeFor[*exec.Dict]()
)

func newValueCheck(maxSize int) *valueCheck {
	return &valueCheck{maxSize: maxSize, done: map[valueID]valueShape{}, path: map[valueID]bool{}}
}

// check measures each value (the namespaces of a rendering and a value
// stored, say) with one memory of the containers seen.
func (c *valueCheck) check(values ...any) error {
	for _, v := range values {
		if _, err := c.walk(reflect.ValueOf(v), 0); err != nil {
			return err
		}
	}
	return nil
}

func (c *valueCheck) walk(v reflect.Value, depth int) (valueShape, error) {
	for v.IsValid() && (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) {
		if v.IsNil() {
			return valueShape{0, 1}, nil
		}
		switch v.Type() {
		case valuePtrType:
			v = (*exec.Value)(v.UnsafePointer()).Val
			continue
		case dictPtrType:
			return c.container(v, depth)
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return valueShape{0, 1}, nil
	}
	switch v.Kind() {
	case reflect.String:
		return valueShape{0, v.Len() + 2}, nil
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return valueShape{0, v.Len() + 3}, nil
		}
		return c.container(v, depth)
	case reflect.Map:
		return c.container(v, depth)
	}
	return valueShape{0, 1}, nil
}

// container measures a list, map or dict that depth containers hold.
func (c *valueCheck) container(v reflect.Value, depth int) (valueShape, error) {
	if depth >= maxValueDepth {
		return valueShape{}, c.tooDeep()
	}
	var id valueID
	memo := v.Kind() != reflect.Array // an array (gonja's pairs) has no identity; it is small
	if memo {
		id = valueID{v.Kind(), v.Pointer(), 0}
		if v.Kind() != reflect.Pointer {
			id.len = v.Len()
		}
		if s, ok := c.done[id]; ok {
			if depth+s.depth > maxValueDepth {
				return valueShape{}, c.tooDeep()
			}
			return s, nil
		}
		if c.path[id] {
			return valueShape{}, fmt.Errorf("a namespace contains itself (cyclic value): %w", ErrNesting)
		}
		c.path[id] = true
		defer delete(c.path, id)
	}
	s := valueShape{depth: 1, size: 2}
	add := func(child reflect.Value) error {
		cs, err := c.walk(child, depth+1)
		if err != nil {
			return err
		}
		s.depth = max(s.depth, cs.depth+1)
		s.size += min(cs.size, c.maxSize) + 2 // ", " or ": "
		if s.size > c.maxSize {
			return fmt.Errorf("%w: a value that would print as more than %d bytes (its shared parts counted each time they appear)", ErrBudget, c.maxSize)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer: // *exec.Dict
		for _, p := range (*exec.Dict)(v.UnsafePointer()).Pairs {
			if p == nil {
				continue
			}
			if err := add(reflect.ValueOf(p.Key)); err != nil {
				return valueShape{}, err
			}
			if err := add(reflect.ValueOf(p.Value)); err != nil {
				return valueShape{}, err
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if err := add(it.Key()); err != nil {
				return valueShape{}, err
			}
			if err := add(it.Value()); err != nil {
				return valueShape{}, err
			}
		}
	default:
		for i := range v.Len() {
			if err := add(v.Index(i)); err != nil {
				return valueShape{}, err
			}
		}
	}
	if memo {
		c.done[id] = s
	}
	return s, nil
}

func (c *valueCheck) tooDeep() error {
	return fmt.Errorf("a value nests lists, dicts and namespaces more than %d deep: %w", maxValueDepth, ErrNesting)
}

// checkValues measures values for the rendering b belongs to; what says
// where they are (the error names it). A value that would print as more
// than 4 × MaxOutput bytes is refused: printed whole it could never fit
// the output; the slack is for values stored and printed in parts (a
// namespace holding a few strings near MaxValue, a list joined).
func (b *budget) checkValues(what string, values ...any) error {
	maxSize := b.limits.MaxOutput
	if maxSize <= math.MaxInt/4 {
		maxSize *= 4
	}
	if err := newValueCheck(maxSize).check(values...); err != nil {
		return b.fail(fmt.Errorf("%s: %w", what, err))
	}
	return nil
}

// arguments are a call's positional and keyword arguments.
func arguments(params *exec.VarArgs) []any {
	out := make([]any, 0, len(params.Args)+len(params.KwArgs))
	for _, a := range params.Args {
		out = append(out, a)
	}
	for _, a := range params.KwArgs {
		out = append(out, a)
	}
	return out
}

// checkedValueName is the call wrapped around the list, tuple and dict
// literals that can repeat a value (rewrite.go).
const checkedValueName = "__ftune_value"

// checkedValue returns its argument once it has measured it.
func checkedValue(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	if len(params.Args) != 1 {
		return exec.AsValue(fmt.Errorf("%s with %d arguments", checkedValueName, len(params.Args)))
	}
	v := params.Args[0]
	if err := budgetOf(e.Environment.Context).checkValues("a literal", v); err != nil {
		return exec.AsValue(err)
	}
	return v
}
