package format

import "fmt"

// Axolotl's template-free input_output records, {"segments": [{"label":
// true|false, "text": ...}, ...]}, are not read: Axolotl encodes each
// segment on its own (no special tokens added) and learns the labelled
// ones, and an Example holds messages or one text, not labelled pieces
// of text; read as another shape they would be learnt otherwise than
// written. They are refused, saying what ftune reads instead.

// axolotlSegments says whether v, a record's "segments", is a list of
// Axolotl's labelled segments: objects with a "label" and a "text". Other
// lists named so (a transcript's timed segments) are not.
func axolotlSegments(v any) bool {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return false
	}
	for _, item := range list {
		obj, ok := item.(map[string]any)
		if !ok {
			return false
		}
		_, label := obj["label"]
		_, text := obj["text"]
		if !label || !text {
			return false
		}
	}
	return true
}

// errSegments is the error of a record in Axolotl's input_output layout.
var errSegments = fmt.Errorf(`%w: field "segments" holds Axolotl's template-free input_output segments ([{"label": true|false, "text": ...}]), which ftune does not read: it learns whole answers, not labelled pieces of text encoded one by one. Unlabelled text then one labelled segment is a prompt and its completion: write {"prompt": <the unlabelled text>, "completion": <the labelled text>} and set data.template none, which joins them as plain text and learns the completion (and EOS) alone, as TRL's SFTTrainer does; for several labelled turns, write the conversation as "messages" and train with the model's chat template`, ErrUnsupported)
