package prep

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/ftune/ftune/data/format"
)

// IgnoreIndex marks a label that is not learnt (PyTorch's and Hugging
// Face's ignore_index for cross-entropy).
const IgnoreIndex = -100

// Encoder turns text into token ids. addSpecial adds the tokenizer's
// post-processor tokens (BOS for Llama-family tokenizers).
type Encoder interface {
	Encode(text string, addSpecial bool) ([]int, error)
}

// OffsetEncoder is an Encoder that also gives each token's byte span
// [start, end) in text. When the encoder has it, chats are encoded once as
// a whole and labels follow the spans, so ids are exactly those of the
// whole rendered text. Tokens added by the post-processor have start == end.
type OffsetEncoder interface {
	Encoder
	EncodeOffsets(text string, addSpecial bool) (ids []int, offsets [][2]int, err error)
}

// PrefixEncoder is an Encoder that can stop early: EncodePrefix returns the
// first ids of Encode(text, addSpecial), all of them when there are at most
// n and more than n otherwise, without encoding more of the text than
// that takes (data/tokenizer's EncodePrefix). With Options.MaxLen set, a
// record is encoded through it, so a 64 MiB text truncated to MaxLen
// tokens costs memory and time for about MaxLen tokens, not for the text.
type PrefixEncoder interface {
	Encoder
	EncodePrefix(text string, addSpecial bool, n int) ([]int, error)
}

// PrefixOffsetEncoder is OffsetEncoder as PrefixEncoder is Encoder.
type PrefixOffsetEncoder interface {
	OffsetEncoder
	EncodeOffsetsPrefix(text string, addSpecial bool, n int) (ids []int, offsets [][2]int, err error)
}

// Renderer renders a conversation with a chat template.
type Renderer interface {
	Render(msgs []format.Message, addGenerationPrompt bool) (string, error)
}

// ContextRenderer is a Renderer that can be stopped: a chat template is
// code from a model folder, and its rendering honours cancellation
// (chat.Template.RenderContext).
type ContextRenderer interface {
	Renderer
	RenderContext(ctx context.Context, msgs []format.Message, addGenerationPrompt bool) (string, error)
}

// ContextRenderFunc adapts a function to ContextRenderer.
type ContextRenderFunc func(ctx context.Context, msgs []format.Message, addGenerationPrompt bool) (string, error)

func (f ContextRenderFunc) Render(msgs []format.Message, g bool) (string, error) {
	return f(context.Background(), msgs, g)
}

func (f ContextRenderFunc) RenderContext(ctx context.Context, msgs []format.Message, g bool) (string, error) {
	return f(ctx, msgs, g)
}

// ToolRenderer is a ContextRenderer that can also show a template the
// tools a conversation may call (format.Example.Tools: chat.Template's
// RenderOptions.Tools). A Renderer without it refuses records that list
// tools.
type ToolRenderer interface {
	ContextRenderer
	RenderTools(ctx context.Context, msgs []format.Message, tools string, addGenerationPrompt bool) (string, error)
}

// ToolRenderFunc adapts a function to ToolRenderer; tools is "" for none.
type ToolRenderFunc func(ctx context.Context, msgs []format.Message, tools string, addGenerationPrompt bool) (string, error)

func (f ToolRenderFunc) Render(msgs []format.Message, g bool) (string, error) {
	return f(context.Background(), msgs, "", g)
}

func (f ToolRenderFunc) RenderContext(ctx context.Context, msgs []format.Message, g bool) (string, error) {
	return f(ctx, msgs, "", g)
}

func (f ToolRenderFunc) RenderTools(ctx context.Context, msgs []format.Message, tools string, g bool) (string, error) {
	return f(ctx, msgs, tools, g)
}

// EncoderFunc adapts a function to Encoder.
type EncoderFunc func(text string, addSpecial bool) ([]int, error)

func (f EncoderFunc) Encode(text string, addSpecial bool) ([]int, error) { return f(text, addSpecial) }

// RenderFunc adapts a function (e.g. a closure over a chat.Template that
// converts the message type) to Renderer.
type RenderFunc func(msgs []format.Message, addGenerationPrompt bool) (string, error)

func (f RenderFunc) Render(msgs []format.Message, g bool) (string, error) { return f(msgs, g) }

// Overflow says what happens to an example longer than MaxLen.
type Overflow int

const (
	Truncate Overflow = iota // keep the first MaxLen tokens
	Drop                     // skip the example
	// Split keeps a plain-text example whole, for SplitLong to cut into
	// pieces of MaxLen tokens that are all trained on, as continued
	// pretraining cuts a corpus into blocks (Hugging Face's run_clm,
	// LLaMA-Factory's pt stage) rather than losing all but its start.
	// Conversations and prompt/answer examples are still truncated: a
	// piece of one would hold an answer without its question.
	Split
)

// Options of Preprocessor. The zero value learns responses only, appends
// EOS and keeps any length.
type Options struct {
	// TrainOnInputs learns every token, prompts included.
	TrainOnInputs bool
	// MaskHistory learns only a conversation's last assistant answer (as
	// LLaMA-Factory's mask_history): the earlier ones are context, as if
	// their weight were 0.
	MaskHistory bool
	// MaxLen bounds an example in tokens (0: no bound). For packing it
	// must not exceed the row length.
	MaxLen   int
	Overflow Overflow
	// NoEOS turns off appending EOS to each example.
	NoEOS bool
	// MaxMessages bounds the messages of one chat record (0:
	// DefaultMaxMessages); a longer record is an error naming it.
	MaxMessages int
	// MaxPositions is the model's position limit (max_position_embeddings;
	// 0: unchecked). Examples still longer after MaxLen are kept but
	// counted in Stats.OverPositions: the model was never trained on such
	// positions, so the caller warns.
	MaxPositions int
}

// Tokenized is one example as token ids and labels. Labels are not shifted
// (the Hugging Face convention): Labels[i] is IDs[i] where token i is
// learnt and IgnoreIndex elsewhere; the model predicts token i from the
// tokens before it.
//
// A token cache's documents (Cache.MappedDoc) have no Labels: Learnt, its
// mask read in place, says which tokens are learnt (non-zero), which is
// all a label holds; Label reads either form. Pack, Pad, SplitLong and
// the counts take both.
type Tokenized struct {
	IDs    []int32
	Labels []int32
	// Learnt, when Labels is nil, marks the learnt tokens (one byte each).
	Learnt  []byte
	Source  string
	Subject int
}

// Label is token j's label: Labels[j], or from Learnt its id or
// IgnoreIndex.
func (t Tokenized) Label(j int) int32 {
	if t.Labels != nil || t.Learnt == nil {
		return t.Labels[j]
	}
	if t.Learnt[j] != 0 {
		return t.IDs[j]
	}
	return IgnoreIndex
}

// compact returns t with its labels as a mask (Learnt) and its ids in an
// array of their own length (truncation leaves the whole example's behind
// them), when each label is its token's id or IgnoreIndex; t as it is
// otherwise. Label(j) is the same for every j.
func (t Tokenized) compact() Tokenized {
	if t.Labels == nil || len(t.Labels) != len(t.IDs) {
		return t
	}
	m := make([]byte, len(t.Labels))
	for j, l := range t.Labels {
		switch l {
		case IgnoreIndex:
		case t.IDs[j]:
			m[j] = 1
		default:
			return t
		}
	}
	if cap(t.IDs) > len(t.IDs) {
		t.IDs = slices.Clone(t.IDs)
	}
	t.Labels, t.Learnt = nil, m
	return t
}

// labelsLen is the number of labels t has, in either form.
func (t Tokenized) labelsLen() int {
	if t.Labels == nil && t.Learnt != nil {
		return len(t.Learnt)
	}
	return len(t.Labels)
}

// learntCount counts t's learnt tokens.
func (t Tokenized) learntCount() int {
	n := 0
	if t.Labels == nil && t.Learnt != nil {
		for _, m := range t.Learnt {
			if m != 0 {
				n++
			}
		}
		return n
	}
	for _, l := range t.Labels {
		if l != IgnoreIndex {
			n++
		}
	}
	return n
}

// Outcome of tokenising one example.
type Outcome int

const (
	Kept Outcome = iota
	Truncated
	Dropped        // longer than MaxLen with Overflow Drop
	DroppedNoLabel // nothing left to learn (after truncation, or no response)
	Skipped        // failed for a reason of its own, skipped (Preprocessor.SkipBad)
)

// Stats counts outcomes over many examples.
type Stats struct {
	Examples, Kept, Truncated, Dropped, DroppedNoLabel int
	Tokens, LabelTokens                                int // of the kept examples
	// OverPositions counts kept examples longer than Options.MaxPositions;
	// FirstOverPositions is the source of the first, Longest the length
	// of the longest kept example.
	OverPositions      int
	FirstOverPositions string
	Longest            int
	// Skipped counts the examples left out for an error of their own
	// (Preprocessor.SkipBad; they count in Examples too), SkipErrors
	// holds the first maxSkipReasons of those errors.
	Skipped    int
	SkipErrors []string
}

// maxSkipReasons bounds Stats.SkipErrors (format.Options.MaxSkipMessages'
// default).
const maxSkipReasons = 20

// PositionsWarning says what Stats.OverPositions means for a model with
// maxPositions positions, or "" when no example is over.
func (s Stats) PositionsWarning(maxPositions int) string {
	if s.OverPositions == 0 {
		return ""
	}
	return fmt.Sprintf("%d examples are longer than the model's %d positions (max_position_embeddings; the first at %s, the longest %d tokens): lower the sequence length to %d or less, or expect poor quality on them",
		s.OverPositions, maxPositions, s.FirstOverPositions, s.Longest, maxPositions)
}

func (s *Stats) add(t Tokenized, o Outcome, maxPositions int) {
	s.Examples++
	switch o {
	case Kept, Truncated:
		if o == Truncated {
			s.Truncated++
		}
		s.Kept++
		s.Tokens += len(t.IDs)
		s.Longest = max(s.Longest, len(t.IDs))
		if maxPositions > 0 && len(t.IDs) > maxPositions {
			if s.OverPositions == 0 {
				s.FirstOverPositions = t.Source
			}
			s.OverPositions++
		}
		s.LabelTokens += t.learntCount()
	case Dropped:
		s.Dropped++
	case DroppedNoLabel:
		s.DroppedNoLabel++
	}
}

// skip counts an example skipped for err.
func (s *Stats) skip(err error) {
	s.Examples++
	s.Skipped++
	if len(s.SkipErrors) < maxSkipReasons {
		s.SkipErrors = append(s.SkipErrors, err.Error())
	}
}

// Preprocessor turns examples into token ids and labels.
type Preprocessor struct {
	Enc  Encoder
	Tmpl Renderer // needed for chat examples only
	EOS  int
	Opts Options
	// Plain reads examples without a chat template (data.template none):
	// a text prompt/completion pair (format.Example.TextPair) is joined
	// as plain text, as TRL's SFTTrainer joins its standard records
	// (plain.go), and any other conversation is refused (ErrNeedsTemplate).
	// Plain text is read as always. OptionsHash does not see it: caches
	// are keyed on the template, and the caller's key for the plain
	// reading is its own (recipe's Text hashes "none").
	Plain bool
	// TemplateName names Tmpl in errors about it (a built-in's name or
	// the template file), so that a user with several subjects and
	// templates knows which one to fix; "" says "the chat template".
	TemplateName string
	// Tally, when set, also receives the counts of every TokenizeAll (for
	// callers that do not see the Stats, e.g. through subject.Validate);
	// not for concurrent use.
	Tally *Stats
	// Workers bounds the goroutines of TokenizeAll (0: GOMAXPROCS; 1:
	// the examples one after another on the caller's). With more than
	// one, Enc and Tmpl are called from several goroutines at once and
	// must be safe for that, as data/tokenizer's Tokenizer and
	// data/chat's Template are.
	Workers int
	// Progress, when set, hears how many of the examples TokenizeAll has
	// tokenised so far, every few dozen, on the caller's goroutine.
	Progress func(done, total int)
	// SkipBad, when set, makes TokenizeAll skip an example that fails
	// for reasons of its own rather than stop (data.skip_bad): one over
	// a limit of prep's on a record (ErrRecordLimit) or one whose error
	// SkipBad accepts (the caller's template and tokenizer limits, such
	// as chat.ErrBudget and tokenizer.ErrLimit). Skipped examples are
	// counted in Stats.Skipped. Cancellation, and a template that fails
	// on the probe conversations every example needs, still stop it.
	SkipBad func(err error) bool
	// Compact makes TokenizeAll (and TokenizeAllOutcomes, Rows) keep each
	// document's labels as a mask, Learnt, one byte a token instead of
	// four, where every label is its token's id or IgnoreIndex (the
	// documents a row can hold; the others keep Labels, for Pack to
	// refuse), and a truncated document's ids without the cut-off tail:
	// the same labels (Tokenized.Label) in 5 bytes a token, not 8, which
	// is what a corpus's documents cost the heap until they are packed.
	Compact bool

	ctx    context.Context // set by WithContext
	probes *templateProbes // set for the length of one Tokenize(All) call
}

// WithContext returns a copy of p whose work stops once ctx is done:
// Tokenize and TokenizeAll return ctx's error, and chat templates that
// implement ContextRenderer are rendered with ctx.
func (p *Preprocessor) WithContext(ctx context.Context) *Preprocessor {
	c := *p
	c.ctx = ctx
	return &c
}

func (p *Preprocessor) context() context.Context {
	if p.ctx == nil {
		return context.Background()
	}
	return p.ctx
}

// render renders with p's context when the template can take one, and
// with the conversation's tools (a JSON list, "" for none).
func (p *Preprocessor) render(msgs []format.Message, tools string, gen bool) (string, error) {
	if tools != "" {
		tr, ok := p.Tmpl.(ToolRenderer)
		if !ok {
			return "", errors.New("the record lists tools, and this chat template renderer cannot show them")
		}
		return tr.RenderTools(p.context(), msgs, tools, gen)
	}
	if cr, ok := p.Tmpl.(ContextRenderer); ok {
		return cr.RenderContext(p.context(), msgs, gen)
	}
	return p.Tmpl.Render(msgs, gen)
}

// ErrNotPrefixStable: the template rewrites an assistant's answer in the
// whole conversation's rendering so that prep cannot place it for sure:
// neither a marker after the content locates it (with a header that the
// answer does not hold itself) nor do renderings of the conversation up to
// it. Qwen3's dropping of earlier <think> blocks is handled (the marker
// after the content survives it); an earlier answer that quotes the
// assistant header while its thinking is dropped is refused.
var ErrNotPrefixStable = errors.New("chat template is not prefix-stable")

// ErrNoAnswer: the chat template writes nothing of an assistant's answer
// (one that tests for a role name ftune does not give it, such as
// m.role == 'gpt'): under response-only masking only the end-of-text
// token would be learnt, which Example.Validate refuses for an empty
// answer and this refuses for an answer the template leaves out.
var ErrNoAnswer = errors.New("chat template does not render the assistant's answer")

// ErrRecordLimit is wrapped by the error of an example over one of
// prep's limits on a record (Options.MaxMessages, and the messages of a
// conversation whose template rewrites answers): the record's own fault,
// which Preprocessor.SkipBad skips.
var ErrRecordLimit = errors.New("over a limit on one record")

// recordLimitError is an error that wraps ErrRecordLimit without saying
// so in its text.
type recordLimitError string

func (e recordLimitError) Error() string        { return string(e) }
func (e recordLimitError) Is(target error) bool { return target == ErrRecordLimit }

// probeError is the error of rendering a probe conversation: the
// template's as a whole, not an example's, so SkipBad does not skip it.
type probeError struct{ err error }

func (e probeError) Error() string { return "render a probe conversation: " + e.err.Error() }
func (e probeError) Unwrap() error { return e.err }

// skips reports whether TokenizeAll skips the example that failed with
// err rather than stop (SkipBad).
func (p *Preprocessor) skips(err error) bool {
	if p.SkipBad == nil || p.context().Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe probeError
	if errors.As(err, &pe) {
		return false
	}
	return errors.Is(err, ErrRecordLimit) || p.SkipBad(err)
}

// templateName is how errors name p's template.
func (p *Preprocessor) templateName() string {
	if p.TemplateName == "" {
		return "the chat template"
	}
	return fmt.Sprintf("the chat template %q", p.TemplateName)
}

// Tokenize tokenises one example. Dropped examples come back with an
// Outcome and no error; errors are for bad templates or encoders.
func (p *Preprocessor) Tokenize(ex format.Example) (Tokenized, Outcome, error) {
	p = p.withProbes()
	if err := p.context().Err(); err != nil {
		return Tokenized{}, Dropped, fmt.Errorf("%s: tokenising interrupted: %w", ex.Source, err)
	}
	if ex.IsUnpaired() {
		return Tokenized{}, Dropped, fmt.Errorf("%s: an unpaired feedback record (a prompt with one completion labelled desirable or not): feedback training reads it (training.objective: kto); supervised training would learn the undesirable completions too", ex.Source)
	}
	if ex.IsPreference() {
		return Tokenized{}, Dropped, fmt.Errorf("%s: a preference record (a prompt with chosen and rejected completions): preference training reads it (training.objective: dpo or kto); supervised training has no one answer in it to learn", ex.Source)
	}
	var t Tokenized
	var err error
	switch {
	case p.Plain && ex.TextPair:
		t, err = p.plainPair(ex)
	case p.Plain && ex.IsChat():
		err = p.refusePlain()
	case ex.IsChat():
		t, err = p.chat(ex.Messages, ex.Tools)
	default:
		t, err = p.completion(ex.Text)
	}
	if err != nil {
		return Tokenized{}, Dropped, fmt.Errorf("%s: %w", ex.Source, err)
	}
	t.Source = ex.Source
	out := Kept
	if p.Opts.MaxLen > 0 && len(t.IDs) > p.Opts.MaxLen && !p.splits(ex) {
		if p.Opts.Overflow == Drop {
			return Tokenized{}, Dropped, nil
		}
		t.IDs, t.Labels = t.IDs[:p.Opts.MaxLen], t.Labels[:p.Opts.MaxLen]
		out = Truncated
	}
	if !hasLabel(t.Labels) {
		return Tokenized{}, DroppedNoLabel, nil
	}
	return t, out, nil
}

// TokenizeAllContext is TokenizeAll stopping once ctx is done.
func (p *Preprocessor) TokenizeAllContext(ctx context.Context, exs []format.Example) ([]Tokenized, Stats, error) {
	return p.WithContext(ctx).TokenizeAll(exs)
}

// TokenizeAll tokenises examples, leaving out dropped ones (and with
// SkipBad, failed ones). It spreads them over Workers goroutines
// (parallel.go) with the result of tokenizeSerial, which takes them one
// after another: the same documents in the same order, the same Stats,
// and on an error the error of the earliest example that fails, with the
// Stats of the examples before it.
func (p *Preprocessor) TokenizeAll(exs []format.Example) (docs []Tokenized, st Stats, err error) {
	return p.tokenizeAll(exs, nil)
}

func (p *Preprocessor) tokenizeAll(exs []format.Example, rec *Tokenization) (docs []Tokenized, st Stats, err error) {
	docs = make([]Tokenized, 0, len(exs))
	st, err = p.tokenizeEach(exs, rec, func(t Tokenized) {
		if p.Compact {
			t = t.compact()
		}
		docs = append(docs, t)
	})
	if err != nil {
		return nil, st, err
	}
	return docs, st, nil
}

// TokenizeEach is TokenizeAll handing each document to keep, on the
// caller's goroutine and in order, as soon as it is tokenised, instead of
// returning them all: a caller that counts documents and lets them go
// (data validate) holds a window of them at a time (parallel.go), not
// every token of the examples. keep hears nothing of a document after an
// error that stops the run.
func (p *Preprocessor) TokenizeEach(exs []format.Example, keep func(Tokenized)) (Stats, error) {
	return p.tokenizeEach(exs, nil, keep)
}

func (p *Preprocessor) tokenizeEach(exs []format.Example, rec *Tokenization, keep func(Tokenized)) (st Stats, err error) {
	p = p.withProbes()
	if p.Tally != nil {
		defer func() { p.Tally.merge(st) }()
	}
	if w := p.workers(len(exs)); w > 1 {
		return p.tokenizeParallel(exs, w, rec, keep)
	}
	return p.tokenizeSerial(exs, rec, keep)
}

// minPerWorker is the fewest examples worth a worker of their own: each
// renders its own template probes.
const minPerWorker = 16

// workers is the number of goroutines that tokenise n examples.
func (p *Preprocessor) workers(n int) int {
	w := p.Workers
	if w <= 0 {
		w = runtime.GOMAXPROCS(0)
	}
	return max(1, min(w, n/minPerWorker))
}

// tokenizeSerial is tokenizeEach on the caller's goroutine, one example
// after another: the reference tokenizeParallel must equal.
func (p *Preprocessor) tokenizeSerial(exs []format.Example, rec *Tokenization, keep func(Tokenized)) (Stats, error) {
	var st Stats
	for i, ex := range exs {
		if p.Progress != nil && i > 0 && i%maxChunk == 0 {
			p.Progress(i, len(exs))
		}
		t, o, err := p.Tokenize(ex)
		if err != nil {
			if p.skips(err) {
				st.skip(err)
				rec.note(i, Skipped, err)
				continue
			}
			return st, err
		}
		st.add(t, o, p.Opts.MaxPositions)
		rec.note(i, o, nil)
		if o == Kept || o == Truncated {
			keep(t)
		}
	}
	if p.Progress != nil && len(exs) > 0 {
		p.Progress(len(exs), len(exs))
	}
	return st, nil
}

func (s *Stats) merge(o Stats) {
	if s.OverPositions == 0 {
		s.FirstOverPositions = o.FirstOverPositions
	}
	s.Examples += o.Examples
	s.Kept += o.Kept
	s.Truncated += o.Truncated
	s.Dropped += o.Dropped
	s.DroppedNoLabel += o.DroppedNoLabel
	s.Tokens += o.Tokens
	s.LabelTokens += o.LabelTokens
	s.OverPositions += o.OverPositions
	s.Longest = max(s.Longest, o.Longest)
	s.Skipped += o.Skipped
	for _, e := range o.SkipErrors {
		if len(s.SkipErrors) == maxSkipReasons {
			break
		}
		s.SkipErrors = append(s.SkipErrors, e)
	}
}

// NoneKeptError explains a set of examples of which none was kept, or is
// nil when some were: "every subject is empty" said nothing of the
// examples dropped for their length, nor of the setting that dropped them.
// what names the examples (a subject and split), maxLen is the
// Options.MaxLen they were tokenised with (the run's sequence length).
func (s Stats) NoneKeptError(what string, maxLen int) error {
	if s.Kept > 0 || s.Examples == 0 {
		return nil
	}
	var why []string
	if s.Dropped > 0 {
		why = append(why, fmt.Sprintf("%d longer than the sequence length of %d tokens (overflow: drop)", s.Dropped, maxLen))
	}
	if s.DroppedNoLabel > 0 {
		why = append(why, fmt.Sprintf("%d with no answer token within the sequence length of %d tokens (the prompt fills it)", s.DroppedNoLabel, maxLen))
	}
	if s.Skipped > 0 {
		why = append(why, fmt.Sprintf("%d skipped for errors of their own (data.skip_bad; the first: %s)", s.Skipped, s.SkipErrors[0]))
	}
	return fmt.Errorf("%s: all %d examples were dropped: %s; raise the sequence length (--seq-len)", what, s.Examples, strings.Join(why, ", "))
}

func hasLabel(labels []int32) bool {
	for _, l := range labels {
		if l != IgnoreIndex {
			return true
		}
	}
	return false
}

// splits says whether ex is kept whole for SplitLong: plain text under
// Overflow Split.
func (p *Preprocessor) splits(ex format.Example) bool {
	return p.Opts.Overflow == Split && !ex.IsChat()
}

// encode is Enc.Encode, or for a bounded example the first tokens of it:
// more than MaxLen when there are more, which Tokenize truncates or drops
// as it would the whole text's ids (see PrefixEncoder). Text that is
// split is encoded whole.
func (p *Preprocessor) encode(text string, addSpecial bool) ([]int, error) {
	if pe, ok := p.Enc.(PrefixEncoder); ok && p.Opts.MaxLen > 0 && p.Opts.Overflow != Split {
		return pe.EncodePrefix(text, addSpecial, p.Opts.MaxLen)
	}
	return p.Enc.Encode(text, addSpecial)
}

// encodeOffsets is encode for an OffsetEncoder.
func (p *Preprocessor) encodeOffsets(oe OffsetEncoder, text string, addSpecial bool) ([]int, [][2]int, error) {
	if pe, ok := oe.(PrefixOffsetEncoder); ok && p.Opts.MaxLen > 0 {
		return pe.EncodeOffsetsPrefix(text, addSpecial, p.Opts.MaxLen)
	}
	return oe.EncodeOffsets(text, addSpecial)
}

func (p *Preprocessor) completion(text string) (Tokenized, error) {
	ids, err := p.encode(text, true)
	if err != nil {
		return Tokenized{}, fmt.Errorf("encode: %w", err)
	}
	// A text that ends with EOS already (Unsloth's formatting_prompts_func
	// appends tokenizer.eos_token) gets no second one: TRL's SFTTrainer
	// appends it only when the tokens do not end with it. The ids decide:
	// text that merely resembles the EOS token's text still gets one.
	if !p.Opts.NoEOS && (len(ids) == 0 || ids[len(ids)-1] != p.EOS) {
		ids = append(ids, p.EOS)
	}
	t := Tokenized{IDs: toInt32(ids), Labels: make([]int32, len(ids))}
	copy(t.Labels, t.IDs)
	return t, nil
}

func (p *Preprocessor) chat(msgs []format.Message, tools string) (Tokenized, error) {
	if p.Tmpl == nil {
		return Tokenized{}, errors.New("chat example but no chat template")
	}
	limit := p.Opts.MaxMessages
	if limit <= 0 {
		limit = DefaultMaxMessages
	}
	if len(msgs) > limit {
		return Tokenized{}, recordLimitError(fmt.Sprintf("%d messages in one record, more than the limit of %d (split the conversation)", len(msgs), limit))
	}
	if err := p.checkToolSupport(msgs, tools); err != nil {
		return Tokenized{}, err
	}
	full, err := p.render(msgs, tools, false)
	if err != nil {
		return Tokenized{}, fmt.Errorf("render: %w", err)
	}
	var spans []span
	if p.Opts.TrainOnInputs {
		if p.Opts.MaskHistory {
			return Tokenized{}, errors.New("mask_history learns only the last answer and train_on_inputs every token: set one")
		}
		if i, ok := format.NoLossMessage(msgs); ok {
			return Tokenized{}, fmt.Errorf("message %d has weight 0, and train_on_inputs learns every token: leave train_on_inputs off to honour the weights, or remove them", i)
		}
		spans = []span{{0, len(full)}}
	} else if spans, err = p.assistantSpans(msgs, tools, full); err != nil {
		return Tokenized{}, err
	} else if i := lastAssistant(msgs); p.Opts.MaskHistory && i >= 0 && msgs[i].NoLoss {
		return Tokenized{}, fmt.Errorf("message %d, the last answer, has weight 0, and mask_history learns only the last answer: nothing is left to learn (give it weight 1, or leave the record out)", i)
	}
	var ids []int
	var owner []int // the span each token is in, -1 for none
	// Templates write their own BOS text where they want it (Llama-3's
	// starts with {{ bos_token }}), so no special tokens are added, as
	// transformers' apply_chat_template(tokenize=True) does.
	if oe, ok := p.Enc.(OffsetEncoder); ok {
		var offs [][2]int
		if ids, offs, err = p.encodeOffsets(oe, full, false); err != nil {
			return Tokenized{}, fmt.Errorf("encode: %w", err)
		}
		if len(offs) != len(ids) {
			return Tokenized{}, fmt.Errorf("encoder gave %d offsets for %d ids", len(offs), len(ids))
		}
		owner = make([]int, len(ids))
		for j, o := range offs {
			owner[j] = -1
			if o[1] > o[0] {
				owner[j] = spanOf(o[0], spans)
			}
		}
	} else if ids, owner, err = p.encodeSegments(full, spans); err != nil {
		return Tokenized{}, err
	}
	learnt := make([]bool, len(ids))
	for j, k := range owner {
		learnt[j] = k >= 0
	}
	lastMsg := msgs[len(msgs)-1]
	last := lastMsg.Role == format.RoleAssistant
	if !p.Opts.NoEOS && !(last && endsWithEOS(ids, learnt, p.EOS)) {
		ids = append(ids, p.EOS)
		learnt = append(learnt, last && !lastMsg.NoLoss || p.Opts.TrainOnInputs)
	}
	// Answers of weight 0 are rendered and encoded as the others, so the
	// ids are the conversation's whatever the weights; only their labels
	// go.
	if !p.Opts.TrainOnInputs {
		if err := unlearnWeightZero(msgs, p.Opts.MaskHistory, spans, owner, learnt); err != nil {
			return Tokenized{}, err
		}
	}
	t := Tokenized{IDs: toInt32(ids), Labels: make([]int32, len(ids))}
	for j, id := range t.IDs {
		t.Labels[j] = IgnoreIndex
		if learnt[j] {
			t.Labels[j] = id
		}
	}
	return t, nil
}

// unlearnWeightZero clears the learnt flags of the tokens in the spans
// (assistantSpans': one per assistant message, in order) of the messages
// with weight 0, and with maskHistory of every answer but the last; owner
// gives each token's span.
func unlearnWeightZero(msgs []format.Message, maskHistory bool, spans []span, owner []int, learnt []bool) error {
	if !maskHistory && !slices.ContainsFunc(msgs, func(m format.Message) bool { return m.NoLoss }) {
		return nil
	}
	var noLoss []bool // by span
	for _, m := range msgs {
		if m.Role == format.RoleAssistant {
			noLoss = append(noLoss, m.NoLoss || maskHistory)
		}
	}
	if maskHistory && len(noLoss) > 0 {
		noLoss[len(noLoss)-1] = msgs[lastAssistant(msgs)].NoLoss
	}
	if len(noLoss) != len(spans) {
		return fmt.Errorf("%d answer spans found for %d assistant messages", len(spans), len(noLoss))
	}
	for j, k := range owner {
		if k >= 0 && noLoss[k] {
			learnt[j] = false
		}
	}
	return nil
}

// lastAssistant is the index of msgs' last assistant message.
func lastAssistant(msgs []format.Message) int {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == format.RoleAssistant {
			return i
		}
	}
	return -1
}

// encodeSegments encodes the text between span boundaries separately.
// Boundaries fall where templates put role headers and end-of-turn tokens,
// which byte-level pre-tokenizers split at anyway; SentencePiece-style
// encoders that prepend a space per call should implement OffsetEncoder.
// owner gives each token's span, -1 outside them.
func (p *Preprocessor) encodeSegments(full string, spans []span) (ids, owner []int, err error) {
	pos := 0
	emit := func(end int, k int) error {
		if end <= pos {
			return nil
		}
		if p.Opts.MaxLen > 0 && len(ids) > p.Opts.MaxLen {
			// Truncated whatever follows: segments are encoded apart, so
			// the ids so far are the first ones of the whole.
			pos = end
			return nil
		}
		var seg []int
		var err error
		if pe, ok := p.Enc.(PrefixEncoder); ok && p.Opts.MaxLen > 0 && p.Opts.Overflow != Split {
			seg, err = pe.EncodePrefix(full[pos:end], false, p.Opts.MaxLen-len(ids))
		} else {
			seg, err = p.Enc.Encode(full[pos:end], false)
		}
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		ids = append(ids, seg...)
		for range seg {
			owner = append(owner, k)
		}
		pos = end
		return nil
	}
	for k, s := range spans {
		if err := emit(s.start, -1); err != nil {
			return nil, nil, err
		}
		if err := emit(s.end, k); err != nil {
			return nil, nil, err
		}
	}
	if err := emit(len(full), -1); err != nil {
		return nil, nil, err
	}
	return ids, owner, nil
}

// spanOf is the index of the span of spans (sorted, disjoint) holding off,
// or -1: a binary search, as a long conversation has thousands of spans
// and tokens.
func spanOf(off int, spans []span) int {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].end > off })
	if i < len(spans) && off >= spans[i].start {
		return i
	}
	return -1
}

// endsWithEOS reports whether the last learnt run already holds EOS (a
// template that closes assistant turns with the EOS token itself).
func endsWithEOS(ids []int, learnt []bool, eos int) bool {
	for j := len(ids) - 1; j >= 0; j-- {
		if learnt[j] {
			for ; j >= 0 && learnt[j]; j-- {
				if ids[j] == eos {
					return true
				}
			}
			return false
		}
	}
	return false
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// RuneOffsetsToBytes converts [start, end) code-point offsets into text
// (what Hugging Face tokenizers and data/tokenizer report) to the byte
// offsets OffsetEncoder wants. Offsets out of range are clamped.
func RuneOffsetsToBytes(text string, offs [][2]int) [][2]int {
	// byteAt[i] is the byte index of code point i; one extra for the end.
	byteAt := make([]int, 0, len(text)+1)
	for i := range text {
		byteAt = append(byteAt, i)
	}
	byteAt = append(byteAt, len(text))
	conv := func(c int) int { return byteAt[min(max(c, 0), len(byteAt)-1)] }
	out := make([][2]int, len(offs))
	for i, o := range offs {
		out[i] = [2]int{conv(o[0]), conv(o[1])}
	}
	return out
}
