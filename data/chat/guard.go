package chat

import (
	"fmt"
	"reflect"

	gonjabuiltins "github.com/nikolalohinski/gonja/v2/builtins"
	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
)

// maxMacroDepth bounds nested calls of one macro during a render. Python's
// Jinja stops runaway recursion with RecursionError; in Go a recursive macro
// without a base case would overflow the goroutine stack, which is fatal
// (not a recoverable panic), so a template from a model folder could kill
// the process. Legitimate recursion (JSON-schema renderers in tool-calling
// templates) nests a few levels.
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
		return &guardedSet{inner}, nil
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

// guardedMacro defines a macro whose calls count their nesting; past
// maxMacroDepth a call returns an error value, which ends the render with
// an error. The counter lives in the closure made for each render.
type guardedMacro struct {
	*controlStructures.MacroControlStructure
}

func (g *guardedMacro) Execute(r *exec.Renderer, tag *nodes.ControlStructureBlock) error {
	fn, err := exec.MacroNodeToFunc(g.Macro, r)
	if err != nil {
		return fmt.Errorf("unable to parse macro %q: %w", g.Name, err)
	}
	name, depth := g.Name, 0
	b := budgetOf(r.Environment.Context)
	r.Environment.Context.Set(name, exec.Macro(func(params *exec.VarArgs) *exec.Value {
		// A macro calling itself twice makes 2^64 calls within the depth
		// bound: each call is a step.
		if err := b.step(1); err != nil {
			return exec.AsValue(err)
		}
		if depth >= maxMacroDepth {
			return exec.AsValue(fmt.Errorf("macro %q calls nested deeper than %d (runaway recursion?)", name, maxMacroDepth))
		}
		depth++
		defer func() { depth-- }()
		return fn(params)
	}))
	return nil
}

// nsKey is the context variable holding a render's namespaces.
const nsKey = "__ftune_namespaces"

// namespaces records the namespace objects of one render, so that a set
// that makes one contain itself is caught before anything prints it:
// printing a cyclic map recurses without end in gonja (a fatal stack
// overflow), where Python's Jinja prints "[...]".
type namespaces struct{ maps []map[string]any }

// namespaceFunction replaces gonja's namespace(): the same map, recorded.
func namespaceFunction(e *exec.Evaluator, params *exec.VarArgs) map[string]any {
	ns := map[string]any{}
	for key, value := range params.KwArgs {
		ns[key] = value
	}
	if v, ok := e.Environment.Context.Get(nsKey); ok {
		if reg, ok := v.(*namespaces); ok {
			reg.maps = append(reg.maps, ns)
		}
	}
	return ns
}

type guardedSet struct{ exec.ControlStructure }

func (g *guardedSet) Execute(r *exec.Renderer, tag *nodes.ControlStructureBlock) error {
	if err := g.ControlStructure.Execute(r, tag); err != nil {
		return err
	}
	v, ok := r.Environment.Context.Get(nsKey)
	if !ok {
		return nil
	}
	reg, _ := v.(*namespaces)
	if reg == nil {
		return nil
	}
	for _, ns := range reg.maps {
		if cyclic(ns, map[uintptr]bool{}) {
			return fmt.Errorf("a namespace contains itself (cyclic value)")
		}
	}
	return nil
}

// cyclic reports whether v reaches a map or list already on the path
// (through any map, slice or *exec.Value, the forms gonja stores).
func cyclic(v any, path map[uintptr]bool) bool {
	if x, ok := v.(*exec.Value); ok {
		if x == nil || !x.Val.IsValid() || !x.Val.CanInterface() {
			return false
		}
		return cyclic(x.Val.Interface(), path)
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Interface || rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return false
		}
		if x, ok := rv.Interface().(*exec.Value); ok {
			return cyclic(x, path)
		}
		rv = rv.Elem()
	}
	var children []reflect.Value
	switch rv.Kind() {
	case reflect.Map:
		for it := rv.MapRange(); it.Next(); {
			children = append(children, it.Value())
		}
	case reflect.Slice:
		for i := range rv.Len() {
			children = append(children, rv.Index(i))
		}
	default:
		return false
	}
	if rv.Len() == 0 {
		return false
	}
	id := rv.Pointer()
	if path[id] {
		return true
	}
	path[id] = true
	defer delete(path, id)
	for _, c := range children {
		if c.CanInterface() && cyclic(c.Interface(), path) {
			return true
		}
	}
	return false
}
