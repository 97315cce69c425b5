package prep

import (
	"errors"
	"fmt"

	"github.com/ftune/ftune/data/format"
)

// A text prompt/completion pair read as plain text (Preprocessor.Plain,
// data.template none) is what TRL's SFTTrainer makes of its standard
// prompt-completion records: the prompt's text followed by the
// completion's, encoded as one text with the tokenizer's special tokens
// (BOS where it adds one), EOS after it, and only the completion (and the
// EOS) learnt. No chat template renders it. DPO and KTO read their text
// pairs by the same rule (PromptTokens), so a pair gives the same tokens
// whatever it is trained for.

// ErrPromptBoundary: a prompt's first token is not the first of the
// prompt followed by its completion (a tokenizer or template that
// rewrites the start of the text), so the completion cannot be told from
// the prompt.
var ErrPromptBoundary = errors.New("the prompt's first token is not the first of the prompt followed by a completion, so the completions cannot be told from it (a tokenizer or template that rewrites the start of the text)")

// PromptTokens is how many tokens of a prompt begin every whole sequence
// of it: prompt is the prompt encoded alone, each of wholes the prompt
// followed by one of its completions, encoded together. They are
// len(prompt) unless the prompt's last tokens merge with a completion's
// first (a prompt that ends in a space, whose space joins the
// completion's first word): TRL then starts the completion after
// len(prompt) tokens, which cuts off its first token, and ftune instead
// cuts the prompt back to the tokens it shares with every whole sequence,
// so each completion keeps all its text (with the prompt's last
// characters before it). cut reports that it did; none shared is
// ErrPromptBoundary.
func PromptTokens(prompt []int, wholes ...[]int) (k int, cut bool, err error) {
	k = len(prompt)
	for _, w := range wholes {
		k = min(k, sharedPrefix(prompt, w))
	}
	if k == 0 {
		return 0, false, ErrPromptBoundary
	}
	return k, k < len(prompt), nil
}

// sharedPrefix is the length of the longest shared beginning of a and b.
func sharedPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// ErrNeedsTemplate: a conversation given to a Preprocessor that reads
// plain text only (Plain): it has roles that only a chat template writes.
var ErrNeedsTemplate = errors.New("a conversation needs a chat template")

// plainPair tokenizes ex, a text prompt/completion pair (Example.TextPair),
// as plain text (see the top of this file): the whole text's ids as
// completion gives them (EOS appended unless NoEOS or already there), the
// first PromptTokens of them not learnt unless TrainOnInputs.
func (p *Preprocessor) plainPair(ex format.Example) (Tokenized, error) {
	msgs := ex.Messages
	if len(msgs) > 0 && msgs[0].Role == format.RoleSystem {
		return Tokenized{}, fmt.Errorf("%w: data.template none joins a text prompt and completion as plain text, which has no place for the record's system prompt (TRL's standard prompt-completion records have none): put it in the prompt, or use a chat template", ErrNeedsTemplate)
	}
	if len(msgs) != 2 || msgs[0].Role != format.RoleUser || msgs[1].Role != format.RoleAssistant {
		return Tokenized{}, fmt.Errorf("a text pair of %d messages, not a prompt and a completion", len(msgs))
	}
	prompt, err := p.encode(msgs[0].Content, true)
	if err != nil {
		return Tokenized{}, fmt.Errorf("encode: %w", err)
	}
	t, err := p.completion(msgs[0].Content + msgs[1].Content)
	if err != nil {
		return Tokenized{}, err
	}
	if p.Opts.TrainOnInputs {
		return t, nil
	}
	k, _, err := PromptTokens(prompt, intsOf(t.IDs))
	if err != nil {
		return Tokenized{}, err
	}
	for j := range k {
		t.Labels[j] = IgnoreIndex
	}
	return t, nil
}

// refusePlain is the error of a conversation under Plain.
func (p *Preprocessor) refusePlain() error {
	return fmt.Errorf("%w: data.template none reads plain text and text prompt/completion pairs (joined as TRL's SFTTrainer joins them, with no template), and this record is a conversation (chat or ShareGPT messages, an alpaca record, or a prompt given as messages), whose roles only a chat template writes: set data.template to the model's (auto) or a built-in (alpaca writes an instruction record as the Stanford Alpaca prompt), or give the records as prompt/completion text", ErrNeedsTemplate)
}

func intsOf(ids []int32) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}
