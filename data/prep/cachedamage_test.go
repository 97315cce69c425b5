package prep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// damageTokenization is a tokenisation of 7 examples with every outcome
// (7: one byte of padding after the outcomes), 5 documents of 3 subjects
// and the examples' keys: every section of a cache holds something.
func damageTokenization() Tokenization {
	outcomes := []Outcome{Kept, Truncated, Dropped, Kept, DroppedNoLabel, Kept, Truncated}
	keys := make([]uint64, len(outcomes))
	for i := range keys {
		keys[i] = 0x0123456789abcdef * uint64(i+1)
	}
	return Tokenization{Docs: randomDocs(5, 40, 11), Outcomes: outcomes, Keys: keys}
}

// cacheRegion is a span of a cache file's bytes, as the layout at the top
// of cache.go gives them.
type cacheRegion struct {
	name     string
	off, len int
	want     string // what the error says of a byte changed in it
}

// cacheRegions tiles a cache file of t (with keys) into its regions.
func cacheRegions(t Tokenization) []cacheRegion {
	d, e := len(t.Docs), len(t.Outcomes)
	n := 0
	for _, doc := range t.Docs {
		n += len(doc.IDs)
	}
	const sum = "fail their checksum"
	var rs []cacheRegion
	off := 0
	add := func(name string, l int, want string) {
		rs = append(rs, cacheRegion{name, off, l, want})
		off += l
	}
	add("magic", 8, "expected magic")
	add("version", 4, "its version field reads")
	add("reserved", 4, sum)
	add("tokenizer hash", 32, sum)
	add("template hash", 32, sum)
	add("options hash", 32, sum)
	add("data hash", 32, sum)
	// A changed count or flag makes the header disagree with the file's
	// size (or claim more than it holds), said before the checksum.
	add("documents", 8, "")
	add("tokens", 8, "")
	add("examples", 8, "")
	add("truncated count", 8, sum)
	add("dropped count", 8, sum)
	add("no-label count", 8, sum)
	add("flags", 8, "")
	add("document offsets", 8*(d+1), sum)
	add("example keys", 8*e, sum)
	add("subjects", 4*d, sum)
	add("outcomes", e, sum)
	add("padding", int(pad4(uint64(e))), sum)
	add("token ids", 4*n, sum)
	add("label mask", n, sum)
	add("checksum", cacheTrailer, sum)
	return rs
}

// TestCacheDamageIsRebuilt: a token cache changed in place after ftune
// wrote it (one byte of any region, to a value still plausible there,
// such as an id still in the vocabulary; cut short; added to) was read and
// trained on. Each is now refused when opened, said in one line naming the
// file and the damage, and rebuilt into the file a fresh build writes;
// an untouched cache is read, not rebuilt.
func TestCacheDamageIsRebuilt(t *testing.T) {
	tok := damageTokenization()
	path := filepath.Join(t.TempDir(), "train.tokens")
	if err := WriteTokenization(context.Background(), path, testKey(), tok, nil); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	regions := cacheRegions(tok)
	if last := regions[len(regions)-1]; last.off+last.len != len(good) {
		t.Fatalf("the regions end at %d, the file at %d", last.off+last.len, len(good))
	}
	if regions[18].name != "padding" || regions[18].len == 0 {
		t.Fatalf("no padding: %+v", regions[18])
	}

	// open opens the cache at path as a run does, saying on log why it
	// rebuilds it, and gives what it holds, the log and whether it was
	// rebuilt.
	open := func(t *testing.T) (got Tokenization, log string, rebuilt bool) {
		t.Helper()
		var b strings.Builder
		builds := 0
		c, rebuilt, err := OpenOrBuildTokenization(context.Background(), path, testKey(), &b, func() (Tokenization, error) {
			builds++
			return damageTokenization(), nil
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, b.String())
		}
		defer c.Close()
		if builds != bool2int(rebuilt) {
			t.Errorf("%d builds, rebuilt %v", builds, rebuilt)
		}
		docs := c.Docs()
		for i := range docs {
			docs[i].IDs = append([]int32(nil), docs[i].IDs...)
		}
		return Tokenization{Docs: docs, Outcomes: c.Outcomes(), Keys: c.Keys()}, b.String(), rebuilt
	}
	same := func(t *testing.T, got Tokenization) {
		t.Helper()
		for i := range got.Docs { // the cache's are not the build's
			got.Docs[i].Source = tok.Docs[i].Source
		}
		if !reflect.DeepEqual(got, tok) {
			t.Errorf("the cache holds\n%+v\nwant\n%+v", got, tok)
		}
		if now, _ := os.ReadFile(path); !bytes.Equal(now, good) {
			t.Error("the file is not the one a fresh build writes")
		}
	}
	// damaged writes b to path and checks that it is refused as damaged,
	// saying want, and rebuilt into the fresh build's file.
	damaged := func(t *testing.T, b []byte, want string) {
		t.Helper()
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := OpenCache(path, testKey())
		if !errors.Is(err, ErrCacheCorrupt) || !strings.HasPrefix(err.Error(), path+": token cache is corrupt: ") || !strings.Contains(err.Error(), want) {
			t.Fatalf("opening it: %v, want a corrupt cache saying %q", err, want)
		}
		t.Log(err)
		got, log, rebuilt := open(t)
		if line := err.Error() + ": rebuilding it\n"; !rebuilt || log != line {
			t.Errorf("rebuilt %v, log %q, want the one line %q", rebuilt, log, line)
		}
		same(t, got)
	}

	t.Run("untouched", func(t *testing.T) {
		got, log, rebuilt := open(t)
		if rebuilt || log != "" {
			t.Errorf("an untouched cache: rebuilt %v, log %q", rebuilt, log)
		}
		same(t, got)
	})
	for _, r := range regions {
		if r.len == 0 {
			continue
		}
		for _, flip := range []byte{0x01, 0x80, 0xff} {
			t.Run(fmt.Sprintf("%s^%#x", r.name, flip), func(t *testing.T) {
				b := bytes.Clone(good)
				at := r.off + r.len/2
				if r.name == "token ids" {
					at -= at % 4 // an id's low byte: 0x01, 0x80 keep it in the vocabulary
				}
				b[at] ^= flip
				damaged(t, b, r.want)
			})
		}
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"cut short by a byte", good[:len(good)-1], "its header implies"},
		{"its checksum cut off", good[:len(good)-cacheTrailer], "its header implies"},
		{"cut in half", good[:len(good)/2], "its header implies"},
		{"cut within its header", good[:100], "cut short"},
		{"a byte added", append(bytes.Clone(good), 0), "its header implies"},
		{"a page added", append(bytes.Clone(good), make([]byte, 4096)...), "its header implies"},
		{"a copy of its checksum added", append(bytes.Clone(good), good[len(good)-cacheTrailer:]...), "its header implies"},
	} {
		t.Run(tc.name, func(t *testing.T) { damaged(t, tc.b, tc.want) })
	}
	t.Run("untouched after the rebuilds", func(t *testing.T) {
		if _, log, rebuilt := open(t); rebuilt || log != "" {
			t.Errorf("rebuilt %v, log %q", rebuilt, log)
		}
	})
}

func bool2int(b bool) int {
	if b {
		return 1
	}
	return 0
}
