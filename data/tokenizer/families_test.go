package tokenizer_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/internal/testutil"
)

// familiesRoot holds a folder per model family (Qwen3, Gemma 2/3, Phi-3,
// Phi-4-mini) with the family's real tokenizer files and goldens made by
// tokenizers.js (see its README.md for provenance and licences).
const familiesRoot = "../../testdata/tokenizers"

// materializeFamily returns a folder that Load and chat.Load can read for
// the family folder dir: files stored zstd-compressed (the large
// vocabularies) are decompressed into a temporary folder, the rest copied. A folder
// with a tokenizer_from file uses the tokenizer of the folder it names
// (Qwen3's files already live in data/tokenizer/testdata/qwen3).
func materializeFamily(t *testing.T, dir string) string {
	t.Helper()
	familyCache.Lock()
	defer familyCache.Unlock()
	if d, ok := familyCache.dirs[dir]; ok {
		return d
	}
	d := materializeFamilyUncached(t, dir)
	familyCache.dirs[dir] = d
	return d
}

// familyCache keeps each family's decompressed folder and loaded tokenizer
// for the package's tests: Gemma's vocabularies take seconds to inflate and
// load, and three tests read them.
var familyCache = struct {
	sync.Mutex
	dirs map[string]string
	toks map[string]*tokenizer.Tokenizer
}{dirs: map[string]string{}, toks: map[string]*tokenizer.Tokenizer{}}

// loadFamilyTokenizer loads a family folder's tokenizer once.
func loadFamilyTokenizer(t *testing.T, dir string) *tokenizer.Tokenizer {
	t.Helper()
	mat := materializeFamily(t, dir)
	familyCache.Lock()
	defer familyCache.Unlock()
	if tok, ok := familyCache.toks[mat]; ok {
		return tok
	}
	tok, err := tokenizer.Load(mat)
	if err != nil {
		t.Fatal(err)
	}
	familyCache.toks[mat] = tok
	return tok
}

func materializeFamilyUncached(t *testing.T, dir string) string {
	if from, err := os.ReadFile(filepath.Join(dir, "tokenizer_from")); err == nil {
		src := filepath.Join(dir, strings.TrimSpace(string(from)))
		if _, err := os.Stat(filepath.Join(src, "tokenizer.json.zst")); err != nil {
			t.Fatalf("%s: tokenizer_from names %s: %v", dir, src, err)
		}
		return materializeFamilyUncached(t, src)
	}
	out, err := os.MkdirTemp("", "ftune-family-")
	if err != nil {
		t.Fatal(err)
	}
	// Shared by the package's tests, so not t.TempDir (removed when the
	// first test ends): TestMain removes it.
	tokenizer.AfterTests = append(tokenizer.AfterTests, func() { os.RemoveAll(out) })
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		if name != "tokenizer.json.zst" && name != "tokenizer_config.json.zst" &&
			name != "tokenizer_config.json" && name != "chat_template.jinja" {
			continue
		}
		if err := testutil.InflateFile(filepath.Join(dir, name), out); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "tokenizer.json")); err != nil {
		t.Fatalf("%s: no tokenizer.json.zst or tokenizer_from", dir)
	}
	return out
}

// familyDirs lists the family folders holding file, and fails unless they
// are exactly want: a folder lost or renamed must not pass unnoticed.
func familyDirs(t *testing.T, file string, want ...string) []string {
	entries, err := os.ReadDir(familiesRoot)
	if err != nil {
		t.Fatal(err)
	}
	var dirs, names []string
	for _, e := range entries {
		dir := filepath.Join(familiesRoot, e.Name())
		if _, err := os.Stat(filepath.Join(dir, file)); e.IsDir() && err == nil {
			dirs = append(dirs, dir)
			names = append(names, e.Name())
		}
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("%s: folders with %s: %v, want %v", familiesRoot, file, names, want)
	}
	return dirs
}

// TestFamilyTokenizers checks each family's real tokenizer.json against
// tokenizers.js on the varied texts of gen/texts.json: ids with and
// without special tokens, tokens and decoded text, all exactly.
func TestFamilyTokenizers(t *testing.T) {
	for _, dir := range familyDirs(t, "golden_tokenizersjs.json", "gemma2", "gemma3", "mistral", "phi3", "phi4-mini", "qwen3") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var golden struct {
				Cases []goldenCase `json:"cases"`
			}
			if !readJSON(t, filepath.Join(dir, "golden_tokenizersjs.json"), &golden) {
				t.Fatalf("%s: no golden_tokenizersjs.json", dir)
			}
			tok := loadFamilyTokenizer(t, dir)
			for i, c := range golden.Cases {
				t.Run(itoa(i), func(t *testing.T) {
					checkCase(t, tok, c)
					checkByteOffsets(t, tok, c.Text)
				})
			}
			// llama.cpp's tokenizer on the family's GGUF vocabulary, where
			// one is here: ids only (see README.md).
			var lc struct {
				Cases []goldenCase `json:"cases"`
			}
			if readJSON(t, filepath.Join(dir, "golden_llamacpp.json"), &lc) {
				t.Run("llamacpp", func(t *testing.T) { checkIDs(t, tok, lc.Cases) })
			}
		})
	}
}

// checkByteOffsets checks EncodeOffsets against Encode: the same ids, and
// byte offsets that are Encode's character offsets once counted in runes.
func checkByteOffsets(t *testing.T, tok *tokenizer.Tokenizer, text string) {
	t.Helper()
	enc, err := tok.Encode(text, true)
	if err != nil {
		t.Fatal(err)
	}
	ids, offs, err := tok.EncodeOffsets(text, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, enc.IDs) {
		t.Fatalf("EncodeOffsets ids %v, Encode %v", ids, enc.IDs)
	}
	for i, o := range offs {
		if o[0] < 0 || o[0] > o[1] || o[1] > len(text) {
			t.Fatalf("token %d: byte offsets %v outside %d bytes", i, o, len(text))
		}
		chars := [2]int{utf8.RuneCountInString(text[:o[0]]), utf8.RuneCountInString(text[:o[1]])}
		if chars != enc.Offsets[i] {
			t.Fatalf("token %d: byte offsets %v are characters %v, Encode says %v", i, o, chars, enc.Offsets[i])
		}
	}
}
