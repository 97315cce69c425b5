package format

import (
	"fmt"
	"slices"
	"strings"
)

// A message's content may be a list of parts rather than a string:
// OpenAI's Chat Completions write [{"type": "text", "text": ...}, ...]
// (and images, audio and files as other part types), its Responses API
// "input_text" and "output_text" parts. ftune trains text models, so a
// list of text parts is read as its text and any other part is refused:
// dropped, it would train the model on an answer to something it never
// saw.
//
// Several text parts make one text with nothing between them. That is
// what a chat template renders from them (transformers' templates that
// take part lists, Llama 3.2 Vision's and Qwen2-VL's, write each text
// part's text after the last) and what OpenAI's SDK makes of a
// response's text parts (output_text joins them with ""); a separator
// would be text the data never held. (vLLM, flattening parts for a
// template that takes strings only, puts "\n" between them: its choice
// for serving, not what the data says.)

// textPartTypes are the part types that hold text, in "text": Chat
// Completions' "text", the Responses API's "input_text" (the user's,
// system's and developer's) and "output_text" (the assistant's).
var textPartTypes = []string{"text", "input_text", "output_text"}

// contentParts reads content, a message's content given as a list of
// parts, as its text. An empty list is refused unless calls, the message
// makes tool calls (its content may then be none, as a null one may): an
// export that lost the text, as a null content usually is. name is the
// content's field, for messages; the caller names the message.
func contentParts(parts []any, name string, calls bool) (string, error) {
	if len(parts) == 0 {
		if calls {
			return "", nil
		}
		return "", fmt.Errorf("%w: %q is an empty list of parts (expected text parts, [{\"type\": \"text\", \"text\": ...}]; write \"\" for an empty message)", ErrBadValue, name)
	}
	var b strings.Builder
	for j, p := range parts {
		part, ok := p.(map[string]any)
		if !ok {
			return "", fmt.Errorf("%w: %q part %d: expected an object {\"type\": \"text\", \"text\": ...}, got %s", ErrBadValue, name, j, valueName(p))
		}
		typ, ok := part["type"].(string)
		if !ok {
			return "", fmt.Errorf("%w: %q part %d has no \"type\" string (got %s): expected one of %s, with its \"text\"", ErrBadValue, name, j, valueName(part["type"]), quoteOr(textPartTypes))
		}
		if !slices.Contains(textPartTypes, typ) {
			return "", fmt.Errorf("%w: %q part %d is of type %q: ftune trains text models and reads only text parts (%s); remove the part or the record (its answer may be about what the part held)", ErrBadValue, name, j, typ, quoteOr(textPartTypes))
		}
		v, ok := part["text"]
		if !ok || v == nil {
			return "", fmt.Errorf("%w: %q part %d (type %q) has no \"text\": expected a string", ErrBadValue, name, j, typ)
		}
		text, err := field(part, "text", false)
		if err != nil {
			return "", fmt.Errorf("%q part %d (type %q): %w", name, j, typ, err)
		}
		b.WriteString(text)
	}
	return b.String(), nil
}

// quoteOr writes names as "a", "b" or "c".
func quoteOr(names []string) string {
	q := quoteEach(names)
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// contentPartsNote is the read note of a file whose messages have their
// content as lists of parts.
const contentPartsNote = "message content given as a list of parts (OpenAI's) is read as the text of its parts, joined with nothing between them, as chat templates render them"
