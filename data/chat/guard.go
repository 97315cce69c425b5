package chat

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"unsafe"

	gonjabuiltins "github.com/nikolalohinski/gonja/v2/builtins"
	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
)

// maxMacroDepth bounds the nesting of calls during a render: macros and
// recursive loops' loop(), all counted together (one counter per macro
// would let a cycle through many macros nest 64 times as many). Python's
// Jinja stops runaway recursion with RecursionError; in Go a recursive
// macro without a base case would overflow the goroutine stack, which is
// fatal (not a recoverable panic), so a template from a model folder could
// kill the process. Legitimate recursion (JSON-schema renderers in
// tool-calling templates) nests a few levels.
const maxMacroDepth = 64

// guardedControlStructures is gonja's set with "macro" replaced by
// guardedMacro.
func guardedControlStructures() (*exec.ControlStructureSet, error) {
	cs := exec.NewControlStructureSet(map[string]parser.ControlStructureParser{})
	cs.Update(gonjabuiltins.ControlStructures)
	orig, ok := cs.Get("macro")
	if !ok {
		return nil, fmt.Errorf("gonja has no macro control structure")
	}
	err := cs.Replace("macro", func(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		node, err := orig(p, args)
		if err != nil {
			return nil, err
		}
		m, ok := node.(*controlStructures.MacroControlStructure)
		if !ok {
			return nil, fmt.Errorf("unexpected macro node %T", node)
		}
		return &guardedMacro{m}, nil
	})
	if err != nil {
		return nil, err
	}
	origFor, ok := cs.Get("for")
	if !ok {
		return nil, fmt.Errorf("gonja has no for control structure")
	}
	if err := cs.Replace("for", guardFor(origFor)); err != nil {
		return nil, err
	}
	origSet, ok := cs.Get("set")
	if !ok {
		return nil, fmt.Errorf("gonja has no set control structure")
	}
	if err := cs.Replace("set", func(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		node, err := origSet(p, args)
		if err != nil {
			return nil, err
		}
		inner, ok := node.(exec.ControlStructure)
		if !ok {
			return nil, fmt.Errorf("unexpected set node %T", node)
		}
		target, err := setTarget(node)
		if err != nil {
			return nil, err
		}
		return &guardedSet{inner, target}, nil
	}); err != nil {
		return nil, err
	}
	// transformers' {% generation %} (generation.go).
	if err := cs.Register("generation", parseGeneration); err != nil {
		return nil, err
	}
	if err := cs.Register("endgeneration", strayEndGeneration); err != nil {
		return nil, err
	}
	// {% block %} is only useful with extends, and self.<block>() inside
	// the block recurses without end.
	// transformers renders without a loader, so these cannot work there
	// either; here a template including itself would recurse without end.
	for _, name := range []string{"include", "import", "from", "extends", "block"} {
		if err := cs.Replace(name, func(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
			return nil, args.Error(fmt.Sprintf("'%s' is not available in chat templates", name), nil)
		}); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

// guardedMacro defines a macro whose calls count in the rendering's
// budget: each is a step (a macro calling itself twice makes 2^64 calls
// within the depth bound), nests one level (past maxMacroDepth a call
// returns an error value, which ends the render with an error), and has
// its arguments measured (a macro passing [x, x] to itself would double x
// at each level).
type guardedMacro struct {
	*controlStructures.MacroControlStructure
}

func (g *guardedMacro) Execute(r *exec.Renderer, tag *nodes.ControlStructureBlock) error {
	fn, err := exec.MacroNodeToFunc(g.Macro, r)
	if err != nil {
		return fmt.Errorf("unable to parse macro %q: %w", g.Name, err)
	}
	b := budgetOf(r.Environment.Context)
	what := fmt.Sprintf("macro %q", g.Name)
	r.Environment.Context.Set(g.Name, exec.Macro(func(params *exec.VarArgs) *exec.Value {
		if err := b.call(what); err != nil {
			return exec.AsValue(err)
		}
		defer b.ret()
		if err := b.checkValues(what+"'s arguments", arguments(params)...); err != nil {
			return exec.AsValue(err)
		}
		return fn(params)
	}))
	return nil
}

// nsKey is the context variable holding a render's namespaces.
const nsKey = "__ftune_namespaces"

// namespaces records the namespace objects of one render, the values a
// template can change, so that each set measures them all (guardedSet): a
// set that makes one contain itself, or grow too deep, is caught before
// anything prints it (printing a cyclic map recurses without end in gonja,
// a fatal stack overflow, where Python's Jinja prints "[...]").
type namespaces struct{ maps []map[string]any }

// namespaceFunction replaces gonja's namespace(): the same map, measured
// and recorded.
func namespaceFunction(e *exec.Evaluator, params *exec.VarArgs) (map[string]any, error) {
	ns := map[string]any{}
	for key, value := range params.KwArgs {
		ns[key] = value
	}
	if err := budgetOf(e.Environment.Context).checkValues("namespace()", ns); err != nil {
		return nil, err
	}
	reg := namespacesOf(e.Environment.Context)
	reg.maps = append(reg.maps, ns)
	return ns, nil
}

// guardedSet is {% set %} checked as Jinja and this package need: an
// attribute or item can be set on a namespace only (Jinja: "cannot assign
// attribute on non-namespace object"), so namespaces are the only values a
// template can change; and after each set, the value stored and every
// namespace are measured (valueCheck), which catches a namespace made to
// contain itself and anything grown too deep or too large, whichever
// container holds it.
type guardedSet struct {
	exec.ControlStructure
	target nodes.Expression
}

// setTarget reads the target of gonja's set, which it keeps unexported.
func setTarget(node nodes.ControlStructure) (nodes.Expression, error) {
	v := reflect.ValueOf(node)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("unexpected set node %T", node)
	}
	f := v.Elem().FieldByName("target")
	if !f.IsValid() || f.Type() != expressionType || !f.CanAddr() {
		return nil, fmt.Errorf("gonja's set node %T has no target", node)
	}
	target, _ := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(nodes.Expression)
	return target, nil
}

func (g *guardedSet) Execute(r *exec.Renderer, tag *nodes.ControlStructureBlock) error {
	ctx := r.Environment.Context
	reg := namespacesOf(ctx)
	line := g.Position().Line
	var owner nodes.Expression
	switch t := g.target.(type) {
	case *nodes.GetAttribute:
		owner = t.Node
	case *nodes.GetItem:
		owner = t.Node
	}
	if owner != nil {
		if obj := r.Eval(owner); !obj.IsError() && !reg.holds(obj) {
			return errors.New("cannot assign attribute on non-namespace object")
		}
	}
	if err := g.ControlStructure.Execute(r, tag); err != nil {
		return err
	}
	roots := make([]any, 0, len(reg.maps)+1)
	for _, ns := range reg.maps {
		roots = append(roots, ns)
	}
	if n, ok := g.target.(*nodes.Name); ok {
		if v, ok := ctx.Get(n.Name.Val); ok {
			roots = append(roots, v)
		}
	}
	return budgetOf(ctx).checkValues(fmt.Sprintf("line %d: set", line), roots...)
}

// namespacesOf finds the namespaces of the rendering ctx belongs to.
func namespacesOf(ctx *exec.Context) *namespaces {
	if v, ok := ctx.Get(nsKey); ok {
		if reg, ok := v.(*namespaces); ok {
			return reg
		}
	}
	return &namespaces{} // a template rendered outside Render: none recorded
}

// holds says whether v is one of the namespaces.
func (n *namespaces) holds(v *exec.Value) bool {
	rv := v.Val
	for rv.IsValid() && (rv.Kind() == reflect.Interface || rv.Kind() == reflect.Pointer) && !rv.IsNil() {
		rv = rv.Elem()
	}
	if !rv.IsValid() || rv.Kind() != reflect.Map {
		return false
	}
	for _, ns := range n.maps {
		if reflect.ValueOf(ns).Pointer() == rv.Pointer() {
			return true
		}
	}
	return false
}

// immutableMethods returns m with the list and dict methods that change
// their receiver (append, update, ...) refused: transformers renders chat
// templates in Jinja's ImmutableSandboxedEnvironment, which refuses them
// too, and without them a template's values change only through {% set %}
// on namespaces, where guardedSet measures them.
func immutableMethods(m exec.Methods) (exec.Methods, error) {
	refuse := func(name string) error {
		return fmt.Errorf("method %s is not available in chat templates: they cannot change lists and dicts (transformers renders them in an immutable sandbox)", name)
	}
	dict := map[string]exec.Method[map[string]any]{}
	for _, name := range []string{"keys", "values", "items", "get", "copy"} {
		f, ok := m.Dict.Get(name)
		if !ok {
			return exec.Methods{}, fmt.Errorf("gonja has no dict method %s", name)
		}
		dict[name] = f
	}
	for _, name := range []string{"keys", "values", "items"} {
		sorted := dict[name]
		dict[name] = func(self map[string]any, v *exec.Value, args *exec.VarArgs) (any, error) {
			if d, ok := v.Interface().(*exec.Dict); ok && len(args.Args) == 0 && len(args.KwArgs) == 0 {
				return orderedDictView(d, name), nil
			}
			return sorted(self, v, args)
		}
	}
	// gonja hands dict methods a copy of the dict made of Go maps, so
	// what get and copy returned had lost the order of every JSON object
	// in it (message.get('tool_calls'), tool.get('parameters')): they
	// take the dict itself.
	dict["get"] = dictGet
	dict["copy"] = dictCopy
	for _, name := range []string{"pop", "popitem", "setdefault", "update", "clear"} {
		dict[name] = func(map[string]any, *exec.Value, *exec.VarArgs) (any, error) { return nil, refuse(name) }
	}
	list := map[string]exec.Method[[]any]{}
	for _, name := range []string{"copy"} {
		f, ok := m.List.Get(name)
		if !ok {
			return exec.Methods{}, fmt.Errorf("gonja has no list method %s", name)
		}
		list[name] = f
	}
	for _, name := range []string{"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"} {
		list[name] = func([]any, *exec.Value, *exec.VarArgs) (any, error) { return nil, refuse(name) }
	}
	m.Dict, m.List = exec.NewMethodSet(dict), exec.NewMethodSet(list)
	return m, nil
}

// orderedDictView is keys(), values() or items() of a dict that keeps its
// order (*exec.Dict: JSON objects, as Python dicts keep theirs); gonja's
// methods see it as a Go map and sort its keys.
func orderedDictView(d *exec.Dict, view string) []any {
	out := make([]any, len(d.Pairs))
	for i, p := range d.Pairs {
		switch view {
		case "keys":
			out[i] = p.Key.Interface()
		case "values":
			out[i] = p.Value.Interface()
		default:
			out[i] = []any{p.Key.Interface(), p.Value.Interface()}
		}
	}
	return out
}

// dictGet is Python's dict.get(key, default=None) on the dict itself.
func dictGet(_ map[string]any, v *exec.Value, args *exec.VarArgs) (any, error) {
	if len(args.KwArgs) > 0 || len(args.Args) < 1 || len(args.Args) > 2 {
		return nil, exec.ErrInvalidCall(errors.New("get() takes 1 or 2 positional arguments"))
	}
	if item, found, _ := dictLookup(v, args.Args[0]); found {
		return item.Interface(), nil
	}
	if len(args.Args) == 2 {
		return args.Args[1].Interface(), nil
	}
	return pyNone, nil
}

// dictCopy is dict.copy(): the same keys and values in the same order.
func dictCopy(_ map[string]any, v *exec.Value, args *exec.VarArgs) (any, error) {
	if err := args.Take(); err != nil {
		return nil, exec.ErrInvalidCall(err)
	}
	if d, ok := v.Interface().(*exec.Dict); ok {
		return &exec.Dict{Pairs: slices.Clone(d.Pairs)}, nil
	}
	return v.Interface(), nil // a Go map: no template can change it
}
