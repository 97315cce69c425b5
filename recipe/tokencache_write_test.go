package recipe

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
	"time"
)

// TestTokenCacheWriteHonoursInterrupt: a Ctrl-C while the token cache was
// written (after tokenising ended) was ignored: the write ran under
// context.Background to its end, then the documents were loaded, 22 s at
// 400 MB. The write stops, leaves no cache (nor its temporary file), and
// loading returns the context's error at once.
func TestTokenCacheWriteHonoursInterrupt(t *testing.T) {
	p := writeUserFile(t, t.TempDir(), "my.jsonl", "chat", 400)
	o := fileOpts(p)
	o.TokenCache = t.TempDir()
	dir := filepath.Join(o.TokenCache, "my")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A killed write's leftover, whose removal the log hears just before
	// the write begins: the moment to press Ctrl-C.
	if err := os.WriteFile(filepath.Join(dir, ".train.tokens.tmp-43"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tp, err := LoadText(tinyBase, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log bytes.Buffer
	o.Log = cancelOn{w: &log, line: "removed 1 temporary file", cancel: cancel}
	start := time.Now()
	ds, err := loadData(ctx, o, tp, 0)
	if ds != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted while the cache was written: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "removed 1 temporary file") {
		t.Fatalf("the write never began:\n%s", log.String())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s", d)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		t.Errorf("left in the cache folder: %v %v", ents, err)
	}
}

// TestUnwritableTokenCacheFailsFirst: a cache folder that can be created
// but not written was found out only when the cache was written, after
// tokenising everything (20 s per 100 MB). It is refused before tokenising,
// naming the setting and the folder. The folder here is one whose files'
// paths are over the system's length limit (PATH_MAX): root, who runs
// the tests here, may write anywhere else.
func TestUnwritableTokenCacheFailsFirst(t *testing.T) {
	p := writeUserFile(t, t.TempDir(), "my.jsonl", "chat", 400)
	o := fileOpts(p)
	o.TokenCache = t.TempDir()
	dir := filepath.Join(o.TokenCache, "my")
	// A path of 4080 bytes: the folder is made, a file in it (".train.
	// tokens.tmp-<digits>", 28 bytes) is over the 4095 a path may have.
	for len(dir) < 4080-201 {
		o.TokenCache = filepath.Join(o.TokenCache, strings.Repeat("d", 200))
		dir = filepath.Join(o.TokenCache, "my")
	}
	o.TokenCache = filepath.Join(o.TokenCache, strings.Repeat("e", 4080-len(dir)-1))
	dir = filepath.Join(o.TokenCache, "my")
	if len(dir) != 4080 {
		t.Fatalf("folder of %d bytes", len(dir))
	}
	defer fakeProgressClock(11 * time.Second)()
	_, log, err := loadLogged(t, o, 0)
	if err == nil || !strings.HasPrefix(err.Error(), "data.token_cache "+o.TokenCache+": ") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("an unwritable cache folder: %.300v", err)
	}
	if strings.Contains(log, "tokenizing") {
		t.Errorf("tokenised before finding the folder unwritable:\n%.500s", log)
	}
}

// TestCachedDocumentsInPlaceMakeTheSameRows: documents read from a token
// cache lie in its mapping (their ids not copied, their labels read from
// its mask) until the rows are built. The rows, validation rows and
// counts of paragraphs, long ones cut into pieces and held out by piece,
// are those of tokenising without a cache, packed and padded, when the
// cache is built and when it is read.
func TestCachedDocumentsInPlaceMakeTheSameRows(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.txt")
	var b strings.Builder
	for i := range 120 {
		n := 3 + i%7
		if i%10 == 0 {
			n = 60 + i // longer than a row: cut into pieces
		}
		for j := range n {
			fmt.Fprintf(&b, "Note %d line %d says %d and %d. ", i, j, i*j, i+j)
		}
		b.WriteString("\n\n")
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, pack := range []bool{false, true} {
		o := fileOpts(file)
		o.TextUnit, o.Pack, o.SeqLen, o.ValSplit = "paragraph", pack, 64, 0.2
		want, log := loadWith(t, o, 0)
		if !strings.Contains(log, "held out for validation") || !strings.Contains(log, "pieces") || len(want.val) == 0 {
			t.Fatalf("no pieces held out:\n%s", log)
		}
		o.TokenCache = t.TempDir()
		for _, state := range []string{"building the cache", "reading the cache"} {
			ds, log := loadWith(t, o, 0)
			if ds.cached["notes"] != (state == "reading the cache") {
				t.Fatalf("%s: cached %v\n%s", state, ds.cached, log)
			}
			if !reflect.DeepEqual(ds.train, want.train) || !reflect.DeepEqual(ds.val, want.val) || !reflect.DeepEqual(ds.stats, want.stats) {
				t.Errorf("pack %v, %s: rows or counts differ from tokenising without a cache", pack, state)
			}
		}
	}
}
