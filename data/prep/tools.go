package prep

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ftune/ftune/data/format"
)

// ErrNoToolSupport: a record holds tool calls, tool results or a list of
// tools, and the chat template leaves them out of the text. Training on
// that text would teach the model answers without the calls that produced
// them (or calls without the tools they come from), so the record is
// refused, naming what the template drops, as TRL's supports_tool_calling
// refuses such a template.
var ErrNoToolSupport = errors.New("chat template does not render tool calling")

// Sentinels of the tool probes: plain ASCII, so that every way a template
// prints them (tojson, raw, inside quotes) keeps them whole. The call id
// has nine letters and digits, as Mistral's templates require.
const (
	probeToolName    = "ftuneprobefunction"
	probeArgKey      = "ftuneprobekey"
	probeArgValue    = "ftuneprobevalue"
	probeToolContent = "ftuneproberesult"
	probeCallID      = "ftune0001"
	probeToolsName   = "ftuneprobelisted"
)

// checkToolSupport refuses a conversation with tool calls, tool results or
// tools when the template drops them, found once per Tokenize(All) call by
// rendering probes (a user turn, a call, its result; a tool list).
func (p *Preprocessor) checkToolSupport(msgs []format.Message, tools string) error {
	calls := slices.ContainsFunc(msgs, func(m format.Message) bool { return len(m.ToolCalls) > 0 })
	results := slices.ContainsFunc(msgs, func(m format.Message) bool { return m.Role == format.RoleTool })
	switch {
	case calls:
		if err := p.toolCallSupport(); err != nil {
			return err
		}
	case results:
		// Calls written in the answers' text (Phi-4-mini's), their
		// results in tool messages: the template must write those.
		if err := p.toolResultSupport(); err != nil {
			return err
		}
	}
	if tools != "" {
		if err := p.toolListSupport(); err != nil {
			return err
		}
	}
	return nil
}

func (p *Preprocessor) toolCallSupport() error {
	return p.memoProbe(func(pr *templateProbes) (*bool, *error) { return &pr.callsDone, &pr.callsErr }, p.probeToolCalls)
}

func (p *Preprocessor) toolResultSupport() error {
	return p.memoProbe(func(pr *templateProbes) (*bool, *error) { return &pr.resultsDone, &pr.resultsErr }, p.probeToolResults)
}

func (p *Preprocessor) toolListSupport() error {
	return p.memoProbe(func(pr *templateProbes) (*bool, *error) { return &pr.toolsDone, &pr.toolsErr }, p.probeToolList)
}

// memoProbe runs probe once per Tokenize(All) call (p.probes), keeping its
// result in the fields field picks; every time without probes.
func (p *Preprocessor) memoProbe(field func(*templateProbes) (done *bool, result *error), probe func() error) error {
	if p.probes == nil {
		return probe()
	}
	done, result := field(p.probes)
	if !*done {
		*result, *done = probe(), true
	}
	return *result
}

func (p *Preprocessor) probeToolCalls() error {
	msgs := []format.Message{
		{Role: format.RoleUser, Content: "x"},
		{Role: format.RoleAssistant, ToolCalls: []format.ToolCall{{ID: probeCallID, Name: probeToolName, Arguments: fmt.Sprintf(`{"%s": "%s"}`, probeArgKey, probeArgValue)}}},
		{Role: format.RoleTool, ToolCallID: probeCallID, Name: probeToolName, Content: probeToolContent},
	}
	s, err := p.render(msgs, "", false)
	if err != nil {
		return fmt.Errorf("%w: %s fails on a conversation with a tool call and its result: %w", ErrNoToolSupport, p.templateName(), err)
	}
	var missing []string
	if !strings.Contains(s, probeToolName) {
		missing = append(missing, "the called function's name")
	}
	if !strings.Contains(s, probeArgKey) || !strings.Contains(s, probeArgValue) {
		missing = append(missing, "the call's arguments")
	}
	if !strings.Contains(s, probeToolContent) {
		missing = append(missing, "the tool's result")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s leaves out %s, so tool calls would not reach the text as written (use the model's own template if it has one for tools, or a template that writes message.tool_calls and tool messages)", ErrNoToolSupport, p.templateName(), strings.Join(missing, " and "))
	}
	return nil
}

func (p *Preprocessor) probeToolResults() error {
	msgs := []format.Message{{Role: format.RoleUser, Content: "x"}, {Role: format.RoleAssistant, Content: "y"}, {Role: format.RoleTool, Content: probeToolContent}}
	s, err := p.render(msgs, "", false)
	if err != nil {
		return fmt.Errorf("%w: %s fails on a conversation with a tool's result: %w", ErrNoToolSupport, p.templateName(), err)
	}
	if !strings.Contains(s, probeToolContent) {
		return fmt.Errorf("%w: %s leaves out tool messages (a function's result), so the answers after them would follow nothing of what the tools returned (use a template that writes tool messages)", ErrNoToolSupport, p.templateName())
	}
	return nil
}

func (p *Preprocessor) probeToolList() error {
	tools := fmt.Sprintf(`[{"type": "function", "function": {"name": "%s", "description": "x", "parameters": {"type": "object", "properties": {}}}}]`, probeToolsName)
	msgs := []format.Message{{Role: format.RoleUser, Content: "x"}, {Role: format.RoleAssistant, Content: "y"}}
	s, err := p.render(msgs, tools, false)
	if err != nil {
		return fmt.Errorf("%w: %s fails on a conversation with a list of tools: %w", ErrNoToolSupport, p.templateName(), err)
	}
	if !strings.Contains(s, probeToolsName) {
		return fmt.Errorf("%w: %s does not show the record's list of tools to the model (its \"tools\"), so the model would not be shown the functions it calls (use the model's own template if it has one for tools, or a template that writes the tools variable)", ErrNoToolSupport, p.templateName())
	}
	return nil
}

// CheckTools refuses ex, a conversation or a preference record (its
// prompt with its completions), when it holds tool calls, tool results or
// tools that p's template leaves out (ErrNoToolSupport); Tokenize checks
// its own records.
func (p *Preprocessor) CheckTools(ex format.Example) error {
	msgs := ex.Messages
	for _, r := range []*format.Reply{ex.Chosen, ex.Rejected} {
		if r != nil {
			msgs = append(slices.Clone(msgs), r.Messages...)
		}
	}
	return p.withProbes().checkToolSupport(msgs, ex.Tools)
}
