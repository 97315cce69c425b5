package prep

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
)

func testKey() CacheKey {
	return CacheKey{Tokenizer: HashString("tok"), Template: HashString("tmpl"), Options: OptionsHash(Options{}, 0)}
}

func TestCacheRoundTrip(t *testing.T) {
	docs := randomDocs(50, 30, 8)
	docs = append(docs, Tokenized{Subject: 2}) // an empty document survives
	path := filepath.Join(t.TempDir(), "train.tok")
	if err := WriteCache(path, testKey(), docs); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries: temporary file left behind", len(ents))
	}
	c, err := OpenCache(path, testKey())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Len() != len(docs) {
		t.Fatalf("%d documents, want %d", c.Len(), len(docs))
	}
	total := 0
	for i, d := range docs {
		got := c.Doc(i)
		total += len(d.IDs)
		same := len(got.IDs) == len(d.IDs) && len(got.Labels) == len(d.Labels)
		if len(d.IDs) > 0 { // nil and empty slices are the same document
			same = same && reflect.DeepEqual(got.IDs, d.IDs) && reflect.DeepEqual(got.Labels, d.Labels)
		}
		if !same || got.Subject != d.Subject {
			t.Fatalf("document %d: got %+v want %+v", i, got, d)
		}
	}
	if c.NumTokens() != total {
		t.Errorf("%d tokens, want %d", c.NumTokens(), total)
	}
}

func TestCacheStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.tok")
	if err := WriteCache(path, testKey(), randomDocs(3, 5, 1)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what string
		edit func(*CacheKey)
	}{
		{"tokenizer", func(k *CacheKey) { k.Tokenizer = HashString("tok2") }},
		{"chat template", func(k *CacheKey) { k.Template = HashString("tmpl2") }},
		{"preprocessing options", func(k *CacheKey) { k.Options = OptionsHash(Options{TrainOnInputs: true}, 0) }},
		// The data file was edited after the cache was made: "data prepare"
		// said "(up to date)" and training read the old tokens.
		{"data", func(k *CacheKey) {
			k.Data = HashExamples([]format.Example{{Messages: msgs("user", "Q", "assistant", "edited answer")}})
		}},
	} {
		k := testKey()
		tc.edit(&k)
		_, err := OpenCache(path, k)
		if !errors.Is(err, ErrCacheStale) || !strings.Contains(err.Error(), tc.what) {
			t.Errorf("%s changed: error %v", tc.what, err)
		}
	}
}

func TestCacheCorrupt(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tok")
	if err := WriteCache(good, testKey(), randomDocs(4, 6, 2)); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	huge := append([]byte(nil), data...)
	for i := 144; i < 160; i++ {
		huge[i] = 0xff
	}
	// Another layout, of another version: no checksum of this version's
	// (a version field damaged in place is TestCacheDamageIsRebuilt's).
	version := append([]byte(nil), data[:len(data)-cacheTrailer]...)
	version[8] = 9
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "expected magic"},
		{"not a cache", []byte(strings.Repeat("x", 200)), "expected magic"},
		{"truncated", data[:len(data)-1], "header implies"},
		{"huge counts", huge, "header claims"},
	} {
		p := filepath.Join(dir, tc.name)
		os.WriteFile(p, tc.data, 0o644)
		_, err := OpenCache(p, testKey())
		if !errors.Is(err, ErrCacheCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	// Another layout version is stale (rebuilt), not damage.
	p := filepath.Join(dir, "version")
	os.WriteFile(p, version, 0o644)
	if _, err := OpenCache(p, testKey()); !errors.Is(err, ErrCacheStale) || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("version: error %v", err)
	}
}

// TestHashExamples: any edit of what is tokenised changes the hash; the
// source position does not.
func TestHashExamples(t *testing.T) {
	base := []format.Example{{Messages: msgs("user", "Q", "assistant", "A"), Source: "a.jsonl:1"}, {Text: "t"}}
	h := HashExamples(base)
	moved := []format.Example{{Messages: msgs("user", "Q", "assistant", "A"), Source: "b.jsonl:9"}, {Text: "t"}}
	if HashExamples(moved) != h {
		t.Error("the source position changed the hash")
	}
	for name, exs := range map[string][]format.Example{
		"content":   {{Messages: msgs("user", "Q", "assistant", "B")}, {Text: "t"}},
		"role":      {{Messages: msgs("system", "Q", "assistant", "A")}, {Text: "t"}},
		"text":      {{Messages: msgs("user", "Q", "assistant", "A")}, {Text: "u"}},
		"split":     {{Messages: msgs("user", "QA", "assistant", "")}, {Text: "t"}},
		"order":     {{Text: "t"}, {Messages: msgs("user", "Q", "assistant", "A")}},
		"removed":   {{Messages: msgs("user", "Q", "assistant", "A")}},
		"reasoning": {{Messages: []format.Message{{Role: "user", Content: "Q"}, {Role: "assistant", Content: "A", ReasoningContent: "R"}}}, {Text: "t"}},
		"tools":     {{Messages: msgs("user", "Q", "assistant", "A"), Tools: `[{"name":"f"}]`}, {Text: "t"}},
		"tool call": {{Messages: []format.Message{{Role: "user", Content: "Q"}, {Role: "assistant", Content: "A", ToolCalls: []format.ToolCall{{Name: "f", Arguments: "{}"}}}}}, {Text: "t"}},
		"call args": {{Messages: []format.Message{{Role: "user", Content: "Q"}, {Role: "assistant", Content: "A", ToolCalls: []format.ToolCall{{Name: "f", Arguments: `{"a":1}`}}}}}, {Text: "t"}},
		"name":      {{Messages: []format.Message{{Role: "user", Content: "Q", Name: "Ann"}, {Role: "assistant", Content: "A"}}}, {Text: "t"}},
		"call id":   {{Messages: []format.Message{{Role: "user", Content: "Q"}, {Role: "tool", Content: "A", ToolCallID: "c"}}}, {Text: "t"}},
	} {
		if HashExamples(exs) == h {
			t.Errorf("%s edit: same hash", name)
		}
	}
	// Calls that differ only in their arguments are different data.
	a := []format.Example{{Messages: []format.Message{{Role: "assistant", ToolCalls: []format.ToolCall{{Name: "f", Arguments: `{"a":1}`}}}}}}
	b := []format.Example{{Messages: []format.Message{{Role: "assistant", ToolCalls: []format.ToolCall{{Name: "f", Arguments: `{"a":2}`}}}}}}
	if HashExamples(a) == HashExamples(b) {
		t.Error("tool calls differing in their arguments: same hash")
	}
}

func TestCacheRejectsLabelsItCannotStore(t *testing.T) {
	d := Tokenized{IDs: []int32{5, 6}, Labels: []int32{5, 7}}
	if err := WriteCache(filepath.Join(t.TempDir(), "c"), testKey(), []Tokenized{d}); err == nil {
		t.Error("a label that is neither the token nor ignored was accepted")
	}
}

func TestOpenOrBuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.tok")
	builds := 0
	build := func() ([]Tokenized, error) { builds++; return randomDocs(5, 5, uint64(builds)), nil }
	for i, tc := range []struct {
		key     CacheKey
		rebuilt bool
	}{{testKey(), true}, {testKey(), false}, {CacheKey{Tokenizer: HashString("new")}, true}, {CacheKey{Tokenizer: HashString("new")}, false}} {
		c, rebuilt, err := OpenOrBuild(path, tc.key, build)
		if err != nil {
			t.Fatal(err)
		}
		if rebuilt != tc.rebuilt || c.Key != tc.key {
			t.Errorf("call %d: rebuilt %v, want %v", i, rebuilt, tc.rebuilt)
		}
		c.Close()
	}
	if builds != 2 {
		t.Errorf("%d builds, want 2", builds)
	}
}

// TestCacheCheckVocab: an id outside the vocabulary names the cache file,
// the document and the token.
func TestCacheCheckVocab(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.tok")
	docs := []Tokenized{{IDs: []int32{1, 2}, Labels: []int32{1, 2}}, {IDs: []int32{3, 4, 900}, Labels: []int32{3, 4, 900}}}
	if err := WriteCache(path, testKey(), docs); err != nil {
		t.Fatal(err)
	}
	c, err := OpenCache(path, testKey())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CheckVocab(1000); err != nil {
		t.Errorf("in vocabulary: %v", err)
	}
	err = c.CheckVocab(500)
	if !errors.Is(err, ErrCacheCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "document 1 (of 2), token 2: id 900") {
		t.Errorf("got %v", err)
	}
}

// TestWriteCacheCancelled: a cancelled write leaves no cache, half or whole.
func TestWriteCacheCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	path := filepath.Join(t.TempDir(), "c.tok")
	if err := WriteCacheContext(ctx, path, testKey(), randomDocs(4, 6, 2)); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
	_, rebuilt, err := OpenOrBuildContext(ctx, path, testKey(), func() ([]Tokenized, error) { return randomDocs(4, 6, 2), nil })
	if !errors.Is(err, context.Canceled) || !rebuilt {
		t.Errorf("OpenOrBuildContext: %v", err)
	}
}
