package tokenizer

import (
	"fmt"
	"strings"
)

// StreamDecoder turns ids into text one id at a time during generation.
// It never emits part of a UTF-8 character: while the ids so far decode to
// text ending in U+FFFD (a byte-level or byte-fallback token holding the
// first bytes of a character), Next returns "" and waits for more.
//
// It follows tokenizers' DecodeStream: the text for new ids is the decoding
// of a short window of recent ids minus the decoding of the window's prefix,
// so decoders that treat the first token specially (Metaspace, Strip) do
// not drop spaces in the middle of a stream.
type StreamDecoder struct {
	t           *Tokenizer
	skipSpecial bool
	ids         []int
	prefix      string
	prefixIndex int
}

// NewStreamDecoder starts a stream; skipSpecial leaves special tokens out.
func (t *Tokenizer) NewStreamDecoder(skipSpecial bool) *StreamDecoder {
	return &StreamDecoder{t: t, skipSpecial: skipSpecial}
}

// Next adds one id and returns the text it completes ("" while a
// character is incomplete or the id adds no text).
func (d *StreamDecoder) Next(id int) (string, error) {
	if d.prefix == "" && len(d.ids) > 0 {
		p, err := d.t.Decode(d.ids, d.skipSpecial)
		if err != nil {
			return "", err
		}
		if !strings.HasSuffix(p, "\uFFFD") {
			d.prefix, d.prefixIndex = p, len(d.ids)
		}
	}
	d.ids = append(d.ids, id)
	s, err := d.t.Decode(d.ids, d.skipSpecial)
	if err != nil {
		d.ids = d.ids[:len(d.ids)-1]
		return "", err
	}
	if len(s) <= len(d.prefix) || strings.HasSuffix(s, "\uFFFD") {
		return "", nil
	}
	if !strings.HasPrefix(s, d.prefix) {
		return "", fmt.Errorf("stream decode: text %q does not extend the previous %q", s, d.prefix)
	}
	out := s[len(d.prefix):]
	d.ids = append(d.ids[:0], d.ids[d.prefixIndex:]...)
	if d.prefix, err = d.t.Decode(d.ids, d.skipSpecial); err != nil {
		return "", err
	}
	d.prefixIndex = len(d.ids)
	return out, nil
}

// Flush returns text held back at the end of a stream (an incomplete
// character, as U+FFFD) and resets the decoder.
func (d *StreamDecoder) Flush() (string, error) {
	defer func() { d.ids, d.prefix, d.prefixIndex = nil, "", 0 }()
	if len(d.ids) == 0 {
		return "", nil
	}
	s, err := d.t.Decode(d.ids, d.skipSpecial)
	if err != nil {
		return "", err
	}
	if len(s) <= len(d.prefix) || !strings.HasPrefix(s, d.prefix) {
		return "", nil
	}
	return s[len(d.prefix):], nil
}
