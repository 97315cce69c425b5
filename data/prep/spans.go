package prep

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ftune/ftune/data/format"
)

// span is a byte range of the rendered text that is learnt.
type span struct{ start, end int }

// DefaultMaxMessages bounds the messages of one record when
// Options.MaxMessages is 0.
const DefaultMaxMessages = 16384

// maxPrefixRenderMessages bounds the records that need a rendering per
// assistant turn (templates that rewrite the content they are given): that
// costs time quadratic in the messages, 47 s for 4,000.
const maxPrefixRenderMessages = 1024

// prefixRenderBudget bounds the bytes those renderings may write for a
// record whose full rendering is n bytes: what they write grows with the
// messages times the record's length, so 1,020 messages of 16 KB (an 11 MB
// record) rendered 35 s of prefixes under the message bound. A
// conversation of a few dozen turns renders a few dozen times its length;
// past 32 times (and a floor of 64 MiB, a second or so of rendering, that
// no record under a few megabytes reaches) the record is refused as over a
// limit, which data.skip_bad skips.
func prefixRenderBudget(n int) int { return 64<<20 + 32*n }

// assistantSpans finds the learnt span of each assistant turn in full,
// the rendering of msgs. A span runs from the end of the header that opens
// the turn (the generation prompt, what the model is given when it
// answers) to the end of the text the template writes to close it: what
// the model produces when it answers, as the rendering holds it.
//
// The conversation is rendered once more with each assistant content
// between markers; with the markers taken out that rendering must be full
// itself, which places every content in full. Templates that keep only
// the tail of a content (Qwen3's splits off a <think> block, and drops it
// from turns before the last user message) lose the opening marker, so a
// second rendering marks only where each content ends, and the turn
// starts after the last header before that. The header is the generation
// prompt or, where the template writes another one before an earlier turn
// (Qwen3's with enable_thinking false adds an empty <think> block to the
// generation prompt only), the header it writes there; both are found once
// by probing the template, as is the end-of-turn text. Templates that fail
// those checks are handled by rendering the conversation up to each turn
// (prefixSpans), which is quadratic and so limited to
// maxPrefixRenderMessages.
func (p *Preprocessor) assistantSpans(msgs []format.Message, tools, full string) ([]span, error) {
	if spans, ok, err := p.markedSpans(msgs, tools, full); err != nil || ok {
		return spans, err
	}
	if len(msgs) > maxPrefixRenderMessages {
		return nil, recordLimitError(fmt.Sprintf("%d messages: the chat template changes the content it is given, so each assistant turn needs a rendering of its own, and records with more than %d messages are refused for that (split the conversation, or set train_on_inputs)", len(msgs), maxPrefixRenderMessages))
	}
	return p.prefixSpans(msgs, tools, full)
}

// Markers put around assistant contents: control characters that no
// tokenizer-bound text is expected to hold (a content that holds one
// takes the prefix-rendering path).
const (
	markOpen  = "\x02ftune-open-"
	markClose = "\x02ftune-close-"
	markEnd   = "\x03"
	markAny   = "\x02ftune-"
)

// markedSpans is the linear path; ok is false when the template does not
// qualify for it (the caller falls back to prefixSpans).
func (p *Preprocessor) markedSpans(msgs []format.Message, tools, full string) (spans []span, ok bool, err error) {
	var turns []int // indices of assistant messages
	for i, m := range msgs {
		if m.Role != format.RoleAssistant {
			continue
		}
		if len(m.ToolCalls) > 0 {
			// Templates write the calls after the content, where a marker
			// after the content does not reach.
			return nil, false, nil
		}
		if strings.Contains(m.Content, markAny) || strings.Contains(m.ReasoningContent, markAny) {
			return nil, false, nil
		}
		turns = append(turns, i)
	}
	if len(turns) == 0 {
		return nil, true, nil
	}
	opens, closes, ok, err := p.markContents(msgs, tools, turns, full, true)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		if _, closes, ok, err = p.markContents(msgs, tools, turns, full, false); err != nil || !ok {
			return nil, false, err
		}
	}
	headers, err := p.turnHeaders()
	if err != nil || len(headers) == 0 {
		return nil, false, err
	}
	turnEnd, err := p.turnEnd()
	if err != nil {
		return nil, false, nil
	}
	prev := 0
	for k, i := range turns {
		// The header is the last one before the content; where the
		// content's start is not marked, a header that the answer itself
		// holds could be found inside it, so it is not used. A turn that
		// opens the conversation has its header too (it began at 0, which
		// learnt the header and whatever the template writes before it).
		hi := closes[k]
		if opens != nil {
			hi = opens[k]
		}
		start := -1
		for _, h := range headers {
			if opens == nil && (strings.Contains(msgs[i].Content, h) || strings.Contains(msgs[i].ReasoningContent, h)) {
				continue
			}
			if g := strings.LastIndex(full[prev:hi], h); g >= 0 {
				start = max(start, prev+g+len(h))
			}
		}
		if start < 0 {
			return nil, false, nil
		}
		end := closes[k]
		if !strings.HasPrefix(full[end:], turnEnd) {
			return nil, false, nil
		}
		end += len(turnEnd)
		spans = append(spans, span{start, end})
		prev = end
	}
	return spans, true, nil
}

// markContents renders msgs with markers after each assistant content
// (turns are their indices), and before it too when withOpen, and gives
// where each content opens (nil without withOpen) and closes in full; ok
// is false unless the rendering without the markers is full.
func (p *Preprocessor) markContents(msgs []format.Message, tools string, turns []int, full string, withOpen bool) (opens, closes []int, ok bool, err error) {
	marked := slices.Clone(msgs)
	for k, i := range turns {
		n := strconv.Itoa(k)
		if withOpen {
			marked[i].Content = markOpen + n + markEnd + marked[i].Content
		}
		marked[i].Content += markClose + n + markEnd
	}
	r, err := p.render(marked, tools, false)
	if err != nil {
		return nil, nil, false, fmt.Errorf("render: %w", err)
	}
	clean, opens, closes, ok := stripMarkers(r, len(turns), withOpen)
	if !ok || clean != full {
		return nil, nil, false, nil
	}
	return opens, closes, true, nil
}

// stripMarkers takes the markers out of r, giving where each turn's
// content opens (when withOpen) and closes in the result; ok is false
// unless every turn has its markers, in order.
func stripMarkers(r string, turns int, withOpen bool) (clean string, opens, closes []int, ok bool) {
	var b strings.Builder
	b.Grow(len(r))
	closes = make([]int, 0, turns)
	if withOpen {
		opens = make([]int, 0, turns)
	}
	for {
		i := strings.Index(r, markAny)
		if i < 0 {
			b.WriteString(r)
			break
		}
		b.WriteString(r[:i])
		r = r[i:]
		j := strings.Index(r, markEnd)
		if j < 0 {
			return "", nil, nil, false
		}
		tag := r[:j]
		r = r[j+len(markEnd):]
		switch {
		case withOpen && tag == markOpen+strconv.Itoa(len(opens)) && len(opens) == len(closes):
			opens = append(opens, b.Len())
		case tag == markClose+strconv.Itoa(len(closes)) && (!withOpen || len(opens) == len(closes)+1):
			closes = append(closes, b.Len())
		default:
			return "", nil, nil, false
		}
	}
	if len(closes) != turns || (withOpen && len(opens) != turns) {
		return "", nil, nil, false
	}
	return b.String(), opens, closes, true
}

// turnHeaders are the texts that can open an assistant turn: the
// generation prompt, and the header the template writes before an
// assistant turn that a user turn follows when that differs. None when
// the template has no generation prompt (the caller then renders
// prefixes).
func (p *Preprocessor) turnHeaders() ([]string, error) {
	gen, ok, err := p.generationPrompt()
	if err != nil || !ok {
		return nil, err
	}
	h := p.historyHeader()
	if h == "" || h == gen {
		return []string{gen}, nil
	}
	return []string{gen, h}, nil
}

// generationPrompt is what add_generation_prompt appends
// ("<|im_start|>assistant\n" for ChatML); ok is false for a template that
// appends nothing or changes the text before it.
func (p *Preprocessor) generationPrompt() (string, bool, error) {
	if pr := p.probes; pr != nil {
		if !pr.genDone {
			pr.gen, pr.genOK, pr.genErr = p.probeGenerationPrompt()
			pr.genDone = true
		}
		return pr.gen, pr.genOK, pr.genErr
	}
	return p.probeGenerationPrompt()
}

// templateProbes memoises what is probed from the template, for one
// Tokenize or TokenizeAll call (three renderings per record otherwise).
type templateProbes struct {
	gen, end, history                 string
	genOK                             bool
	genErr, endErr                    error
	genDone, endDone, historyDone     bool
	callsErr, resultsErr, toolsErr    error // tools.go
	callsDone, resultsDone, toolsDone bool
}

// withProbes returns p, or a copy of it that memoises the template probes
// when it has none yet.
func (p *Preprocessor) withProbes() *Preprocessor {
	if p.probes != nil {
		return p
	}
	c := *p
	c.probes = &templateProbes{}
	return &c
}

// historyHeader is what the template writes before an assistant turn
// that a user turn follows ("" when the probe finds nothing usable): the
// generation prompt's counterpart in history, which thinking templates
// write differently (Qwen3's with enable_thinking false).
func (p *Preprocessor) historyHeader() string {
	if pr := p.probes; pr != nil {
		if !pr.historyDone {
			pr.history, pr.historyDone = p.probeHistoryHeader(), true
		}
		return pr.history
	}
	return p.probeHistoryHeader()
}

func (p *Preprocessor) probeHistoryHeader() string {
	const sentinel = "\x00ftune-sentinel\x00"
	before, err := p.render([]format.Message{{Role: format.RoleUser, Content: "x"}}, "", false)
	if err != nil {
		return ""
	}
	s, err := p.render([]format.Message{{Role: format.RoleUser, Content: "x"}, {Role: format.RoleAssistant, Content: sentinel}, {Role: format.RoleUser, Content: "y"}}, "", false)
	if err != nil || !strings.HasPrefix(s, before) {
		return ""
	}
	i := strings.Index(s[len(before):], sentinel)
	if i <= 0 || strings.TrimSpace(s[len(before):len(before)+i]) == "" {
		return ""
	}
	return s[len(before) : len(before)+i]
}

func (p *Preprocessor) probeGenerationPrompt() (string, bool, error) {
	probe := []format.Message{{Role: format.RoleUser, Content: "x"}}
	without, err := p.render(probe, "", false)
	if err != nil {
		return "", false, probeError{err}
	}
	with, err := p.render(probe, "", true)
	if err != nil {
		return "", false, probeError{err}
	}
	if !strings.HasPrefix(with, without) || len(with) == len(without) {
		return "", false, nil
	}
	return with[len(without):], true, nil
}

// prefixSpans finds each assistant turn in the full rendering by
// rendering the conversation up to it: the text added by the turn starts
// where the prefix with a generation prompt ends and ends where the prefix
// including the turn ends. That needs templates whose rendering of a
// prefix is a prefix of the full rendering. Some render the last assistant
// turn differently (Qwen3 adds an empty <think> block to it only); for
// those the turn is found where its content follows the prefix in the full
// rendering, followed by the template's end-of-turn text.
func (p *Preprocessor) prefixSpans(msgs []format.Message, tools, full string) ([]span, error) {
	var spans []span
	turnEnd := ""
	rendered, budget := 0, prefixRenderBudget(len(full))
	overBudget := func(i int) error {
		return recordLimitError(fmt.Sprintf("%d messages, %d bytes rendered: the chat template changes the content it is given, so each assistant turn needs a rendering of the conversation up to it, and by message %d those renderings ran past %d MiB, 32 times the record's length and 64 MiB more (split the conversation, or set train_on_inputs)", len(msgs), len(full), i, budget>>20))
	}
	for i, m := range msgs {
		if m.Role != format.RoleAssistant {
			continue
		}
		pre := ""
		if i > 0 {
			var err error
			if pre, err = p.render(msgs[:i], tools, true); err != nil {
				return nil, fmt.Errorf("render prefix before message %d: %w", i, err)
			}
			if rendered += len(pre); rendered > budget {
				return nil, overBudget(i)
			}
		}
		upto, err := p.render(msgs[:i+1], tools, false)
		if err != nil {
			return nil, fmt.Errorf("render through message %d: %w", i, err)
		}
		if rendered += len(upto); rendered > budget {
			return nil, overBudget(i)
		}
		if i == 0 {
			if pre, err = p.openingPrefix(m, tools, full, upto); err != nil {
				return nil, err
			}
		}
		if strings.HasPrefix(full, upto) && strings.HasPrefix(upto, pre) {
			// Nothing between the prefix and the prefix with the turn: the
			// template left the answer out, and the span would be empty.
			if len(upto) == len(pre) && strings.TrimSpace(m.Content) != "" {
				return nil, p.noAnswer(i)
			}
			spans = append(spans, span{len(pre), len(upto)})
			continue
		}
		if len(m.ToolCalls) > 0 && strings.HasPrefix(full, pre) && strings.HasPrefix(upto, pre) {
			// A turn with tool calls cannot be placed by its content,
			// which the calls follow. The template wrote it as the last
			// turn in upto; in full, where it is not the last, it is the
			// longest end of that text (Qwen3 writes an empty <think>
			// block before the last turn only), holding every call.
			if n := turnInFull(upto[len(pre):], full[len(pre):], m); n > 0 {
				spans = append(spans, span{len(pre), len(pre) + n})
				continue
			}
		}
		// A turn placed by its content alone would leave out its tool
		// calls, which the template writes around the content.
		if len(m.ToolCalls) == 0 && strings.HasPrefix(full, pre) && strings.HasPrefix(full[len(pre):], m.Content) {
			if turnEnd == "" {
				if turnEnd, err = p.turnEnd(); err != nil {
					return nil, err
				}
			}
			end := len(pre) + len(m.Content)
			if strings.HasPrefix(full[end:], turnEnd) {
				end += len(turnEnd)
			}
			spans = append(spans, span{len(pre), end})
			continue
		}
		// A template that rewrites answers is told apart from one that
		// writes none: the latter leaves out even a one-turn probe's.
		if _, err := p.turnEnd(); errors.Is(err, ErrNotPrefixStable) {
			return nil, p.noAnswer(i)
		}
		return nil, fmt.Errorf("%w at message %d: its answer cannot be found in the rendering of the whole conversation (the template rewrites it there), and response-only masking needs it: set train_on_inputs, or use a template that writes answers as given", ErrNotPrefixStable, i)
	}
	return spans, nil
}

// openingPrefix is, for a conversation that assistant message m opens
// (upto is its rendering through m, full the whole), the text before m's
// answer: its header, and what the template writes before it (BOS, a
// default system prompt). It is context, as every other turn's header; a
// span from 0 learnt it. That text is the rendering of no message with a
// generation prompt, as for a later turn, where the template renders that
// and full starts with it; else the rendering through m up to the end of
// the last header (turnHeaders) in it, as markedSpans finds headers; else
// "" (nothing found: the turn is learnt from the start).
func (p *Preprocessor) openingPrefix(m format.Message, tools, full, upto string) (string, error) {
	if g, err := p.render(nil, tools, true); err == nil && g != "" && strings.HasPrefix(full, g) && strings.HasPrefix(upto, g) {
		return g, nil
	}
	headers, err := p.turnHeaders()
	if err != nil {
		return "", err
	}
	start := -1
	for _, h := range headers {
		if strings.Contains(m.Content, h) || strings.Contains(m.ReasoningContent, h) {
			continue // it could be found inside the answer
		}
		if g := strings.LastIndex(upto, h); g >= 0 {
			start = max(start, g+len(h))
		}
	}
	if start < 0 || !strings.HasPrefix(full, upto[:start]) {
		return "", nil
	}
	return upto[:start], nil
}

// turnInFull is the length of the longest end of turn (an assistant
// turn rendered as the conversation's last) that rest (the full
// rendering from where the turn starts) begins with, if that end holds
// the message's content and each of its calls' names; 0 when none does.
func turnInFull(turn, rest string, m format.Message) int {
	n := suffixPrefix(turn, rest)
	end := turn[len(turn)-n:]
	if n == 0 || !strings.Contains(end, strings.TrimSpace(m.Content)) {
		return 0
	}
	for _, c := range m.ToolCalls {
		if !strings.Contains(end, c.Name) {
			return 0
		}
	}
	return n
}

// suffixPrefix is the length of the longest end of a that b begins with,
// found in time linear in their lengths (Knuth-Morris-Pratt: b's prefixes
// matched along a), since a turn is as long as a record allows and
// trying each end in turn is quadratic.
func suffixPrefix(a, b string) int {
	p := b[:min(len(a), len(b))]
	if len(p) == 0 {
		return 0
	}
	fail := make([]int32, len(p)) // fail[i]: the longest proper border of p[:i+1]
	for i, k := 1, int32(0); i < len(p); i++ {
		for k > 0 && p[i] != p[k] {
			k = fail[k-1]
		}
		if p[i] == p[k] {
			k++
		}
		fail[i] = k
	}
	q := int32(0) // how much of p ends at a's current byte
	for i := 0; i < len(a); i++ {
		for q > 0 && (int(q) == len(p) || a[i] != p[q]) {
			q = fail[q-1]
		}
		if a[i] == p[q] {
			q++
		}
	}
	return int(q)
}

// noAnswer is the error for assistant message i, which the template does
// not write.
func (p *Preprocessor) noAnswer(i int) error {
	return fmt.Errorf("%w: %s did not render the assistant's answer in message %d, so nothing of it could be learnt (only the end-of-text token): the template may test for role names ftune does not give it (messages have the roles system, user and assistant; ShareGPT's human and gpt are renamed)", ErrNoAnswer, p.templateName(), i)
}

// turnEnd is what the template writes after an assistant's content
// ("<|im_end|>\n" for ChatML), found by rendering a sentinel answer.
func (p *Preprocessor) turnEnd() (string, error) {
	if pr := p.probes; pr != nil {
		if !pr.endDone {
			pr.end, pr.endErr = p.probeTurnEnd()
			pr.endDone = true
		}
		return pr.end, pr.endErr
	}
	return p.probeTurnEnd()
}

func (p *Preprocessor) probeTurnEnd() (string, error) {
	const sentinel = "\x00ftune-sentinel\x00"
	s, err := p.render([]format.Message{{Role: format.RoleUser, Content: "x"}, {Role: format.RoleAssistant, Content: sentinel}}, "", false)
	if err != nil {
		return "", probeError{err}
	}
	i := strings.LastIndex(s, sentinel)
	if i < 0 {
		return "", fmt.Errorf("%w: the template does not write the assistant's content verbatim", ErrNotPrefixStable)
	}
	return s[i+len(sentinel):], nil
}
