package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// rawEncoding is an encoding before character offsets: byte offsets into the
// input text.
type rawEncoding struct {
	ids     []int
	tokens  []string
	offsets [][2]int
	special []bool // added by the post-processor (offsets 0,0)
	stop    int    // > 0: encoding may stop at this many tokens (encodeRaw)
}

// done reports whether e has the tokens its caller asked for.
func (e *rawEncoding) done() bool { return e.stop > 0 && len(e.ids) >= e.stop }

func newRawEncoding(capacity int) *rawEncoding {
	return &rawEncoding{
		ids:     make([]int, 0, capacity),
		tokens:  make([]string, 0, capacity),
		offsets: make([][2]int, 0, capacity),
		special: make([]bool, 0, capacity),
	}
}

func (e *rawEncoding) push(id int, tok string, off [2]int, special bool) {
	if e.done() {
		return // what follows is past what the caller keeps
	}
	e.ids = append(e.ids, id)
	e.tokens = append(e.tokens, tok)
	e.offsets = append(e.offsets, off)
	e.special = append(e.special, special)
}

// postProcessor adds special tokens (when asked) and adjusts offsets.
type postProcessor interface {
	process(e *rawEncoding, addSpecial bool) *rawEncoding
}

// specialPiece is a special token a template inserts.
type specialPiece struct {
	ids    []int
	tokens []string
}

func buildPostProcessor(o jobj) (postProcessor, error) {
	t, err := o.typ()
	if err != nil {
		return nil, err
	}
	switch t {
	case "Sequence":
		seq, err := sequence(o, "processors", buildPostProcessor)
		if err != nil {
			return nil, err
		}
		return seqPost(seq), nil
	case "ByteLevel":
		trim, err := o.boolean("trim_offsets", true)
		if err != nil {
			return nil, err
		}
		prefix, err := o.boolean("add_prefix_space", true)
		if err != nil {
			return nil, err
		}
		return trimOffsets{trim: trim, prefixSpace: prefix}, nil
	case "TemplateProcessing":
		return buildTemplate(o)
	case "BertProcessing", "RobertaProcessing":
		cls, err := readTokenPair(o, "cls")
		if err != nil {
			return nil, err
		}
		sep, err := readTokenPair(o, "sep")
		if err != nil {
			return nil, err
		}
		tp := &templatePost{}
		tp.single = []templateItem{{special: &cls}, {}, {special: &sep}}
		if t == "BertProcessing" {
			return tp, nil
		}
		trim, err := o.boolean("trim_offsets", true)
		if err != nil {
			return nil, err
		}
		prefix, err := o.boolean("add_prefix_space", true)
		if err != nil {
			return nil, err
		}
		return seqPost{trimOffsets{trim: trim, prefixSpace: prefix}, tp}, nil
	case "":
		return nil, fmt.Errorf("%s: missing \"type\"", o.path)
	default:
		return nil, o.unsupported("post_processor type " + t)
	}
}

// readTokenPair reads Bert/Roberta's ["[CLS]", 101] pairs.
func readTokenPair(o jobj, key string) (specialPiece, error) {
	var pair []json.RawMessage
	if err := json.Unmarshal(o.m[key], &pair); err != nil || len(pair) != 2 {
		return specialPiece{}, fmt.Errorf("%s: expected [token, id]", o.field(key))
	}
	var tok string
	var id int
	if json.Unmarshal(pair[0], &tok) != nil || json.Unmarshal(pair[1], &id) != nil {
		return specialPiece{}, fmt.Errorf("%s: expected [token, id]", o.field(key))
	}
	return specialPiece{ids: []int{id}, tokens: []string{tok}}, nil
}

// postSpecials lists the special pieces p may insert.
func postSpecials(p postProcessor) []specialPiece {
	var out []specialPiece
	switch p := p.(type) {
	case seqPost:
		for _, sub := range p {
			out = append(out, postSpecials(sub)...)
		}
	case *templatePost:
		for _, it := range p.single {
			if it.special != nil {
				out = append(out, *it.special)
			}
		}
	}
	return out
}

type seqPost []postProcessor

func (s seqPost) process(e *rawEncoding, addSpecial bool) *rawEncoding {
	for _, p := range s {
		e = p.process(e, addSpecial)
	}
	return e
}

// trimOffsets is the ByteLevel post-processor: with trim_offsets, offsets
// leave out the spaces a token starts or ends with.
type trimOffsets struct{ trim, prefixSpace bool }

func (t trimOffsets) process(e *rawEncoding, _ bool) *rawEncoding {
	if !t.trim {
		return e
	}
	isSpace := func(r rune) bool { return r == 'Ġ' || unicode.IsSpace(r) }
	for i, tok := range e.tokens {
		if e.special[i] {
			continue
		}
		lead := len([]rune(tok)) - len([]rune(strings.TrimLeftFunc(tok, isSpace)))
		trail := len([]rune(tok)) - len([]rune(strings.TrimRightFunc(tok, isSpace)))
		o := &e.offsets[i]
		if lead > 0 {
			if (i == 0 || o[0] == 0) && t.prefixSpace && lead == 1 {
				lead = 0 // the space the pre-tokenizer added is not in the text
			}
			o[0] = min(o[0]+lead, o[1])
		}
		if trail > 0 && o[1] >= trail {
			o[1] = max(o[1]-trail, o[0])
		}
	}
	return e
}

// templatePost is TemplateProcessing for single sequences: special tokens
// around the sequence ($A).
type templatePost struct {
	single []templateItem
}

type templateItem struct {
	special *specialPiece // nil for the sequence itself
}

func buildTemplate(o jobj) (postProcessor, error) {
	specials := map[string]specialPiece{}
	if o.has("special_tokens") {
		var raw map[string]struct {
			IDs    []int    `json:"ids"`
			Tokens []string `json:"tokens"`
		}
		if err := json.Unmarshal(o.m["special_tokens"], &raw); err != nil {
			return nil, fmt.Errorf("%s: %w", o.field("special_tokens"), err)
		}
		for name, sp := range raw {
			if len(sp.IDs) != len(sp.Tokens) {
				return nil, fmt.Errorf("%s.%s: %d ids but %d tokens", o.field("special_tokens"), name, len(sp.IDs), len(sp.Tokens))
			}
			specials[name] = specialPiece{ids: sp.IDs, tokens: sp.Tokens}
		}
	}
	items, err := o.objList("single")
	if err != nil {
		return nil, err
	}
	tp := &templatePost{}
	for _, it := range items {
		switch {
		case it.has("SpecialToken"):
			st, err := it.obj("SpecialToken")
			if err != nil {
				return nil, err
			}
			name, err := st.str("id", "")
			if err != nil {
				return nil, err
			}
			sp, ok := specials[name]
			if !ok {
				return nil, fmt.Errorf("%s: special token %q is not in special_tokens", st.field("id"), name)
			}
			tp.single = append(tp.single, templateItem{special: &sp})
		case it.has("Sequence"):
			tp.single = append(tp.single, templateItem{})
		default:
			return nil, fmt.Errorf("%s: expected SpecialToken or Sequence", it.path)
		}
	}
	return tp, nil
}

func (tp *templatePost) process(e *rawEncoding, addSpecial bool) *rawEncoding {
	if !addSpecial {
		return e
	}
	out := newRawEncoding(len(e.ids) + len(tp.single))
	for _, it := range tp.single {
		if it.special == nil {
			for i := range e.ids {
				out.push(e.ids[i], e.tokens[i], e.offsets[i], e.special[i])
			}
			continue
		}
		for k, id := range it.special.ids {
			out.push(id, it.special.tokens[k], [2]int{0, 0}, true)
		}
	}
	return out
}
