package nn

// Vocabulary is what StopTokens needs from a tokenizer
// (data/tokenizer.Tokenizer has it).
type Vocabulary interface {
	EOS() (int, bool)
	TokenToID(tok string) (int, bool)
}

// StopTokens are the ids that end a reply: the EOS ids of config.json and
// of the tokenizer, plus ChatML's <|im_end|> when the vocabulary has it
// (chat templates end each turn with it while EOS stays <|endoftext|>).
// Generation everywhere (the ftune API, evaluation) stops on this set.
func (m *Model) StopTokens(v Vocabulary) []int {
	stops := append([]int(nil), m.Config.EOSTokenIDs...)
	if id, ok := v.EOS(); ok {
		stops = append(stops, id)
	}
	if id, ok := v.TokenToID("<|im_end|>"); ok {
		stops = append(stops, id)
	}
	return stops
}
