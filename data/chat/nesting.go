package chat

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unsafe"

	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// ErrNesting is wrapped by the error of a template that nests deeper than
// this package allows: in its source (brackets, blocks), in the values it
// builds (lists, dicts, namespaces, or one that contains itself), or in
// its calls (macros, recursive loops). gonja recurses on every one of
// them, and in Go a stack overflow is fatal, not a panic that recover()
// catches: the bounds keep a template from a model folder from killing
// the process.
var ErrNesting = errors.New("nested too deeply")

// maxNesting bounds how deeply a template's brackets ((, [, {) and block
// statements (if, for, macro, call, filter, set ... endset, ...) nest,
// counted together. gonja's parser recurses on each (100,000 parentheses
// overflowed the stack; 50,000 took 4 s and 1 GB), so the bound is
// checked on the tokens before the parser sees them. The real chat
// templates in this repository nest at most 5 deep (Qwen3's); templates
// in the wild stay well under 20.
const maxNesting = 256

// maxSyntaxDepth bounds the depth of the parsed tree: the nesting above
// plus chains the parser builds in a loop but evaluation and this
// package's rewriting descend recursively (a + a + ... + a, a.b.c...,
// f()()..., filter chains and their arguments, since x|map('map', 'map',
// ...) recurses once per argument). Each bracket or block adds one to
// four levels, so 4 × maxNesting; Qwen3's template is 28 deep, the
// others here 11 to 17.
const maxSyntaxDepth = 4 * maxNesting

// reservedPrefix starts the names of the functions and variables this
// package adds to a rendering (the guarded operators, the budget, the
// namespace registry). A template that assigned one could turn a guard
// off, so templates may not name them.
const reservedPrefix = "__ftune"

// checkNesting refuses a template whose brackets and blocks nest deeper
// than maxNesting, on the tokens of gonja's own lexer (strings, comments
// and raw blocks are what the parser will take them for), before the
// parser recurses on them. It returns the deepest nesting seen.
func checkNesting(src string, cfg *config.Config) (int, error) {
	lx := tokens.NewLexer(src, cfg)
	go lx.Run()
	// Stopping early leaves the lexer blocked on its channel: let it
	// finish into the void.
	defer func() {
		go func() {
			for range lx.Tokens {
			}
		}()
	}()
	blocks, brackets, deepest := 0, 0, 0
	inTag, atName := false, false
	name, topAssign := "", false
	for tok := range lx.Tokens {
		switch tok.Type {
		case tokens.EOF, tokens.Error:
			return deepest, nil // the parser stops there too
		case tokens.Whitespace:
			continue
		case tokens.VariableBegin:
			inTag, brackets = true, 0
		case tokens.BlockBegin:
			inTag, brackets = true, 0
			atName, name, topAssign = true, "", false
			continue
		case tokens.VariableEnd:
			inTag, brackets = false, 0
		case tokens.BlockEnd:
			inTag, brackets = false, 0
			switch {
			case strings.HasPrefix(name, "end"):
				blocks = max(blocks-1, 0)
			case opensBlock(name, topAssign):
				blocks++
				deepest = max(deepest, blocks)
				if blocks > maxNesting {
					return deepest, fmt.Errorf("line %d: blocks nested deeper than %d: %w", tok.Line, maxNesting, ErrNesting)
				}
			}
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			if !inTag {
				break
			}
			brackets++
			deepest = max(deepest, blocks+brackets)
			if blocks+brackets > maxNesting {
				return deepest, fmt.Errorf("line %d: brackets and blocks nested deeper than %d: %w", tok.Line, maxNesting, ErrNesting)
			}
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			brackets = max(brackets-1, 0)
		case tokens.Assign:
			if brackets == 0 {
				topAssign = true
			}
		}
		if atName {
			atName = false
			if tok.Type == tokens.Name {
				name = tok.Val
			}
		}
	}
	return deepest, nil
}

// opensBlock says whether a statement has a body that the parser reads
// recursively up to its end tag. Unknown statements count as openers: to
// over-count is harmless (they do not parse), to under-count is not.
func opensBlock(name string, topAssign bool) bool {
	switch name {
	case "else", "elif", "do", "break", "continue", "include", "import", "from", "extends", "pluralize":
		return false
	case "set": // {% set x = v %} has no body; {% set x %}...{% endset %} has one
		return !topAssign
	}
	return true
}

var (
	tokenPtrType = reflect.TypeFor[*tokens.Token]()
	filteredType = reflect.TypeFor[*nodes.FilteredExpression]()
)

// checkSyntaxDepth refuses a parsed template deeper than maxSyntaxDepth,
// before anything descends it recursively (rewriteOperators, the
// renderer). The walk stops at the bound, so it cannot overflow either.
// It returns the depth of the tree.
func checkSyntaxDepth(root *nodes.Template) (int, error) {
	seen, deepest := map[uintptr]bool{}, 0
	var walk func(v reflect.Value, depth, line int) error
	walk = func(v reflect.Value, depth, line int) error {
		switch v.Kind() {
		case reflect.Interface:
			if !v.IsNil() {
				return walk(v.Elem(), depth, line)
			}
		case reflect.Pointer:
			if v.IsNil() || v.Type() == tokenPtrType || seen[v.Pointer()] {
				return nil
			}
			seen[v.Pointer()] = true
			if v.Type().Implements(nodeType) {
				depth++
				if v.Type() == filteredType {
					// Each filter applies to the last one's result, and
					// map, select and reject call the filter or test their
					// arguments name.
					for _, fc := range (*nodes.FilteredExpression)(v.UnsafePointer()).Filters {
						if fc != nil {
							depth += 1 + len(fc.Args) + len(fc.Kwargs)
						}
					}
				}
				deepest = max(deepest, depth)
				if depth > maxSyntaxDepth {
					return fmt.Errorf("line %d: expressions and blocks nested deeper than %d levels: %w", line, maxSyntaxDepth, ErrNesting)
				}
			}
			return walk(v.Elem(), depth, line)
		case reflect.Struct:
			for i := range v.NumField() {
				if f := v.Field(i); f.Type() == tokenPtrType && !f.IsNil() {
					if t := (*tokens.Token)(f.UnsafePointer()); t.Line > 0 {
						line = t.Line
					}
				}
			}
			for i := range v.NumField() {
				f := v.Field(i)
				if !f.CanInterface() && f.CanAddr() {
					f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
				}
				if err := walk(f, depth, line); err != nil {
					return err
				}
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				if err := walk(v.Index(i), depth, line); err != nil {
					return err
				}
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				if err := walk(it.Value(), depth, line); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := walk(reflect.ValueOf(root), 0, 0)
	return deepest, err
}
