package tokenizer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/internal/jsonsize"
)

// ErrInvalidUTF8 is returned by Encode for text that is not valid UTF-8.
var ErrInvalidUTF8 = errors.New("text is not valid UTF-8")

// Encoding is the result of Encode. Offsets are [start, end) character (code
// point) offsets into the input text, as tokenizers' Python binding reports
// them; tokens added by the post-processor (BOS, EOS) have [0, 0].
type Encoding struct {
	IDs     []int
	Tokens  []string
	Offsets [][2]int
}

// Tokenizer is a loaded tokenizer.json. It is safe for concurrent use.
type Tokenizer struct {
	model         *bpe
	norm          normalizer
	pre           preTokenizer
	post          postProcessor
	dec           decoder
	added         []*AddedToken
	addedByID     map[int]*AddedToken
	addedByS      map[string]*AddedToken
	rawAdded      *addedMatcher // normalized=false tokens, matched in the input
	normAdded     *addedMatcher // normalized=true tokens, matched after normalizing
	vocabSize     int
	cfg           *Config
	bos, eos, pad int
	hash          string
	path          string // the tokenizer.json it was read from, for errors
	// cuts: text may be cut before a space that follows an ASCII letter
	// without changing the tokens before the cut (see prefix.go).
	cuts bool
}

// Bounds on the files Load reads whole. They come with downloaded models,
// so they are untrusted: the largest real tokenizer.json files (Gemma's
// 262k-token vocabulary) are about 33 MB, and tokenizer_config.json files
// are kilobytes to a few megabytes (added-token tables).
const (
	MaxFileBytes       = 512 << 20
	MaxConfigFileBytes = 64 << 20
)

// Bounds on the JSON values (keys counted) of those files, counted before
// they are decoded: the byte bounds alone let a 64 MiB tokenizer.json of
// empty merges ([[],[],...]) take 2.4 GB and 72 s to decode (19 GB at 512
// MiB), and a tokenizer_config.json of 22 million {} 2.7 GB. Qwen3's
// tokenizer.json (151k tokens and merges, 11 MB) holds 758k values
// (counted); Gemma's (33 MB) would hold some 2.5 million at Qwen3's
// bytes per value, and added-token tables put tokenizer_config.json
// files near 100k (estimated, not counted). The bounds are several
// times those, holding a decoding to about 1.6 GB and 0.4 GB.
const (
	MaxFileValues       = 16_000_000
	MaxConfigFileValues = 4_000_000
)

// checkValues refuses data, the contents of file, when it holds more
// than max JSON values.
func checkValues(file string, data []byte, max int) error {
	if off, over := jsonsize.CountValues(data, max); over {
		return fmt.Errorf("%s holds more than %d JSON values (past byte %d), the most ftune decodes in one (several times what the largest real ones hold): is it the file it names?", file, max, off+1)
	}
	return nil
}

// Load reads dir/tokenizer.json and, when present, dir/tokenizer_config.json
// (special tokens, add_bos_token/add_eos_token).
func Load(dir string) (*Tokenizer, error) {
	data, err := fsutil.ReadFileLimit(filepath.Join(dir, "tokenizer.json"), MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	var cfg *Config
	if _, err := os.Stat(cfgPath); err == nil {
		if cfg, err = ReadConfig(cfgPath); err != nil {
			return nil, err
		}
	}
	t, err := FromJSON(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", filepath.Join(dir, "tokenizer.json"), err)
	}
	t.path = filepath.Join(dir, "tokenizer.json")
	return t, nil
}

// LoadFile reads a tokenizer.json file alone.
func LoadFile(path string) (*Tokenizer, error) {
	data, err := fsutil.ReadFileLimit(path, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := FromJSON(data, nil)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	t.path = path
	return t, nil
}

// FromJSON builds a tokenizer from the contents of a tokenizer.json; cfg
// (from tokenizer_config.json) may be nil.
func FromJSON(data []byte, cfg *Config) (*Tokenizer, error) {
	if err := checkValues("tokenizer.json", data, MaxFileValues); err != nil {
		return nil, err
	}
	root, err := parseObj("tokenizer.json", data)
	if err != nil {
		return nil, err
	}
	root.path = "" // fields are named from the top of the file: "model.vocab"
	t := &Tokenizer{addedByID: map[int]*AddedToken{}, addedByS: map[string]*AddedToken{}, cfg: cfg}
	if root.has("normalizer") {
		o, err := root.obj("normalizer")
		if err != nil {
			return nil, err
		}
		if t.norm, err = buildNormalizer(o); err != nil {
			return nil, err
		}
	}
	byteLevel := false
	if root.has("pre_tokenizer") {
		o, err := root.obj("pre_tokenizer")
		if err != nil {
			return nil, err
		}
		if t.pre, byteLevel, err = buildPreTokenizer(o); err != nil {
			return nil, err
		}
	}
	if !root.has("model") {
		return nil, errors.New("model: missing")
	}
	mo, err := root.obj("model")
	if err != nil {
		return nil, err
	}
	if t.model, err = buildBPE(mo, byteLevel); err != nil {
		return nil, err
	}
	if root.has("post_processor") {
		o, err := root.obj("post_processor")
		if err != nil {
			return nil, err
		}
		if t.post, err = buildPostProcessor(o); err != nil {
			return nil, err
		}
	}
	if root.has("decoder") {
		o, err := root.obj("decoder")
		if err != nil {
			return nil, err
		}
		if t.dec, err = buildDecoder(o); err != nil {
			return nil, err
		}
	}
	if t.added, err = readAddedTokens(root); err != nil {
		return nil, err
	}
	if err := t.indexAdded(); err != nil {
		return nil, err
	}
	if err := t.checkPostSpecials(); err != nil {
		return nil, err
	}
	t.cuts = t.canCut()
	t.bos, t.eos, t.pad = -1, -1, -1
	h := sha256.New()
	h.Write(data)
	if cfg != nil {
		c, _ := json.Marshal(cfg)
		h.Write(c)
	}
	t.hash = hex.EncodeToString(h.Sum(nil))
	if cfg != nil {
		t.bos = t.idOf(cfg.BOSToken)
		t.eos = t.idOf(cfg.EOSToken)
		t.pad = t.idOf(cfg.PADToken)
		if err := t.applyAddSpecial(cfg); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// checkPostSpecials refuses a post-processor that inserts an id the
// vocabulary does not hold: every encoding would carry it, and it would
// reach the model as an embedding row the tokenizer cannot name (or one
// past the table) and fail to decode.
func (t *Tokenizer) checkPostSpecials() error {
	for _, sp := range postSpecials(t.post) {
		for k, id := range sp.ids {
			if _, ok := t.IDToToken(id); !ok {
				return fmt.Errorf("post_processor: special token %q has id %d, which is neither in model.vocab (%d tokens) nor in added_tokens", sp.tokens[k], id, len(t.model.tokens))
			}
		}
	}
	return nil
}

func (t *Tokenizer) idOf(tok string) int {
	if tok == "" {
		return -1
	}
	if id, ok := t.TokenToID(tok); ok {
		return id
	}
	return -1
}

func (t *Tokenizer) indexAdded() error {
	t.vocabSize = len(t.model.tokens)
	var raw, normd []addedPattern
	for _, a := range t.added {
		t.addedByID[a.ID] = a
		t.addedByS[a.Content] = a
		t.vocabSize = max(t.vocabSize, a.ID+1)
		if !a.Normalized || t.norm == nil {
			raw = append(raw, addedPattern{a.Content, a})
			continue
		}
		n := identity(a.Content, 0)
		if err := t.norm.normalize(&n, newBudget(len(n.s))); err != nil {
			return fmt.Errorf("added token %q: %w", a.Content, err)
		}
		if n.s != "" {
			normd = append(normd, addedPattern{n.s, a})
		}
	}
	t.rawAdded = newAddedMatcher(raw)
	t.normAdded = newAddedMatcher(normd)
	return nil
}

// Encode tokenizes text. With addSpecialTokens the post-processor's special
// tokens (BOS/EOS of Llama-family templates) are added.
func (t *Tokenizer) Encode(text string, addSpecialTokens bool) (Encoding, error) {
	enc, err := t.encodeBytes(text, addSpecialTokens)
	if err != nil {
		return Encoding{}, err
	}
	if !isASCII(text) { // ASCII text has character offsets equal to byte offsets
		conv := newCharOffsets(text)
		for i, o := range enc.Offsets {
			enc.Offsets[i] = conv.convert(o)
		}
	}
	return enc, nil
}

// EncodeOffsets is Encode with [start, end) byte offsets into text, the
// shape of data/prep's OffsetEncoder: labels then follow the tokens of the
// whole text, so a token that spans a boundary (an added token that strips
// the whitespace after it, as Phi-3's <|assistant|> does) is counted once.
// Tokens added by the post-processor have start == end.
func (t *Tokenizer) EncodeOffsets(text string, addSpecialTokens bool) (ids []int, offsets [][2]int, err error) {
	enc, err := t.encodeBytes(text, addSpecialTokens)
	if err != nil {
		return nil, nil, err
	}
	return enc.IDs, enc.Offsets, nil
}

// encodeBytes is Encode with byte offsets.
func (t *Tokenizer) encodeBytes(text string, addSpecialTokens bool) (Encoding, error) {
	if err := checkUTF8(text); err != nil {
		return Encoding{}, err
	}
	raw, err := t.encodeRaw(text, 0)
	if err != nil {
		return Encoding{}, err
	}
	if t.post != nil {
		raw = t.post.process(raw, addSpecialTokens)
	}
	return raw.encoding(), nil
}

// encodeRaw encodes valid UTF-8 text up to the post-processor: added
// tokens, then each segment between them. With stop > 0 it may stop once it
// has stop tokens or more (the first ones of the text's).
func (t *Tokenizer) encodeRaw(text string, stop int) (*rawEncoding, error) {
	// English averages 3-4 bytes a token (byte-level BPE), 2-3 with byte
	// fallback; growing the four slices costs more than the slack.
	size := len(text)/2 + 4
	if stop > 0 {
		size = min(size, stop+16)
	}
	raw := newRawEncoding(size)
	raw.stop = stop
	b := newBudget(len(text))
	prev := 0
	for _, m := range t.rawAdded.find(text) {
		if raw.done() {
			return raw, nil
		}
		if err := t.encodeSegment(identity(text[prev:m.start], prev), raw, b); err != nil {
			return nil, fmt.Errorf("encode: %s: %w", t.name(), err)
		}
		raw.push(m.tok.ID, m.tok.Content, [2]int{m.start, m.end}, false)
		prev = m.end
	}
	if err := t.encodeSegment(identity(text[prev:], prev), raw, b); err != nil {
		return nil, fmt.Errorf("encode: %s: %w", t.name(), err)
	}
	return raw, nil
}

func (raw *rawEncoding) encoding() Encoding {
	enc := Encoding{IDs: raw.ids, Tokens: raw.tokens, Offsets: raw.offsets}
	if enc.IDs == nil {
		enc = Encoding{IDs: []int{}, Tokens: []string{}, Offsets: [][2]int{}}
	}
	return enc
}

// checkUTF8 is encodeBytes' error for text that is not valid UTF-8.
func checkUTF8(text string) error {
	if utf8.ValidString(text) {
		return nil
	}
	i := 0
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	return fmt.Errorf("encode: byte %d: %w", i, ErrInvalidUTF8)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// encodeSegment encodes text between added tokens: normalize, match
// normalized added tokens, pre-tokenize, run the model.
func (t *Tokenizer) encodeSegment(n nstr, out *rawEncoding, b *budget) error {
	if n.s == "" {
		return nil
	}
	if t.norm != nil {
		b.grownFrom = len(n.s)
		if err := t.norm.normalize(&n, b); err != nil {
			return err
		}
	}
	prev := 0
	for _, m := range t.normAdded.find(n.s) {
		if err := t.encodeNormalized(n.sub(prev, m.start), out, b); err != nil {
			return err
		}
		r := n.origRange(m.start, m.end)
		out.push(m.tok.ID, m.tok.Content, [2]int{r.start, r.end}, false)
		prev = m.end
	}
	return t.encodeNormalized(n.sub(prev, len(n.s)), out, b)
}

func (t *Tokenizer) encodeNormalized(n nstr, out *rawEncoding, b *budget) error {
	if n.s == "" {
		return nil
	}
	model := func(p nstr) {
		if out.done() {
			return
		}
		for _, w := range t.model.tokenize(p.s) {
			r := p.charRange(int(w.start), int(w.end))
			out.push(int(w.id), t.model.tokens[w.id], [2]int{r.start, r.end}, false)
		}
	}
	word := model
	if t.model.metaSplit {
		word = func(p nstr) {
			start := 0
			for i := 1; i < len(p.s); i++ {
				if strings.HasPrefix(p.s[i:], metaspace) && !strings.HasSuffix(p.s[:i], metaspace) {
					model(p.sub(start, i))
					start = i
				}
			}
			model(p.sub(start, len(p.s)))
		}
	}
	if t.pre == nil {
		word(n)
		return nil
	}
	return t.pre.split(n, word, b)
}

// Decode turns ids back into text; skipSpecial leaves out special added
// tokens. An id outside the vocabulary is an error. It is tokenizers'
// decode, plus transformers' clean-up of spaces when tokenizer_config.json
// sets clean_up_tokenization_spaces to true.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) (string, error) {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		if a, ok := t.addedByID[id]; ok {
			if !(skipSpecial && a.Special) {
				tokens = append(tokens, a.Content)
			}
			continue
		}
		if id < 0 || id >= len(t.model.tokens) || t.model.tokens[id] == "" {
			return "", fmt.Errorf("decode: id %d is not in the vocabulary of %s (size %d)", id, t.name(), t.vocabSize)
		}
		tok := t.model.tokens[id]
		if skipSpecial {
			if a, ok := t.addedByS[tok]; ok && a.Special {
				continue
			}
		}
		tokens = append(tokens, tok)
	}
	var out string
	if t.dec == nil {
		out = strings.Join(tokens, " ")
	} else {
		pieces, err := t.dec.decode(tokens, newBudget(totalLen(tokens)))
		if err != nil {
			return "", fmt.Errorf("decode: %s: %w", t.name(), err)
		}
		out = strings.Join(pieces, "")
	}
	if c := t.cfg; c != nil && c.CleanUpTokenizationSpaces != nil && *c.CleanUpTokenizationSpaces {
		out = cleanupSpaces(out)
	}
	return out, nil
}

// TokenToID returns the id of a token (added tokens first, as tokenizers).
func (t *Tokenizer) TokenToID(tok string) (int, bool) {
	if a, ok := t.addedByS[tok]; ok {
		return a.ID, true
	}
	id, ok := t.model.vocab[tok]
	return id, ok
}

// IDToToken returns the token of an id.
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if a, ok := t.addedByID[id]; ok {
		return a.Content, true
	}
	if id < 0 || id >= len(t.model.tokens) || t.model.tokens[id] == "" {
		return "", false
	}
	return t.model.tokens[id], true
}

// VocabSize is one more than the largest id, added tokens included (the
// number of embedding rows the tokenizer needs).
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// name is the file the tokenizer came from, for errors.
func (t *Tokenizer) name() string {
	if t.path == "" {
		return "tokenizer.json"
	}
	return t.path
}

// CheckVocab checks the tokenizer against a model's embedding rows
// (config.json's vocab_size): an added token with an id past them, or a
// vocabulary larger than them, would index past the embedding table with
// nothing to name the token or the file.
func (t *Tokenizer) CheckVocab(modelVocab int) error {
	for _, a := range t.added {
		if a.ID >= modelVocab {
			return fmt.Errorf("%s: added token %q has id %d, outside the model's vocabulary of %d (config.json vocab_size): tokenizer and model do not match", t.name(), a.Content, a.ID, modelVocab)
		}
	}
	if n := len(t.model.tokens); n > modelVocab {
		return fmt.Errorf("%s: %d tokens (the last %q), more than the model's vocabulary of %d (config.json vocab_size): tokenizer and model do not match", t.name(), n, t.model.tokens[n-1], modelVocab)
	}
	return nil
}

// AddedTokens lists the added tokens of tokenizer.json.
func (t *Tokenizer) AddedTokens() []AddedToken {
	out := make([]AddedToken, len(t.added))
	for i, a := range t.added {
		out[i] = *a
	}
	return out
}

// IsSpecial reports whether id is a special added token.
func (t *Tokenizer) IsSpecial(id int) bool {
	a, ok := t.addedByID[id]
	return ok && a.Special
}

// BOS returns the id of tokenizer_config.json's bos_token.
func (t *Tokenizer) BOS() (int, bool) { return t.bos, t.bos >= 0 }

// EOS returns the id of tokenizer_config.json's eos_token.
func (t *Tokenizer) EOS() (int, bool) { return t.eos, t.eos >= 0 }

// PAD returns the id of tokenizer_config.json's pad_token.
func (t *Tokenizer) PAD() (int, bool) { return t.pad, t.pad >= 0 }

// Hash identifies the tokenizer (sha256 of tokenizer.json and the settings
// read from tokenizer_config.json), for caches of token ids that a changed
// tokenizer must invalidate.
func (t *Tokenizer) Hash() string { return t.hash }

// Config returns tokenizer_config.json's settings (nil when there was none).
func (t *Tokenizer) Config() *Config { return t.cfg }
