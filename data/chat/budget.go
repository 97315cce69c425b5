package chat

import (
	"context"
	"errors"
	"fmt"
	"runtime/metrics"
	"sync/atomic"
	"time"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Limits bound one rendering. A chat template comes with a downloaded
// model and is code: {% for i in range(100000000) %}x{% endfor %} grew to
// 22 GB and nested loops ran forever before these existed. Legitimate
// templates stay far below every one of them.
type Limits struct {
	// MaxOutput bounds the rendered text, in bytes.
	MaxOutput int
	// MaxValue bounds one string the template builds (by *, ~, + or a
	// filter or method that pads, indents, joins or replaces), in bytes.
	MaxValue int
	// MaxSteps bounds loop iterations, range() items and macro calls,
	// all counted together.
	MaxSteps int
	// Timeout bounds the wall time of one rendering.
	Timeout time.Duration
	// MaxMemory bounds how much the process's heap may grow while the
	// rendering runs, in bytes: the backstop for what the other limits
	// let through in combination (a macro that loops over a large
	// string writes into a buffer of its own).
	MaxMemory int64
}

// DefaultLimits are the limits of a Template unless WithLimits says
// otherwise. A 16,384-message conversation renders with Qwen3's template
// in well under a tenth of each.
var DefaultLimits = Limits{MaxOutput: 64 << 20, MaxValue: 16 << 20, MaxSteps: 4_000_000, Timeout: 20 * time.Second, MaxMemory: 2 << 30}

// ErrBudget is wrapped by the error of a rendering stopped by its Limits.
var ErrBudget = errors.New("over the rendering budget")

// budgetKey is the context variable holding a render's budget.
const budgetKey = "__ftune_budget"

// budget is the running account of one rendering. Steps and output are
// counted by the rendering goroutine only; halt is set by the watchdog
// (time, cancellation) and read at every step.
type budget struct {
	limits Limits
	steps  int
	output int
	calls  int // macro and loop() calls under way, nested
	halt   atomic.Pointer[error]
	err    error // the first limit hit; reported instead of gonja's wrapping of it
}

func newBudget(l Limits) *budget { return &budget{limits: l} }

// fail records the first budget error and returns it.
func (b *budget) fail(err error) error {
	if b.err == nil {
		b.err = err
	}
	return b.err
}

// stop is called by the watchdog: the rendering ends at its next step.
func (b *budget) stop(err error) { b.halt.CompareAndSwap(nil, &err) }

// step charges n steps and reports whether the rendering must end.
func (b *budget) step(n int) error {
	if p := b.halt.Load(); p != nil {
		return b.fail(*p)
	}
	if n > b.limits.MaxSteps-b.steps {
		return b.fail(fmt.Errorf("%w: more than %d loop iterations, range items and macro calls (a loop without end?)", ErrBudget, b.limits.MaxSteps))
	}
	b.steps += n
	return nil
}

// call enters a macro or a recursive loop's loop(): a step, and one more
// level of nesting, refused past maxMacroDepth. Every call that succeeds
// is matched by a ret.
func (b *budget) call(what string) error {
	if err := b.step(1); err != nil {
		return err
	}
	if b.calls >= maxMacroDepth {
		return b.fail(fmt.Errorf("%s: macro and loop() calls nested deeper than %d (runaway recursion?): %w", what, maxMacroDepth, ErrNesting))
	}
	b.calls++
	return nil
}

func (b *budget) ret() { b.calls-- }

// value checks the size of a string about to be built.
func (b *budget) value(n int, what string) error {
	if n > b.limits.MaxValue || n < 0 {
		return b.fail(fmt.Errorf("%w: %s would build a string of more than %d bytes", ErrBudget, what, b.limits.MaxValue))
	}
	return nil
}

// budgetOf finds the budget of the rendering that ctx belongs to.
func budgetOf(ctx *exec.Context) *budget {
	if v, ok := ctx.Get(budgetKey); ok {
		if b, ok := v.(*budget); ok {
			return b
		}
	}
	// Only reachable by a template rendered outside Render: no limits
	// were asked for, but never none at all.
	return newBudget(DefaultLimits)
}

// boundedWriter is the rendering's output: past MaxOutput bytes, or once
// the watchdog stopped the rendering, writes fail and the rendering ends.
type boundedWriter struct {
	b   *budget
	buf []byte
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	if err := w.b.step(0); err != nil {
		return 0, err
	}
	if len(p) > w.b.limits.MaxOutput-w.b.output {
		return 0, w.b.fail(fmt.Errorf("%w: output longer than %d bytes", ErrBudget, w.b.limits.MaxOutput))
	}
	w.b.output += len(p)
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// watch runs render under the budget's wall-time limit and ctx: when
// either ends first, the rendering is told to stop at its next step and,
// should it not reach one within a grace period (one filter working on a
// large string), abandoned so that the caller is not held. finished says
// whether render returned (only then may its budget be read).
func watch(ctx context.Context, b *budget, render func() (string, error)) (string, error, bool) {
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := render()
		done <- result{out, err}
	}()
	timer := time.NewTimer(b.limits.Timeout)
	defer timer.Stop()
	tick := time.NewTicker(memoryPoll)
	defer tick.Stop()
	base := heapBytes()
	var why error
wait:
	for {
		select {
		case r := <-done:
			return r.out, r.err, true
		case <-ctx.Done():
			why = fmt.Errorf("rendering interrupted: %w", context.Cause(ctx))
			break wait
		case <-timer.C:
			why = fmt.Errorf("%w: rendering took longer than %s", ErrBudget, b.limits.Timeout)
			break wait
		case <-tick.C:
			if grown := int64(heapBytes()) - int64(base); grown > b.limits.MaxMemory {
				why = fmt.Errorf("%w: the heap grew by more than %d MiB while rendering", ErrBudget, b.limits.MaxMemory>>20)
				break wait
			}
		}
	}
	b.stop(why)
	select {
	case r := <-done:
		if r.err == nil {
			return r.out, nil, true // finished just as it was stopped
		}
		return "", why, true
	case <-time.After(time.Second):
	}
	return "", why, false
}

// memoryPoll is how often the watchdog reads the heap size: at a few GB/s
// of allocation, some hundred MB past the limit at most.
const memoryPoll = 10 * time.Millisecond

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

// heapBytes is the bytes of heap objects, live or not yet collected
// (runtime/metrics reads it without stopping the world).
func heapBytes() uint64 {
	s := []metrics.Sample{heapSample[0]}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// budgetCheck is a node put first in every loop body: each iteration
// charges a step, so nested and long loops end at the budget, on a
// timeout or on cancellation. In a recursive loop it also puts a guard
// around the iteration's loop(), which would recurse without end on
// {{ loop([1]) }}.
type budgetCheck struct {
	at        *tokens.Token
	recursive bool
}

func (c *budgetCheck) Position() *tokens.Token { return c.at }
func (c *budgetCheck) String() string          { return "budgetCheck" }
func (c *budgetCheck) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	b := budgetOf(r.Environment.Context)
	if err := b.step(1); err != nil {
		return err
	}
	if !c.recursive {
		return nil
	}
	ctx := r.Environment.Context
	v, _ := ctx.Get("loop")
	loop, ok := v.(func(*exec.VarArgs) *exec.Value)
	if !ok {
		return fmt.Errorf("line %d: unexpected loop of a recursive for: %T", c.at.Line, v)
	}
	what := fmt.Sprintf("line %d: loop()", c.at.Line)
	ctx.Set("loop", func(params *exec.VarArgs) *exec.Value {
		if err := b.call(what); err != nil {
			return exec.AsValue(err)
		}
		defer b.ret()
		if err := b.checkValues(what, arguments(params)...); err != nil {
			return exec.AsValue(err)
		}
		return loop(params)
	})
	return nil
}

// guardFor wraps gonja's for parser: the body starts with a budgetCheck.
func guardFor(orig parser.ControlStructureParser) parser.ControlStructureParser {
	return func(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		node, err := orig(p, args)
		if err != nil {
			return nil, err
		}
		pos := node.Position()
		loop, ok := node.(*controlStructures.ForControlStructure)
		if !ok || loop.BodyWrapper == nil {
			return nil, fmt.Errorf("unexpected for node %T", node)
		}
		check := &nodes.ControlStructureBlock{Location: pos, Name: "budget", ControlStructure: &budgetCheck{pos, loop.Recursive}}
		body := loop.BodyWrapper
		body.Nodes = append([]nodes.Node{check}, body.Nodes...)
		return node, nil
	}
}

// boundedRange is range() that counts its items as steps before making
// them (gonja's streams every item of range(100000000) into the loop,
// which keeps them all).
func boundedRange(e *exec.Evaluator, params *exec.VarArgs) ([]int, error) {
	start, stop, step := 0, 0, 1
	ints := func() bool {
		for _, a := range params.Args {
			if !a.IsInteger() {
				return false
			}
		}
		return len(params.KwArgs) == 0
	}
	switch n := len(params.Args); {
	case n == 1 && ints():
		stop = params.Args[0].Integer()
	case n == 2 && ints():
		start, stop = params.Args[0].Integer(), params.Args[1].Integer()
	case n == 3 && ints():
		start, stop, step = params.Args[0].Integer(), params.Args[1].Integer(), params.Args[2].Integer()
	default:
		return nil, exec.ErrInvalidCall(errors.New("expected signature is [start, ]stop[, step] where all arguments are integers"))
	}
	if step == 0 {
		return nil, exec.ErrInvalidCall(errors.New("step cannot be 0"))
	}
	count := 0
	if step > 0 && stop > start {
		count = int((uint64(stop-start) + uint64(step) - 1) / uint64(step))
	} else if step < 0 && start > stop {
		count = int((uint64(start-stop) + uint64(-step) - 1) / uint64(-step))
	}
	if count < 0 { // beyond int: more than any budget
		count = int(^uint(0) >> 1)
	}
	if err := budgetOf(e.Environment.Context).step(count); err != nil {
		return nil, err
	}
	out := make([]int, count)
	for i := range out {
		out[i] = start + i*step
	}
	return out, nil
}
