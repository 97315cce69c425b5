package recipe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/subject"
	"github.com/ftune/ftune/track"
)

// writeVaried writes n chat records of varied lengths to dir/name: some
// longer than a 64-token row (truncated), some whose prompt fills it
// (dropped: nothing to learn), and a few repeated word for word.
func writeVaried(t *testing.T, dir, name string, n int) string {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	words := strings.Fields("the of and to in is that for it as was with be by on not he this are or his from at which but have an they you")
	text := func(k int) string {
		w := make([]string, k)
		for i := range w {
			w[i] = words[r.IntN(len(words))]
		}
		return strings.Join(w, " ")
	}
	var b strings.Builder
	var lines []string
	for i := range n {
		var msgs []map[string]string
		switch k := r.IntN(10); {
		case k < 6:
			msgs = append(msgs, map[string]string{"role": "user", "content": text(1 + r.IntN(12))}, map[string]string{"role": "assistant", "content": text(1 + r.IntN(12))})
		case k < 8: // longer than the row
			msgs = append(msgs, map[string]string{"role": "user", "content": text(5)}, map[string]string{"role": "assistant", "content": text(60 + r.IntN(40))})
		case k < 9: // the prompt fills the row
			msgs = append(msgs, map[string]string{"role": "user", "content": text(90)}, map[string]string{"role": "assistant", "content": text(3)})
		default: // a repeat of an earlier record
			if len(lines) > 0 {
				lines = append(lines, lines[r.IntN(len(lines))])
				continue
			}
			msgs = append(msgs, map[string]string{"role": "user", "content": "first?"}, map[string]string{"role": "assistant", "content": fmt.Sprint(i)})
		}
		rec, _ := json.Marshal(map[string]any{"messages": msgs})
		lines = append(lines, string(rec))
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadWith is loadData with maxPositions (to count examples over them)
// and the log.
func loadWith(t *testing.T, o Options, maxPositions int) (*dataset, string) {
	t.Helper()
	ds, log, err := loadLogged(t, o, maxPositions)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	return ds, log
}

// heldOutAsBefore is what a run made of one subject's training examples
// before the whole file was tokenised and split after: the examples split
// first (prep.SplitRatio, the subject's seed), each side tokenised alone,
// the training side packed or padded, the validation side as
// Preprocessor.Rows lays it out.
func heldOutAsBefore(t *testing.T, o Options, name string, exs []format.Example, maxPositions int) (train, val []prep.Row, st prep.Stats) {
	t.Helper()
	tp, err := LoadText(tinyBase, 0)
	if err != nil {
		t.Fatal(err)
	}
	trainExs, valExs := prep.SplitRatio(exs, o.ValSplit, splitSeed(o.DataSeed, name))
	p := tp.preprocessor(o.SeqLen)
	o.SetTokenizing(p)
	p.Opts.MaxPositions = maxPositions
	docs, st, err := p.TokenizeAll(trainExs)
	if err != nil {
		t.Fatal(err)
	}
	if o.Pack {
		train, _, err = prep.Pack(docs, prep.PackOptions{SeqLen: o.SeqLen})
	} else {
		train, err = prep.Pad(docs, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	if val, _, err = p.Rows(valExs, prep.RowOptions{SeqLen: o.SeqLen}); err != nil {
		t.Fatal(err)
	}
	return train, val, st
}

// TestHeldOutSplitAsBefore: the held-out split is taken by index from the
// tokenisation of the whole training file (or its token cache), and the
// training and validation rows and counts are what splitting the
// examples first gave, bit for bit, for a data file and a subject folder,
// packed and padded, without a cache, building it, reading it, and
// reading the whole file's cache that `ftune data prepare` writes (a run
// with data.val_split 0 writes the same file). Runs and resumes are
// unchanged.
func TestHeldOutSplitAsBefore(t *testing.T) {
	dir := t.TempDir()
	file := writeVaried(t, dir, "varied.jsonl", 300)
	fileExs, _, err := format.ReadAll(file, format.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := trainOnly(t)
	s, ok, err := subject.OpenSubject(filepath.Join(root, "chemistry"))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	folderExs, _, err := s.Load(subject.Train, format.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []struct {
		name                 string
		exs                  []format.Example
		opts                 func() Options
		seqLen, maxPositions int // some examples are longer: cut, and named in the stats
	}{
		{"varied", fileExs, func() Options { return fileOpts(file) }, 64, 40},
		{"chemistry", folderExs, func() Options {
			o := dataOptions()
			o.DataRoot = root
			return o
		}, 24, 20},
	} {
		maxPositions := in.maxPositions
		for _, pack := range []bool{false, true} {
			o := in.opts()
			o.Pack, o.SeqLen, o.ValSplit = pack, in.seqLen, 0.15
			wantTrain, wantVal, wantStats := heldOutAsBefore(t, o, in.name, in.exs, maxPositions)
			if wantStats.Truncated == 0 || wantStats.OverPositions == 0 || in.name == "varied" && wantStats.DroppedNoLabel == 0 {
				t.Fatalf("%s: no example over the limits: %+v", in.name, wantStats)
			}
			prepared := o
			prepared.TokenCache, prepared.ValSplit = t.TempDir(), 0
			loadWith(t, prepared, maxPositions) // the whole file cached
			cache := t.TempDir()
			var held string
			for _, state := range []string{"no cache", "building the cache", "reading the cache", "the prepared cache"} {
				o := o
				switch state {
				case "building the cache", "reading the cache":
					o.TokenCache = cache
				case "the prepared cache":
					o.TokenCache = prepared.TokenCache
				}
				ds, log := loadWith(t, o, maxPositions)
				what := fmt.Sprintf("%s, pack %v, %s", in.name, pack, state)
				if !reflect.DeepEqual(ds.train, wantTrain) {
					t.Errorf("%s: %d training rows differ from splitting the examples first (%d)", what, len(ds.train), len(wantTrain))
				}
				if !reflect.DeepEqual(ds.val, wantVal) {
					t.Errorf("%s: %d validation rows differ from splitting the examples first (%d)", what, len(ds.val), len(wantVal))
				}
				got, want := ds.stats[in.name], wantStats
				cached := state == "reading the cache" || state == "the prepared cache"
				if cached && in.name == "varied" {
					// The file was not read: the example over the
					// positions is named by its place, not its line.
					if w := fmt.Sprintf("%s example %d", file, lineOf(t, want.FirstOverPositions)); got.FirstOverPositions != w {
						t.Errorf("%s: the first over the positions is %q, want %q", what, got.FirstOverPositions, w)
					}
					got.FirstOverPositions = want.FirstOverPositions
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: stats\n%+v, want\n%+v", what, got, wantStats)
				}
				// What the manifest records: every file read, as read.
				if len(ds.reads) == 0 {
					t.Errorf("%s: no record of the files read", what)
				}
				for _, r := range ds.reads {
					if r.SHA256 != sha256File(t, r.Path) {
						t.Errorf("%s: %s recorded as %s", what, r.Path, r.SHA256)
					}
				}
				if ds.cached[in.name] != cached {
					t.Errorf("%s: read from the cache %v, want %v", what, ds.cached[in.name], cached)
				}
				// The hold-out and the repeats across it are said alike.
				var said []string
				for _, l := range strings.Split(log, "\n") {
					if strings.Contains(l, "held out") || strings.Contains(l, "word for word") {
						said = append(said, l)
					}
				}
				if state == "no cache" {
					held = strings.Join(said, "\n")
					if in.name == "varied" && !strings.Contains(held, "word for word") {
						t.Errorf("%s: the repeated records are not warned of:\n%s", what, log)
					}
				} else if strings.Join(said, "\n") != held {
					t.Errorf("%s: the log says\n%s\nwant\n%s", what, strings.Join(said, "\n"), held)
				}
			}
			for _, dir := range []string{cache, prepared.TokenCache} {
				files, _ := filepath.Glob(filepath.Join(dir, in.name, "*"))
				if len(files) != 1 || filepath.Base(files[0]) != "train.tokens" {
					t.Errorf("%s: cache files %v, want the whole split's train.tokens alone", in.name, files)
				}
			}
		}
	}
}

// TestWarmFileCacheReadsNoRecord: a data file whose token cache is up to
// date is hashed, not parsed (its rows and counts are the cold run's); an
// edit of the file, another data.shape, or data.skip_bad (which reads the
// records to say which are skipped) do not take that cache, and a cache
// of ftune's previous layout is rebuilt with a line saying why.
func TestWarmFileCacheReadsNoRecord(t *testing.T) {
	dir := t.TempDir()
	file := writeVaried(t, dir, "varied.jsonl", 200)
	o := fileOpts(file)
	o.SeqLen, o.TokenCache = 64, t.TempDir()
	parsed := "data: " + file + ": jsonl, shape chat (detected), 200 examples"
	cold, log := loadWith(t, o, 40)
	if !strings.Contains(log, parsed) {
		t.Fatalf("the first load does not read the file:\n%s", log)
	}
	warm, log := loadWith(t, o, 40)
	if strings.Contains(log, parsed) || !strings.Contains(log, "unchanged since its token cache") || !warm.cached["varied"] {
		t.Errorf("the second load read the file again (or does not say it did not):\n%s", log)
	}
	if !reflect.DeepEqual(cold.train, warm.train) || !reflect.DeepEqual(cold.val, warm.val) {
		t.Error("the warm load's rows differ from the cold one's")
	}
	cs, ws := cold.stats["varied"], warm.stats["varied"]
	if cs.FirstOverPositions == "" || !strings.HasPrefix(ws.FirstOverPositions, file+" example ") {
		t.Errorf("over the positions first: cold %q, warm %q", cs.FirstOverPositions, ws.FirstOverPositions)
	}
	cs.FirstOverPositions, ws.FirstOverPositions = "", ""
	if !reflect.DeepEqual(cs, ws) || cs.Truncated == 0 {
		t.Errorf("warm stats %+v, cold %+v", ws, cs)
	}
	if len(warm.reads) != 1 || warm.reads[0].SHA256 != sha256File(t, file) {
		t.Errorf("the warm load's record of the file %+v", warm.reads)
	}

	// Deduplication changes the examples: the file is read, and the
	// training split cached in a file of its own.
	dd := o
	dd.Dedup = 0.9
	deduped, log := loadWith(t, dd, 40)
	dd.TokenCache = ""
	if plain, _ := loadWith(t, dd, 40); !strings.Contains(log, parsed) || !reflect.DeepEqual(deduped.train, plain.train) || !reflect.DeepEqual(deduped.val, plain.val) {
		t.Errorf("data.augment.dedup with the file's cache up to date: the rows are not those without a cache:\n%s", log)
	}

	// Another shape setting reads the file again; data.skip_bad reads it
	// every time, to say which records it skips (twice: its own cache is
	// up to date the second time).
	for _, change := range []func(*Options){
		func(o *Options) { o.Shape = "chat" },
		func(o *Options) { o.SkipBad = true },
	} {
		o := o
		change(&o)
		for range 1 + bool2int(o.SkipBad) {
			if _, log := loadWith(t, o, 40); !strings.Contains(log, "jsonl, shape chat") {
				t.Errorf("shape %q, skip_bad %v: the file was not read:\n%s", o.Shape, o.SkipBad, log)
			}
		}
	}

	// An edit that keeps the size: a changed answer is a changed key.
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The answer of the first short record (kept whole): "the" becomes
	// "thy".
	off := 0
	for _, line := range bytes.SplitAfter(raw, []byte("\n")) {
		if len(line) < 150 && bytes.Contains(line, []byte(`"content":"the`)) {
			off += bytes.LastIndex(line, []byte(`"content":"the`)) + len(`"content":"th`)
			break
		}
		off += len(line)
	}
	if raw[off] != 'e' {
		t.Fatalf("no short record to edit at %d", off)
	}
	raw[off] = 'y'

	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	edited, log := loadWith(t, o, 40)
	if !strings.Contains(log, parsed) || !strings.Contains(log, "made with data") || !strings.Contains(log, "rebuilding it") || edited.cached["varied"] {
		t.Errorf("after an edit:\n%s", log)
	}
	plain := o
	plain.TokenCache = ""
	fresh, _ := loadWith(t, plain, 40)
	if !reflect.DeepEqual(fresh.train, edited.train) || !reflect.DeepEqual(fresh.val, edited.val) {
		t.Error("after an edit the rows are not the edited file's")
	}
	if reflect.DeepEqual(edited.train, cold.train) && reflect.DeepEqual(edited.val, cold.val) {
		t.Error("after an edit the rows are the old file's")
	}

	// The previous layout (version 5: this one without its checksum):
	// rebuilt, saying so, never read.
	path := filepath.Join(o.TokenCache, "varied", "train.tokens")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = b[:len(b)-4]
	binary.LittleEndian.PutUint32(b[8:], 5)
	os.WriteFile(path, b, 0o644)
	if _, log := loadWith(t, o, 40); !strings.Contains(log, "cache format version 5, this ftune writes version 6: rebuilding it") {
		t.Errorf("a version 5 cache:\n%s", log)
	}
}

// TestDamagedTokenCacheIsRebuilt: a data file's token cache changed in
// place after ftune wrote it (an id changed to another in the
// vocabulary, cut short, added to) was read and trained on. The run now
// says in one line which cache is damaged and how, rebuilds it, and trains
// on the rows a fresh build gives; the next run reads the rebuilt cache.
func TestDamagedTokenCacheIsRebuilt(t *testing.T) {
	file := writeVaried(t, t.TempDir(), "varied.jsonl", 200)
	o := fileOpts(file)
	o.SeqLen, o.TokenCache = 64, t.TempDir()
	cold, _ := loadWith(t, o, 40)
	path := filepath.Join(o.TokenCache, "varied", "train.tokens")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := LoadText(tinyBase, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The middle token id's low byte, changed to another id in the
	// vocabulary (the layout at the top of data/prep/cache.go).
	u64 := func(at int) int { return int(binary.LittleEndian.Uint64(good[at:])) }
	d, n, e, flags := u64(144), u64(152), u64(160), u64(192)
	ids := 200 + 8*(d+1) + flags&1*8*e + 4*d + e + (4-e%4)%4
	at := ids + 4*(n/2)
	id := int(binary.LittleEndian.Uint32(good[at:]))
	if flags&1 == 0 || id^1 >= tp.tok.VocabSize() || len(good) != ids+5*n+4 {
		t.Fatalf("the cache's layout is not the one read here: id %d, %d bytes", id, len(good))
	}
	idChanged := bytes.Clone(good)
	idChanged[at] ^= 1
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"an id changed", idChanged, "its contents fail their checksum"},
		{"cut short", good[:len(good)-1], "its header implies"},
		{"added to", append(bytes.Clone(good), 0, 0, 0, 0), "its header implies"},
	} {
		if err := os.WriteFile(path, tc.b, 0o644); err != nil {
			t.Fatal(err)
		}
		ds, log := loadWith(t, o, 40)
		line := path + ": token cache is corrupt: "
		if strings.Count(log, line) != 1 || !strings.Contains(log, tc.want) || !strings.Contains(log, "rebuilding it\n") || ds.cached["varied"] {
			t.Errorf("%s: the run does not say, once, that it rebuilds the damaged cache:\n%s", tc.name, log)
		}
		if !reflect.DeepEqual(ds.train, cold.train) || !reflect.DeepEqual(ds.val, cold.val) || !reflect.DeepEqual(ds.stats, cold.stats) {
			t.Errorf("%s: the rows are not those of a fresh build", tc.name)
		}
		if now, _ := os.ReadFile(path); !bytes.Equal(now, good) {
			t.Errorf("%s: the rebuilt cache differs from the first build's", tc.name)
		}
		if warm, log := loadWith(t, o, 40); !warm.cached["varied"] || strings.Contains(log, "rebuilding") || !reflect.DeepEqual(warm.train, cold.train) {
			t.Errorf("%s: the rebuilt cache is not read by the next run:\n%s", tc.name, log)
		}
	}
}

func bool2int(b bool) int {
	if b {
		return 1
	}
	return 0
}

// lineOf is the line of a "file:line" source.
func lineOf(t *testing.T, source string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(source[strings.LastIndex(source, ":")+1:], &n); err != nil {
		t.Fatalf("source %q: %v", source, err)
	}
	return n
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// appendOnLine is a log that appends rec to file the first time a line
// holding trigger is written to it: the file changes at that point of a
// run, after it was read.
type appendOnLine struct {
	bytes.Buffer
	trigger, file, rec string
	done               bool
}

func (w *appendOnLine) Write(p []byte) (int, error) {
	if !w.done && strings.Contains(string(p), w.trigger) {
		w.done = true
		f, err := os.OpenFile(w.file, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return 0, err
		}
		fmt.Fprintln(f, w.rec)
		f.Close()
	}
	return w.Buffer.Write(p)
}

// TestCacheKeyedOnTheBytesRead: a data file written to after the run read
// it and before its token cache was written (the cache is keyed on the
// bytes parsed, not on the file as hashed later) gives a cache that the
// next run, on the longer file, does not take: it rebuilds it, and trains
// on the record added.
func TestCacheKeyedOnTheBytesRead(t *testing.T) {
	dir := t.TempDir()
	file := writeVaried(t, dir, "varied.jsonl", 100)
	before := sha256File(t, file)
	o := fileOpts(file)
	o.SeqLen, o.TokenCache, o.ValSplit = 64, t.TempDir(), 0
	tp, err := LoadText(tinyBase, 0)
	if err != nil {
		t.Fatal(err)
	}
	log := &appendOnLine{trigger: "data: " + file + ": jsonl", file: file,
		rec: `{"messages":[{"role":"user","content":"added later?"},{"role":"assistant","content":"yes"}]}`}
	o.Log = log
	first, err := loadData(context.Background(), o, tp, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !log.done {
		t.Fatalf("the file was not appended to:\n%s", log.String())
	}
	if len(first.reads) != 1 || first.reads[0].SHA256 != before {
		t.Errorf("the run's record of the file %+v, want the bytes it read (sha256 %s)", first.reads, before)
	}
	again, text := loadWith(t, o, 0)
	if !strings.Contains(text, "rebuilding it") || again.cached["varied"] || again.stats["varied"].Examples != first.stats["varied"].Examples+1 {
		t.Errorf("the longer file's run: %d examples after %d, log:\n%s", again.stats["varied"].Examples, first.stats["varied"].Examples, text)
	}
}

// TestManifestRecordsTheDataRead: a data file appended to between the run
// reading it and hashing it into manifest.json is recorded as read (the
// bytes trained on), and the run says that it changed; preference data
// under dpo too.
func TestManifestRecordsTheDataRead(t *testing.T) {
	file := writeVaried(t, t.TempDir(), "varied.jsonl", 40)
	o := fileOpts(file)
	o.OutDir, o.Steps, o.BatchSize, o.WarmupSteps, o.EvalEvery, o.Samples, o.CheckpointEvery, o.EvalMaxBatches = t.TempDir(), 1, 2, 0, 0, 0, 0, 1
	t.Run("sft", func(t *testing.T) { checkManifestOfDataRead(t, o, file) })
	o = dpoOptions(t, "dpo", false)
	o.Steps, o.CheckpointEvery = 1, 0
	t.Run("dpo", func(t *testing.T) { checkManifestOfDataRead(t, o, o.DataFiles[0]) })
}

// checkManifestOfDataRead runs o, appending a record to its data file
// before the run hashes its inputs, and checks what the manifest and the
// log say of the file.
func checkManifestOfDataRead(t *testing.T, o Options, file string) {
	read, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(read)
	defer func(f func()) { beforeInputsHashed = f }(beforeInputsHashed)
	beforeInputsHashed = func() {
		f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		fmt.Fprintln(f, `{"messages":[{"role":"user","content":"late?"},{"role":"assistant","content":"yes"}]}`)
		f.Close()
	}
	var log bytes.Buffer
	o.Log = &log
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	m, err := track.ReadManifest(filepath.Join(res.RunDir, track.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Data) != 1 || m.Data[0].SHA256 != hex.EncodeToString(sum[:]) || m.Data[0].Size != int64(len(read)) {
		t.Errorf("manifest data %+v, want the %d bytes read (sha256 %x)", m.Data, len(read), sum)
	}
	if want := "warning: data changed after the run read it (" + file + ": " + fmt.Sprint(len(read)) + " bytes read"; !strings.Contains(log.String(), want) {
		t.Errorf("the log does not say %q:\n%s", want, log.String())
	}
}

// TestWarmRunPrintsItsCounts: a run whose training split comes from the
// token cache prints how many examples were truncated and dropped making
// it, as the run that built the cache did.
func TestWarmRunPrintsItsCounts(t *testing.T) {
	file := writeVaried(t, t.TempDir(), "varied.jsonl", 120)
	o := fileOpts(file)
	o.SeqLen, o.TokenCache = 64, t.TempDir()
	o.Steps, o.BatchSize, o.WarmupSteps, o.EvalEvery, o.Samples, o.CheckpointEvery, o.EvalMaxBatches = 1, 2, 0, 0, 0, 0, 1
	var lines []string
	for range 2 {
		o.OutDir = t.TempDir()
		var log bytes.Buffer
		o.Log = &log
		if _, err := Run(context.Background(), o); err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		for _, l := range strings.Split(log.String(), "\n") {
			if strings.HasPrefix(l, "subject varied ") {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) != 2 || strings.Contains(lines[0], "(0 truncated") || !strings.Contains(lines[0], " truncated, ") || lines[1] != strings.TrimSuffix(lines[0], ")")+"; from the token cache)" {
		t.Errorf("subject lines %q: want the cold run's counts again, from the token cache", lines)
	}
}
