package nn

import "slices"

// Vocabulary is what StopTokens needs from a tokenizer
// (data/tokenizer.Tokenizer has it).
type Vocabulary interface {
	EOS() (int, bool)
	TokenToID(tok string) (int, bool)
}

// StopTokens are the ids that end a reply: the EOS ids of config.json, of
// generation_config.json (Config.Generation: transformers' generate() stops
// on those, and instruct models list their end-of-turn ids there) and of
// the tokenizer, plus ChatML's <|im_end|> when the vocabulary has it (chat
// templates end each turn with it while EOS stays <|endoftext|>), plus each
// of turnEnds that is a token of v: the end-of-turn token of the chat
// template a prompt was rendered with (chat.Template.EndOfTurn: Gemma's
// <end_of_turn>, Llama-3's <|eot_id|>, Phi's <|end|>). Generation
// everywhere (the ftune API, evaluation) stops on this set. Each id appears
// once.
func (m *Model) StopTokens(v Vocabulary, turnEnds ...string) []int {
	var stops []int
	add := func(id int) {
		if !slices.Contains(stops, id) {
			stops = append(stops, id)
		}
	}
	for _, id := range m.Config.EOSTokenIDs {
		add(id)
	}
	for _, id := range m.Config.Generation.EOSTokenIDs {
		add(id)
	}
	if id, ok := v.EOS(); ok {
		add(id)
	}
	for _, tok := range append([]string{"<|im_end|>"}, turnEnds...) {
		if id, ok := v.TokenToID(tok); ok && tok != "" {
			add(id)
		}
	}
	return stops
}
