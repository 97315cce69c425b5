// Package chat renders conversations into the text a model was trained on,
// with the model's own Hugging Face chat template (Jinja) or a built-in one.
//
// Templates come from chat_template.jinja (transformers v5 layout) or the
// chat_template field of tokenizer_config.json (v4: a string, or a list of
// named templates of which "default" is used). They are rendered with
// github.com/nikolalohinski/gonja/v2 configured as transformers configures
// Jinja (trim_blocks and lstrip_blocks on), with the variables transformers'
// apply_chat_template passes: messages, add_generation_prompt, bos_token,
// eos_token and the raise_exception and strftime_now helpers, and tools
// when RenderOptions.Tools has some (documents stay undefined). A
// Message's tool calls reach the template as message.tool_calls in
// transformers' layout ({"id", "type": "function", "function": {"name",
// "arguments": an object}}), a tool result's id and a name as
// message.tool_call_id and message.name. JSON values (tools, arguments)
// are what Python's json.loads makes of them (objects keep their key
// order), and tojson is Python's json.dumps as transformers defines it
// (pyjson.go); dict views and |items keep that order; subscripts are
// Python's (x[-1] of one item, strings by character: rewrite.go, where
// gonja's missed). RenderWith passes more variables, as
// apply_chat_template passes its keyword arguments (Qwen3's
// enable_thinking), and a Message's ReasoningContent reaches the template
// as message.reasoning_content. Conditional expressions gonja cannot parse
// (inside parentheses, arguments, lists, set; Gemma 3's template) are
// rewritten before parsing into an equivalent it reads (inlineif.go). %
// is Python's, as in Jinja: printf-style formatting with a string on the
// left (and in the format filter), modulo with the divisor's sign between
// numbers (printf.go); gonja's took both sides as integers.
// transformers' {% generation %}...{% endgeneration %} block (SmolLM3's
// template wraps each assistant turn in it, for
// return_assistant_tokens_mask) is accepted and rendered transparently:
// its body as written, in a scope of its own as in transformers
// (generation.go). ftune does not take answer spans from the block: they
// come from its own renders of the conversation's prefixes (data/prep).
// str.replace takes Python's optional count.
//
// Elsewhere too templates get Python's semantics where gonja's differ
// (pystr.go, pyprint.go, rewrite.go). An empty dict is false: a {}
// literal, dict() and JSON's {} are an empty Go map (gonja takes every
// ordered dict for true; gpt-oss's template tests a tool's empty
// properties). dictsort sorts dict literals, JSON objects and messages as
// Jinja's does; dict.get and copy keep a JSON object's order; d[k] finds
// keys that are not strings (d[16384]); a method call on a parenthesized
// expression ((x|trim).replace(...)) has its receiver. The str methods
// split, rsplit, strip, lstrip and rstrip default to whitespace (gonja's
// refused SmolLM3's .split()), startswith and endswith take tuples and
// positions (an empty string does not end with 'x'), find, rfind, index,
// rindex and count count characters, not bytes, with Python's start and
// end (content[content.find('</think>') + 8:] cuts UTF-8 text where
// Python does), and str methods return Go strings (tojson took none of
// gonja's). dict(b=1, a=2) keeps its keywords' order, after the items of
// a positional mapping or list of pairs (pydict.go; gonja's kept them in
// a Go map and dropped the positional argument). trim and the case
// filters take soft_str of anything (undefined|trim is ""); is number
// and is integer hold for integers past 64 bits. Printing is Python's str(): {{ x }}, ~, |string,
// |join and %s print None as None and lists and dicts as their repr
// (quoted, escaped strings; a JSON object in its order). gonja has one nil
// for undefined and None, so None is marked where it is known (JSON's
// null, the none literal, dict.get of a missing key) by a typed nil
// pointer that gonja still takes for nil: is defined, is none and truth
// are gonja's for both, and undefined prints as "", as in Jinja.
//
// A template comes from a downloaded model folder, and gonja, unlike Python's
// Jinja, overflows the Go stack (a fatal error, not a panic) on whatever
// nests without end: brackets and blocks when it parses, the parsed tree
// when it renders, macro calls, and lists, dicts and namespaces when it
// prints, compares, sorts or serializes them. So each nesting is bounded,
// and a template past a bound fails with a TemplateError wrapping
// ErrNesting and naming what and where: brackets and blocks 256 deep
// (counted on gonja's own tokens before it parses), the parsed tree 1,024
// levels, macro and recursive loop() calls 64 nested in all, values 512
// deep. Values are measured where they can grow (each {% set %}, with every
// namespace; a macro's or loop()'s arguments; literals, + on lists, dict(),
// namespace(), batch, slice): one that contains itself is refused, and one
// whose shared parts, counted each time they appear, would print as more
// than 4 × MaxOutput bytes is refused with ErrBudget. As in transformers'
// immutable sandbox, lists and dicts cannot be changed (append, update and
// the like are refused), and, as in Jinja, attributes are set on
// namespaces only; names starting with __ftune are reserved for the
// guards; include/import/extends/block (which transformers' loader-less
// environment cannot run either) are rejected.
//
// A template is code, so every rendering runs under Limits (DefaultLimits
// unless WithLimits): rendered bytes, the size of any string the template
// builds, loop iterations plus range() items plus macro calls, wall time
// and heap growth. range() counts its items before making them, batch and
// slice their counts; *, + and ~
// are rewritten when the template is compiled into calls that check sizes
// first; filters and str methods that pad, indent, join or replace check
// their arguments; a watchdog goroutine stops the rendering on timeout,
// heap growth or cancellation of RenderContext's context. A stopped
// rendering is a TemplateError naming the template and wrapping ErrBudget
// (or the context's error). Errors are one line: parse errors with the
// real position or none, gonja's chains cut to the outermost line and the
// innermost cause.
//
// Render checks roles before rendering (system, user, assistant, tool) so an
// unknown role is an error naming the message, not whatever the template
// would make of it; a template's raise_exception becomes an error carrying
// its message.
package chat
