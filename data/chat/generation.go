package chat

import (
	"fmt"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// transformers adds {% generation %}...{% endgeneration %} to Jinja
// (its AssistantTracker extension) to mark the assistant's tokens for
// return_assistant_tokens_mask; SmolLM3's template wraps every assistant
// turn in it. The block renders its body unchanged. ftune finds answer
// spans by rendering prefixes of the conversation (data/prep), not from
// the block, so the block is only rendered, transparently.
//
// The body is a nodes.Wrapper inside the compiled tree: rewriteOperators
// reaches it like any other, and its loops, output and operators run
// under the render's budget.

// generationBlock is a parsed {% generation %} block.
type generationBlock struct {
	location *tokens.Token
	body     *nodes.Wrapper
}

func (g *generationBlock) Position() *tokens.Token { return g.location }

func (g *generationBlock) String() string {
	return fmt.Sprintf("GenerationControlStructure(Line=%d Col=%d)", g.location.Line, g.location.Col)
}

// Execute renders the body in a child scope: transformers compiles the
// block as a call block, whose body is a macro, so a {% set %} inside does
// not change the variable outside (a namespace's attributes do change, as
// in Jinja).
func (g *generationBlock) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	return r.ExecuteWrapper(g.body)
}

// parseGeneration parses the block up to its endgeneration; neither tag
// takes arguments.
func parseGeneration(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	g := &generationBlock{location: tagEnd(p)}
	if !args.End() {
		return nil, args.Error("generation takes no arguments", args.Current())
	}
	body, endArgs, err := p.WrapUntil("endgeneration")
	if err != nil {
		return nil, unclosedGeneration(err, g.location)
	}
	if !endArgs.End() {
		return nil, endArgs.Error("endgeneration takes no arguments", endArgs.Current())
	}
	g.body = body
	return g, nil
}

// strayEndGeneration reports an endgeneration that closes nothing, where
// gonja would say the control structure is not found. The blocks whose
// body is being parsed stop at their own end tags first, so an
// endgeneration parsed as a statement of its own is never in place.
func strayEndGeneration(p *parser.Parser, _ *parser.Parser) (nodes.ControlStructure, error) {
	at := tagEnd(p)
	return nil, &parser.SyntaxError{
		Message: "endgeneration closes no generation block (none is open, or a block opened inside it is not closed)",
		Raw:     "endgeneration", Line: at.Line, Column: at.Col,
	}
}

// tagEnd is the %} that ends the tag being parsed: the last token the
// parser consumed (the next one may start on a later line, trim_blocks
// taking the newline after the tag).
func tagEnd(p *parser.Parser) *tokens.Token {
	s := p.Stream()
	s.Backup()
	return s.Next()
}

// unclosedGeneration says which generation block is not closed when the
// parse of its body stopped at the end of the template or at another
// block's end tag (a loop closed before its generation block); gonja
// would report only the place it stopped ("Unexpected EOF", "ControlStructure
// 'endfor' not found"). Errors from blocks nested in the body come wrapped
// and are returned as they are.
func unclosedGeneration(err error, at *tokens.Token) error {
	line, col := 0, 0
	if at != nil {
		line, col = at.Line, at.Col
	}
	if strings.HasPrefix(err.Error(), "Unexpected EOF") {
		return &parser.SyntaxError{
			Message: "generation block not closed: the template ends before its endgeneration",
			Raw:     "generation", Line: line, Column: col,
		}
	}
	se, ok := err.(*parser.SyntaxError)
	if ok && strings.HasPrefix(se.Raw, "end") && strings.Contains(se.Message, "not found") {
		return &parser.SyntaxError{
			Message: fmt.Sprintf("%s inside the generation block opened at line %d, which is not closed (endgeneration expected first)", se.Raw, line),
			Raw:     se.Raw, Line: se.Line, Column: se.Column,
		}
	}
	return err
}
