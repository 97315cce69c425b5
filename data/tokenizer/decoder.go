package tokenizer

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decoder turns tokens back into text pieces, as tokenizers' decode_chain.
// b bounds the time of its regexes and how much it may grow the text (see
// budget.go): at most growthLimit(b.grownFrom) bytes in all after any
// stage. Replace checks before it builds the text; the other decoders
// grow it by a bounded factor, and a Sequence checks after each stage.
type decoder interface {
	decode(tokens []string, b *budget) ([]string, error)
}

func buildDecoder(o jobj) (decoder, error) {
	t, err := o.typ()
	if err != nil {
		return nil, err
	}
	switch t {
	case "Sequence":
		subs, err := o.objList("decoders")
		if err != nil {
			return nil, err
		}
		var seq seqDecoder
		for _, sub := range subs {
			d, err := buildDecoder(sub)
			if err != nil {
				return nil, err
			}
			seq.stages = append(seq.stages, d)
			seq.names = append(seq.names, sub.name())
		}
		return seq, nil
	case "ByteLevel":
		return byteLevelDecoder{}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Replace":
		m, err := buildMatcher(o, "pattern")
		if err != nil {
			return nil, err
		}
		c, err := o.str("content", "")
		if err != nil {
			return nil, err
		}
		return replaceDecoder{m, c, o.name()}, nil
	case "Strip":
		c, err := o.oneChar("content", ' ')
		if err != nil {
			return nil, err
		}
		start, err := o.integer("start", 0)
		if err != nil {
			return nil, err
		}
		stop, err := o.integer("stop", 0)
		if err != nil {
			return nil, err
		}
		return stripDecoder{c: string(c), start: start, stop: stop}, nil
	case "Metaspace":
		p, _, err := buildMetaspace(o)
		if err != nil {
			return nil, err
		}
		ms := p.(metaspacePre)
		return metaspaceDecoder{repl: ms.repl, stripFirst: ms.prepend != "never"}, nil
	case "WordPiece":
		prefix, err := o.str("prefix", "##")
		if err != nil {
			return nil, err
		}
		cleanup, err := o.boolean("cleanup", true)
		if err != nil {
			return nil, err
		}
		return wordPieceDecoder{prefix: prefix, cleanup: cleanup}, nil
	case "BPEDecoder":
		suffix, err := o.str("suffix", "</w>")
		if err != nil {
			return nil, err
		}
		return bpeDecoder{suffix: suffix}, nil
	case "":
		return nil, fmt.Errorf("%s: missing \"type\"", o.path)
	default:
		return nil, o.unsupported("decoder type " + t)
	}
}

type seqDecoder struct {
	stages []decoder
	names  []string // of the stages, for errors
}

func (s seqDecoder) decode(tokens []string, b *budget) ([]string, error) {
	for i, d := range s.stages {
		var err error
		if tokens, err = d.decode(tokens, b); err != nil {
			return nil, err
		}
		if err := b.checkGrowth(s.names[i], totalLen(tokens)); err != nil {
			return nil, err
		}
	}
	return tokens, nil
}

func totalLen(tokens []string) int {
	n := 0
	for _, t := range tokens {
		n += len(t)
	}
	return n
}

type byteLevelDecoder struct{}

func (byteLevelDecoder) decode(tokens []string, _ *budget) ([]string, error) {
	var b []byte
	for _, t := range tokens {
		b = unByteLevel(t, b)
	}
	return []string{lossyUTF8(b)}, nil
}

// byteFallbackDecoder turns runs of <0xNN> tokens into the text they spell;
// a run that is not valid UTF-8 becomes one U+FFFD per byte (tokenizers).
type byteFallbackDecoder struct{}

func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	v, err := strconv.ParseUint(t[3:5], 16, 8)
	return byte(v), err == nil
}

func (byteFallbackDecoder) decode(tokens []string, _ *budget) ([]string, error) {
	out := make([]string, 0, len(tokens))
	var run []byte
	flush := func() {
		if len(run) == 0 {
			return
		}
		if s := string(run); utf8.ValidString(s) {
			out = append(out, s)
		} else {
			for range run {
				out = append(out, "\uFFFD")
			}
		}
		run = run[:0]
	}
	for _, t := range tokens {
		if b, ok := parseByteToken(t); ok {
			run = append(run, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out, nil
}

type fuseDecoder struct{}

func (fuseDecoder) decode(tokens []string, _ *budget) ([]string, error) {
	return []string{strings.Join(tokens, "")}, nil
}

type replaceDecoder struct {
	m       matcher
	content string
	name    string // for errors
}

func (r replaceDecoder) decode(tokens []string, b *budget) ([]string, error) {
	out := make([]string, len(tokens))
	// total is the length of the output so far plus that of the tokens
	// still to replace, checked before each token's replacement is built.
	total, limit := totalLen(tokens), growthLimit(b.grownFrom)
	for i, t := range tokens {
		ms, err := r.m.find(t, b)
		if err != nil {
			return nil, err
		}
		if len(ms) == 0 {
			out[i] = t
			continue
		}
		total = replacedLen(total, ms, len(r.content), limit)
		if err := b.checkGrowth(r.name, total); err != nil {
			return nil, err
		}
		var sb strings.Builder
		prev := 0
		for _, m := range ms {
			sb.WriteString(t[prev:m[0]])
			sb.WriteString(r.content)
			prev = m[1]
		}
		sb.WriteString(t[prev:])
		out[i] = sb.String()
	}
	return out, nil
}

// stripDecoder removes up to start leading and stop trailing copies of c
// from every token (Llama-2 strips the space its Metaspace prepended).
type stripDecoder struct {
	c           string
	start, stop int
}

func (s stripDecoder) decode(tokens []string, _ *budget) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		for k := 0; k < s.start && strings.HasPrefix(t, s.c); k++ {
			t = t[len(s.c):]
		}
		for k := 0; k < s.stop && strings.HasSuffix(t, s.c); k++ {
			t = t[:len(t)-len(s.c)]
		}
		out[i] = t
	}
	return out, nil
}

type metaspaceDecoder struct {
	repl       string
	stripFirst bool
}

// decode follows tokenizers exactly: in the first token every replacement
// character is dropped (not only a leading one) unless prepend_scheme is
// "never"; elsewhere each becomes a space.
func (m metaspaceDecoder) decode(tokens []string, _ *budget) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		if i == 0 && m.stripFirst {
			out[i] = strings.ReplaceAll(t, m.repl, "")
		} else {
			out[i] = strings.ReplaceAll(t, m.repl, " ")
		}
	}
	return out, nil
}

type wordPieceDecoder struct {
	prefix  string
	cleanup bool
}

func (w wordPieceDecoder) decode(tokens []string, _ *budget) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		if i > 0 {
			if strings.HasPrefix(t, w.prefix) {
				t = t[len(w.prefix):]
			} else {
				t = " " + t
			}
		}
		if w.cleanup {
			t = cleanupSpaces(t)
		}
		out[i] = t
	}
	return out, nil
}

// cleanupSpaces is transformers' clean_up_tokenization: these replacements,
// one after the other in this order (a single strings.Replacer would
// differ where they overlap).
func cleanupSpaces(s string) string {
	for _, r := range [...][2]string{
		{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
		{" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
	} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}

type bpeDecoder struct{ suffix string }

func (b bpeDecoder) decode(tokens []string, _ *budget) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		rep := " "
		if i == len(tokens)-1 {
			rep = ""
		}
		out[i] = strings.ReplaceAll(t, b.suffix, rep)
	}
	return out, nil
}
