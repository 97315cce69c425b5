package chat

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"

	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/internal/fsutil"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// ReasoningContent is an assistant turn's thinking, for templates
	// that read message.reasoning_content (Qwen3 puts it in a <think>
	// block). Empty means absent: the template sees no such key, as
	// transformers' templates do for a message without it.
	ReasoningContent string `json:"reasoning_content,omitempty"`
	// ToolCalls are the functions an assistant message calls; its
	// Content may then be empty. Templates see them as transformers
	// gives them: message.tool_calls, each {"id", "type": "function",
	// "function": {"name", "arguments"}} with the arguments an object.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID and Name belong to a tool message (role "tool"): the id
	// of the call it answers and the function's name, each absent from
	// the template's message when empty.
	ToolCallID string `json:"tool_call_id,omitempty"`
	Name       string `json:"name,omitempty"`
}

// ToolCall is one function call of an assistant message.
type ToolCall struct {
	// ID is the call's id; empty: none (the template's call has no id).
	ID   string
	Name string
	// Arguments is a JSON object ("{}" for none).
	Arguments string
}

// toolCallJSON is a ToolCall in OpenAI's and transformers' layout.
type toolCallJSON struct {
	ID       string `json:"id,omitempty"`
	Type     string `json:"type"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// MarshalJSON writes c in OpenAI's layout with the arguments as an object
// (transformers' way): {"id": ..., "type": "function", "function":
// {"name": ..., "arguments": {...}}}.
func (c ToolCall) MarshalJSON() ([]byte, error) {
	var j toolCallJSON
	j.ID, j.Type, j.Function.Name = c.ID, "function", c.Name
	args, err := argumentsObject(c.Arguments)
	if err != nil {
		return nil, fmt.Errorf("tool call %q: %w", c.Name, err)
	}
	j.Function.Arguments = json.RawMessage(args)
	return json.Marshal(j)
}

// UnmarshalJSON reads OpenAI's layout, the arguments an object or a
// string holding one.
func (c *ToolCall) UnmarshalJSON(b []byte) error {
	var j toolCallJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.Type != "" && j.Type != "function" {
		return fmt.Errorf("tool call type %q: only \"function\" calls exist", j.Type)
	}
	args := string(j.Function.Arguments)
	var s string
	if json.Unmarshal(j.Function.Arguments, &s) == nil {
		args = s
	}
	args, err := argumentsObject(args)
	if err != nil {
		return fmt.Errorf("tool call %q: %w", j.Function.Name, err)
	}
	*c = ToolCall{ID: j.ID, Name: j.Function.Name, Arguments: args}
	return nil
}

// argumentsObject checks that args is one JSON object ("" is "{}").
func argumentsObject(args string) (string, error) {
	if _, err := decodeArguments(args); err != nil {
		return "", err
	}
	return cmp.Or(strings.TrimSpace(args), "{}"), nil
}

// decodeArguments decodes a tool call's arguments, one JSON object ("" is
// the empty one): an *exec.Dict, or decodeJSON's empty map.
func decodeArguments(args string) (any, error) {
	v, err := decodeJSON(cmp.Or(strings.TrimSpace(args), "{}"))
	if err != nil {
		return nil, fmt.Errorf("arguments: %w", err)
	}
	switch v.(type) {
	case *exec.Dict, map[string]any:
		return v, nil
	}
	return nil, fmt.Errorf("arguments: expected a JSON object, got %.40s", args)
}

// RenderOptions are the arguments of RenderWith beyond the messages.
type RenderOptions struct {
	// AddGenerationPrompt appends the prompt that starts the assistant's
	// turn.
	AddGenerationPrompt bool
	// Vars are extra template variables, as transformers'
	// apply_chat_template passes its keyword arguments (enable_thinking
	// for Qwen3). They may not replace the variables Render sets.
	Vars map[string]any
	// Tools are the functions the model may call, a JSON list of their
	// schemas (transformers' tools argument: usually {"type": "function",
	// "function": {"name", "description", "parameters"}}); the template
	// sees them as the variable tools, or no such variable when empty.
	Tools string
	// Now is the time the template's strftime_now reads (zero: the
	// clock's, as transformers' datetime.now()): templates that write
	// today's date (Granite's system prompt) render alike on any day
	// when it is set.
	Now time.Time
}

// Roles accepted by Render.
var Roles = []string{"system", "user", "assistant", "tool"}

// ErrUnknownRole is wrapped by Render's error for a message whose role is
// not one of Roles.
var ErrUnknownRole = errors.New("unknown role")

// ErrBadTools is wrapped by Render's error for a tool call whose
// arguments are not a JSON object, or tools that are not a JSON list.
var ErrBadTools = errors.New("bad tool call or tool list")

// MaxTemplateBytes bounds a chat template file read whole (a folder's
// chat_template.jinja, a --template file). Real templates are a few
// kilobytes; a model folder's file is untrusted.
const MaxTemplateBytes = 16 << 20

// ErrNoTemplate is returned by Load for a folder without a chat template.
var ErrNoTemplate = errors.New("no chat template")

// TemplateError is a failure inside a template, including its own
// raise_exception calls (Message is then the template's text).
type TemplateError struct {
	Name    string
	Message string
	// Err is the cause when it is one of the package's (ErrBudget,
	// ErrNesting) or a context's (context.Canceled); nil otherwise.
	Err error
}

func (e *TemplateError) Error() string {
	return fmt.Sprintf("chat template %s: %s", e.Name, e.Message)
}

func (e *TemplateError) Unwrap() error { return e.Err }

// Template is a compiled chat template. It is safe for concurrent use.
type Template struct {
	name     string
	source   string
	tpl      *exec.Template
	bosToken string
	eosToken string
	limits   Limits
}

// Name says where the template came from ("chat_template.jinja",
// "tokenizer_config.json", "builtin:chatml", ...).
func (t *Template) Name() string { return t.name }

// Source is the Jinja source.
func (t *Template) Source() string { return t.source }

// Hash is the sha256 of the source and special tokens, for caches that a
// changed template must invalidate.
func (t *Template) Hash() string {
	h := sha256.Sum256([]byte(t.source + "\x00" + t.bosToken + "\x00" + t.eosToken))
	return hex.EncodeToString(h[:])
}

// Load finds the chat template of a Hugging Face model folder:
// chat_template.jinja first (transformers v5), then tokenizer_config.json's
// chat_template (its "default" entry when it is a list). bos_token and
// eos_token come from tokenizer_config.json when present.
func Load(dir string) (*Template, error) {
	var cfg *tokenizer.Config
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	if _, err := os.Stat(cfgPath); err == nil {
		if cfg, err = tokenizer.ReadConfig(cfgPath); err != nil {
			return nil, err
		}
	}
	bos, eos := "", ""
	if cfg != nil {
		bos, eos = cfg.BOSToken, cfg.EOSToken
	}
	jinjaPath := filepath.Join(dir, TemplateFile)
	if src, err := fsutil.ReadFileLimit(jinjaPath, MaxTemplateBytes); err == nil {
		return New(jinjaPath, string(src), bos, eos)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load chat template: %w", err)
	}
	if cfg != nil {
		if src, ok := cfg.ChatTemplates["default"]; ok {
			return New(cfgPath+": chat_template", src, bos, eos)
		}
		if len(cfg.ChatTemplates) > 0 {
			return nil, fmt.Errorf("%s: chat_template has no \"default\" entry: %w", cfgPath, ErrNoTemplate)
		}
	}
	return nil, fmt.Errorf("%s: %w (no chat_template.jinja, no chat_template in tokenizer_config.json)", dir, ErrNoTemplate)
}

// New compiles a Jinja chat template; name is used in errors. Renderings
// run under DefaultLimits.
func New(name, source, bosToken, eosToken string) (*Template, error) {
	return compileLimited(name, source, bosToken, eosToken, DefaultLimits)
}

// TemplateFile is the chat template's file in a model or adapter folder
// (transformers v5; since 4.47 it wins over tokenizer_config.json's
// chat_template).
const TemplateFile = "chat_template.jinja"

// WithSource compiles another template source with t's special tokens
// and limits: an adapter's own template (the one it was trained with) on
// its base's tokenizer.
func (t *Template) WithSource(name, source string) (*Template, error) {
	return compileLimited(name, source, t.bosToken, t.eosToken, t.limits)
}

// WithLimits returns a copy of t whose renderings run under l.
func (t *Template) WithLimits(l Limits) (*Template, error) {
	return compileLimited(t.name, t.source, t.bosToken, t.eosToken, l)
}

// Limits are the limits t renders under.
func (t *Template) Limits() Limits { return t.limits }

// jinjaConfig is gonja's configuration for chat templates: transformers
// renders with trim_blocks and lstrip_blocks, and templates are written
// for that whitespace handling.
func jinjaConfig() *config.Config {
	cfg := config.New()
	cfg.TrimBlocks = true
	cfg.LeftStripBlocks = true
	return cfg
}

func compileLimited(name, source, bosToken, eosToken string, limits Limits) (*Template, error) {
	cfg := jinjaConfig()
	const id = "/template"
	if strings.Contains(source, reservedPrefix) {
		return nil, &TemplateError{Name: name, Message: fmt.Sprintf("names starting with %s are reserved", reservedPrefix)}
	}
	// Conditional expressions gonja cannot parse are rewritten first
	// (inlineif.go); Source and Hash stay those of the template as given.
	rewritten := rewriteInlineIf(source)
	if _, err := checkNesting(rewritten, cfg); err != nil {
		return nil, &TemplateError{Name: name, Message: err.Error(), Err: ErrNesting}
	}
	loader, err := loaders.NewMemoryLoader(map[string]string{id: rewritten})
	if err != nil {
		return nil, &TemplateError{Name: name, Message: err.Error()}
	}
	env := *gonja.DefaultEnvironment
	if env.ControlStructures, err = guardedControlStructures(); err != nil {
		return nil, &TemplateError{Name: name, Message: err.Error()}
	}
	if env.Filters, err = guardFilters(); err != nil {
		return nil, &TemplateError{Name: name, Message: err.Error()}
	}
	if env.Tests, err = pyTests(); err != nil {
		return nil, &TemplateError{Name: name, Message: err.Error()}
	}
	if env.Methods, err = guardStrMethods(limits); err != nil {
		return nil, &TemplateError{Name: name, Message: err.Error()}
	}
	if env.Methods, err = immutableMethods(env.Methods); err != nil {
		return nil, &TemplateError{Name: name, Message: err.Error()}
	}
	funcs := map[string]any{
		"raise_exception": raiseException,
		"strftime_now":    strftimeNow,
		"namespace":       namespaceFunction,
		"dict":            checkedDict,
		"range":           boundedRange,
		"lipsum":          noLipsum,
	}
	for k, f := range operatorFunctions {
		funcs[k] = f
	}
	prints := &printTable{}
	funcs[printName] = prints.print
	env.Context = exec.EmptyContext().Update(gonja.DefaultContext).Update(exec.NewContext(funcs))
	tpl, err := compile(id, cfg, loader, &env)
	if err != nil {
		return nil, &TemplateError{Name: name, Message: parseErrorMessage(err)}
	}
	// The renderer's RootNode is the compiled tree itself; rewriting it
	// puts the operator guards into every later rendering. It is measured
	// first: rewriting descends it recursively, as rendering does.
	probe := exec.NewRenderer(&exec.Environment{Context: exec.EmptyContext()}, io.Discard, cfg, loader, tpl)
	if _, err := checkSyntaxDepth(probe.RootNode); err != nil {
		return nil, &TemplateError{Name: name, Message: err.Error(), Err: ErrNesting}
	}
	rewriteOperators(probe.RootNode, prints)
	return &Template{name: name, source: source, tpl: tpl, bosToken: bosToken, eosToken: eosToken, limits: limits}, nil
}

// noLipsum replaces lipsum(n), which writes n paragraphs: no chat
// template needs placeholder text.
func noLipsum(*exec.VarArgs) (string, error) {
	return "", errors.New("lipsum is not available in chat templates")
}

// compile turns a panic of the Jinja parser into an error: the template is
// user input and must never take the process down.
func compile(id string, cfg *config.Config, loader loaders.Loader, env *exec.Environment) (tpl *exec.Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			tpl, err = nil, fmt.Errorf("parser failure: %v", r)
		}
	}()
	return exec.NewTemplate(id, cfg, loader, env)
}

// raisedPrefix marks errors from the template's raise_exception, so Render
// can report the template's own message.
const raisedPrefix = "raise_exception: "

func raiseException(msg string) (string, error) {
	return "", errors.New(raisedPrefix + msg)
}

func strftimeNow(format string) (string, error) {
	return strftime(time.Now(), format), nil
}

// Render renders msgs; addGenerationPrompt appends the prompt that starts
// the assistant's turn. It is RenderContext without cancellation.
func (t *Template) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	return t.RenderContext(context.Background(), msgs, addGenerationPrompt)
}

// RenderContext renders msgs under t's Limits; cancelling ctx stops the
// rendering (the error wraps the context's). An error naming the template
// wraps ErrBudget when a limit stopped it.
func (t *Template) RenderContext(ctx context.Context, msgs []Message, addGenerationPrompt bool) (string, error) {
	return t.RenderWith(ctx, msgs, RenderOptions{AddGenerationPrompt: addGenerationPrompt})
}

// RenderWith is RenderContext with template variables beyond the messages
// (opts.Vars).
func (t *Template) RenderWith(ctx context.Context, msgs []Message, opts RenderOptions) (string, error) {
	list := make([]any, len(msgs))
	for i, m := range msgs {
		if !validRole(m.Role) {
			return "", fmt.Errorf("chat: message %d: role %q: %w (expected one of %s)", i, m.Role, ErrUnknownRole, strings.Join(Roles, ", "))
		}
		msg, err := templateMessage(m)
		if err != nil {
			return "", fmt.Errorf("chat: message %d: %w: %w", i, ErrBadTools, err)
		}
		list[i] = msg
	}
	vars := map[string]any{
		"messages":              list,
		"add_generation_prompt": opts.AddGenerationPrompt,
		"bos_token":             t.bosToken,
		"eos_token":             t.eosToken,
		nsKey:                   &namespaces{},
	}
	if opts.Tools != "" {
		tools, err := decodeJSON(opts.Tools)
		if err != nil {
			return "", fmt.Errorf("chat: tools: %w: %w", ErrBadTools, err)
		}
		if _, ok := tools.([]any); !ok {
			return "", fmt.Errorf("chat: tools: %w: expected a JSON list of tool schemas, got %.40s", ErrBadTools, opts.Tools)
		}
		vars["tools"] = tools
	}
	if !opts.Now.IsZero() {
		vars["strftime_now"] = func(format string) (string, error) { return strftime(opts.Now, format), nil }
	}
	b := newBudget(t.limits)
	vars[budgetKey] = b
	for k, v := range opts.Vars {
		if _, taken := vars[k]; taken {
			return "", fmt.Errorf("chat: template variable %q is set by the renderer and cannot be passed in RenderOptions.Vars", k)
		}
		vars[k] = v
	}
	out, err, finished := watch(ctx, b, func() (string, error) { return t.execute(vars, b) })
	if err != nil {
		return "", t.renderError(err, b, finished)
	}
	return out, nil
}

// templateMessage is m as the template sees it: the keys transformers'
// messages have, those of empty fields absent.
func templateMessage(m Message) (map[string]any, error) {
	msg := map[string]any{"role": m.Role, "content": m.Content}
	if m.ReasoningContent != "" {
		msg["reasoning_content"] = m.ReasoningContent
	}
	if len(m.ToolCalls) > 0 {
		calls := make([]any, len(m.ToolCalls))
		for k, c := range m.ToolCalls {
			args, err := decodeArguments(c.Arguments)
			if err != nil {
				return nil, fmt.Errorf("tool call %d (%s): %w", k, c.Name, err)
			}
			fn := exec.NewDict()
			fn.Pairs = append(fn.Pairs, pair("name", c.Name), pair("arguments", args))
			call := exec.NewDict()
			if c.ID != "" {
				call.Pairs = append(call.Pairs, pair("id", c.ID))
			}
			call.Pairs = append(call.Pairs, pair("type", "function"), pair("function", fn))
			calls[k] = call
		}
		msg["tool_calls"] = calls
	}
	if m.ToolCallID != "" {
		msg["tool_call_id"] = m.ToolCallID
	}
	if m.Name != "" {
		msg["name"] = m.Name
	}
	return msg, nil
}

func pair(key string, v any) *exec.Pair {
	return &exec.Pair{Key: exec.AsValue(key), Value: exec.AsValue(v)}
}

func (t *Template) execute(vars map[string]any, b *budget) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("render failure: %v", r)
		}
	}()
	w := &boundedWriter{b: b}
	if err := t.tpl.Execute(w, exec.NewContext(vars)); err != nil {
		return "", err
	}
	return string(w.buf), nil
}

func validRole(r string) bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}
