package recipe

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/subject"
	"github.com/ftune/ftune/internal/fsutil"
)

// A dataset downloaded from the Hugging Face Hub (`huggingface-cli
// download --repo-type dataset`, or a git clone of its repository) is a
// folder holding its card, README.md, and its splits' files, named after
// their split and often cut into shards:
//
//	capitals/
//	  README.md                              the dataset card
//	  data/train-00000-of-00002.parquet      the train split, two shards
//	  data/train-00001-of-00002.parquet
//	  data/validation-00000-of-00001.parquet
//	  data/test-00000-of-00001.parquet
//
// The splits may also lie at the top (train.jsonl, test.jsonl), in
// folders named after them (data/train/0000.parquet), or in one folder
// per configuration (plain_text/train-00000-of-00001.parquet). Given as
// data, such a folder is one subject named after it: the train split's
// files are its training examples, the validation split ("validation",
// "valid", "val", "dev") its validation set, as a subject folder's
// validation file is; the test split is never trained on (its examples
// are the held-out questions, eval.generation.questions) and the card is
// never read.

// shardName is a shard's name less its extension: the split, the shard's
// number and the count (datasets' push_to_hub writes five digits each),
// and the fingerprint older versions of datasets append.
var shardName = regexp.MustCompile(`^(.+)-[0-9]+-of-[0-9]+(-[0-9a-f]+)?$`)

// splitName is the split a data file's name gives, the Hub's way: its
// name less its extension (and a compression extension), or a shard's
// (train-00000-of-00003.parquet) split; shard says it was a shard's.
func splitName(file string) (name string, shard bool) {
	base := strings.ToLower(file)
	if isCompressedName(base) {
		base = strings.TrimSuffix(base, filepath.Ext(base))
	}
	base = strings.TrimSuffix(base, filepath.Ext(base))
	if m := shardName.FindStringSubmatch(base); m != nil {
		return m[1], true
	}
	return base, false
}

// unreadable says why a file named as split data cannot be read ("" when
// it can, or is no data file).
func unreadable(path string) string {
	switch {
	case isCompressedName(path):
		return fmt.Sprintf("%s: compressed: decompress it (ftune reads %s)", path, strings.Join(dataExts, ", "))
	case strings.EqualFold(filepath.Ext(path), ".arrow"):
		return fmt.Sprintf("%s is not a data file ftune reads (Arrow files are what datasets' save_to_disk writes: write the splits with to_parquet or to_json instead; ftune reads %s)", path, strings.Join(dataExts, ", "))
	}
	return ""
}

// splitFiles are the split files of one folder.
type splitFiles struct {
	dir   string
	files map[subject.Split][]string // each split's files, in lexical order
	// shards says that some split's files are named as shards are, or lie
	// in a folder named after their split: a layout only the Hub writes.
	shards bool
	// other are data files of no train, validation or test split (another
	// split, dataset_infos.json): not read.
	other []string
	// bad say why split files cannot be read (compressed, Arrow).
	bad []string
}

// hub says whether the folder is laid out as a Hub dataset's splits: it
// holds a train split, files named as shards of a split, or split files
// ftune cannot read and no other data. A test.txt or a dev/ folder alone
// does not make a folder of documents a dataset, nor a test.jsonl.gz one
// of data files.
func (sf *splitFiles) hub() bool {
	own := slices.ContainsFunc(sf.other, func(f string) bool { return !hubMetadata(f) })
	return len(sf.files[subject.Train]) > 0 || sf.shards || len(sf.bad) > 0 && !own
}

// scanSplits lists dir's split files: its data files named after a split
// (or a shard of one), and the data files of its subfolders named after a
// split. Hidden files and Markdown are passed over.
func scanSplits(dir string) (*splitFiles, error) {
	sf := &splitFiles{dir: dir, files: map[subject.Split][]string{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data.files: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(dir, name)
		ext := strings.ToLower(filepath.Ext(name))
		if strings.HasPrefix(name, ".") || slices.Contains(docExts, ext) {
			continue
		}
		if e.IsDir() {
			if stem, _ := splitName(name); slices.Contains(dataExts, ext) {
				if _, known := subject.SplitOf(stem); known {
					// Spark and Dask write a table as a folder of part
					// files named as one file: passed over, the split
					// would be missing without a word.
					sf.bad = append(sf.bad, fmt.Sprintf("%s is a folder named as a data file (Spark and Dask write a table so): give its files (--data '%s')", path, filepath.Join(path, "*"+ext)))
					continue
				}
			}
			split, ok := subject.SplitOf(name)
			if !ok {
				continue // a configuration's folder, or none of the dataset's
			}
			inner, err := os.ReadDir(path)
			if err != nil {
				return nil, fmt.Errorf("data.files: %w", err)
			}
			for _, f := range inner {
				p := filepath.Join(path, f.Name())
				fext := strings.ToLower(filepath.Ext(f.Name()))
				switch {
				case strings.HasPrefix(f.Name(), ".") || !f.IsDir() && slices.Contains(docExts, fext):
				case f.IsDir():
					// The split's files lie in its folder; passed over, a
					// folder's share of the split would be missing.
					sf.bad = append(sf.bad, fmt.Sprintf("%s is a folder inside the %s split's folder %s: ftune reads the files of a split's folder, not its folders (move them up, or give them with --data '%s')", p, splitWord(split), path, filepath.Join(p, "*")))
				case unreadable(p) != "":
					sf.bad = append(sf.bad, unreadable(p))
				case slices.Contains(dataExts, fext):
					sf.files[split] = append(sf.files[split], p)
					sf.shards = true
				default:
					sf.other = append(sf.other, p)
				}
			}
			continue
		}
		stem, shard := splitName(name)
		split, known := subject.SplitOf(stem)
		switch {
		case known && unreadable(path) != "":
			sf.bad = append(sf.bad, unreadable(path))
			sf.shards = sf.shards || shard
		case known && slices.Contains(dataExts, ext):
			sf.files[split] = append(sf.files[split], path)
			sf.shards = sf.shards || shard
		case shard || slices.Contains(dataExts, ext):
			sf.other = append(sf.other, path)
		}
	}
	return sf, nil
}

// hubDataset is a folder given as data that is laid out as a Hub
// dataset.
type hubDataset struct {
	dir    string      // the folder given
	splits *splitFiles // where its splits lie: dir, dir/data, or a configuration's folder
	config bool        // splits is the one configuration's folder
	// left are the data files of dir's top that are not read when the
	// splits lie below it (dataset_infos.json).
	left []string
}

// hubMetadata says whether a data file is one of the metadata files the
// Hub and datasets write beside the splits, not data.
func hubMetadata(path string) bool {
	switch strings.ToLower(filepath.Base(path)) {
	case "dataset_infos.json", "dataset_info.json", "dataset_dict.json", "state.json":
		return true
	}
	return false
}

// hubLayout reads dir as a Hub dataset's folder: its splits at the top,
// else in data/, else in its one configuration's folder. It is nil when
// dir is not laid out so, and an error when it is but cannot be read: two
// configurations (which to train on is the user's to say), split files
// at the top and in data/, no train split, or split files ftune does not
// read.
func hubLayout(dir string) (*hubDataset, error) {
	var found []*splitFiles
	top, err := scanSplits(dir)
	if err != nil {
		return nil, err
	}
	if top.hub() {
		found = append(found, top)
	} else if slices.ContainsFunc(top.other, func(f string) bool { return !hubMetadata(f) }) {
		// A folder of data files: they are its data (dataFilesIn), not
		// splits that may lie below.
		return nil, nil
	}
	if st, err := os.Stat(filepath.Join(dir, "data")); err == nil && st.IsDir() {
		data, err := scanSplits(filepath.Join(dir, "data"))
		if err != nil {
			return nil, err
		}
		if data.hub() {
			found = append(found, data)
		}
	}
	h := &hubDataset{dir: dir}
	switch len(found) {
	case 2:
		return nil, fmt.Errorf("data.files: %s holds a Hugging Face dataset's split files both in it and in %s: keep one set", dir, found[1].dir)
	case 1:
		h.splits = found[0]
	default:
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("data.files: %w", err)
		}
		var configs []*splitFiles
		for _, e := range ents {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || e.Name() == "data" {
				continue
			}
			if _, ok := subject.SplitOf(e.Name()); ok {
				continue // a split's folder: scanned as the top's
			}
			sf, err := scanSplits(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			if sf.hub() {
				configs = append(configs, sf)
			}
		}
		switch len(configs) {
		case 0:
			return nil, nil
		case 1:
			h.splits, h.config = configs[0], true
		default:
			names := make([]string, len(configs))
			for i, c := range configs {
				names[i] = filepath.Base(c.dir)
			}
			return nil, fmt.Errorf("data.files: %s holds the configurations %s of a Hugging Face dataset, each a folder of splits: give the one to train on (--data %s)", dir, strings.Join(names, ", "), configs[0].dir)
		}
	}
	sf := h.splits
	if sf != top {
		for _, s := range subject.Splits {
			h.left = append(h.left, top.files[s]...)
		}
		h.left = append(h.left, top.other...)
	}
	if len(sf.bad) > 0 {
		more := ""
		if len(sf.bad) > 1 {
			more = fmt.Sprintf(" (and %d more)", len(sf.bad)-1)
		}
		return nil, fmt.Errorf("data.files: %s is laid out as a Hugging Face dataset, but %s%s", dir, sf.bad[0], more)
	}
	if len(sf.files[subject.Train]) == 0 {
		var have []string
		for _, s := range []subject.Split{subject.Val, subject.Test} {
			if len(sf.files[s]) > 0 {
				have = append(have, splitWord(s))
			}
		}
		what := "no split"
		if len(have) > 0 {
			what = "the " + strings.Join(have, " and ") + " split"
		}
		return nil, fmt.Errorf("data.files: %s holds %s of a Hugging Face dataset but no train split (want train.jsonl, train-00000-of-00001.parquet, ... or a train/ folder)", sf.dir, what)
	}
	return h, nil
}

// splitWord names a split as the Hub does.
func splitWord(s subject.Split) string {
	if s == subject.Val {
		return "validation"
	}
	return string(s)
}

// input is the dataset as the subject a run reads, with the notes that
// say what it reads and what it leaves out.
func (h *hubDataset) input(o Options, fo format.Options) (DataInput, error) {
	name := subjectName(h.dir)
	sf := h.splits
	in := DataInput{Name: name, Files: sf.files[subject.Train], Val: sf.files[subject.Val], Test: sf.files[subject.Test], Format: fo}
	say := func(line string, args ...any) {
		in.Notes = append(in.Notes, fmt.Sprintf("data: %s: "+line, append([]any{name}, args...)...))
	}
	if h.config {
		say("its one configuration, %s, is read", sf.dir)
	}
	val := "; no validation split"
	if len(in.Val) > 0 {
		val = fmt.Sprintf(", validated on its validation split (%s)", someFiles(in.Val))
	}
	say("read as a Hugging Face dataset: trained on its train split (%s)%s", someFiles(in.Files), val)
	in.Notes = append(in.Notes, testNote(o, name, in.Test)...)
	if left := append(slices.Clone(h.left), sf.other...); len(left) > 0 {
		say("%s not read: not a train, validation or test split of %s", someFiles(left), sf.dir)
	}
	mds, err := markdownUnder(h.dir)
	if err != nil {
		return DataInput{}, err
	}
	in.Notes = append(in.Notes, cardNote(name, h.dir, mds)...)
	return in, nil
}

// subjectName names the subject of a folder: its name (that of the
// folder "." stands for too).
func subjectName(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return filepath.Base(dir)
}

// folderNotes say what a subject folder given as data leaves out: its
// test file, not trained on, and its Markdown files (a dataset card).
func folderNotes(o Options, s *subject.Subject) ([]string, error) {
	var test []string
	if f, ok := s.Files[subject.Test]; ok {
		test = []string{f}
	}
	notes := testNote(o, s.Name, test)
	mds, err := markdownUnder(s.Dir)
	if err != nil {
		return nil, err
	}
	return append(notes, cardNote(s.Name, s.Dir, mds)...), nil
}

// testNote says that the test split is not trained on, and what it is
// read for.
func testNote(o Options, name string, test []string) []string {
	if len(test) == 0 {
		return nil
	}
	use := ": its examples are the held-out questions (eval.generation.questions)"
	if o.EvalQuestions <= 0 {
		use = ", nor read (eval.generation.questions is 0)"
	}
	return []string{fmt.Sprintf("data: %s: the test split (%s) is not trained on%s", name, someFiles(test), use)}
}

// cardNote says that the Markdown files of a dataset's folder are not
// read.
func cardNote(name, dir string, mds []string) []string {
	if len(mds) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("data: %s: %s not read: a dataset card (and Markdown files) beside a dataset's data files is not trained on (give them as --data '%s' to train on them)", name, someFiles(mds), filepath.Join(dir, "**", "*.md"))}
}

// someFiles names the first three files, and how many more there are.
func someFiles(files []string) string {
	s := strings.Join(files[:min(len(files), 3)], ", ")
	if len(files) > 3 {
		s += fmt.Sprintf(" and %d more", len(files)-3)
	}
	return s
}

// hubRoot refuses a data root laid out as a Hub dataset: its shards are
// not subjects, nor are its configurations' folders, whose splits are in
// shards. A root with split files at its top alone is left to rootInputs,
// which refuses it naming the file.
func hubRoot(root string) error {
	h, err := hubLayout(root)
	if err != nil {
		return fmt.Errorf("recipe: data root %s: %w", root, err)
	}
	if h != nil && (h.splits.dir != root || h.splits.shards) {
		return fmt.Errorf("recipe: %s is laid out as a Hugging Face dataset (its train split: %s), not as one folder or data file per subject: give it as --data (data.files), which reads its splits as one subject (a shard is not a subject)", root, someFiles(h.splits.files[subject.Train]))
	}
	return nil
}

// hasDatasetCard says whether dir holds a dataset card as the Hub writes one: a
// README.md that opens with YAML front matter (its configs, licence,
// tags). A folder of subject folders rarely has one.
func hasDatasetCard(dir string) bool {
	f, _, err := fsutil.OpenRegular(filepath.Join(dir, "README.md"))
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	return strings.HasPrefix(strings.ReplaceAll(string(head[:n]), "\r", ""), "---\n")
}

// hubDataFolder says whether dir's data/ folder holds a dataset's split
// files (data/train.jsonl, data/train-00000-of-00001.parquet): the Hub's
// layout, not a subject named "data".
func hubDataFolder(dir string) bool {
	sf, err := scanSplits(filepath.Join(dir, "data"))
	return err == nil && sf.hub()
}

// strongDataExts are the extensions of files that only data is kept in
// (a docs tree may hold a .json, .csv or .txt).
var strongDataExts = []string{".parquet", ".jsonl", ".ndjson", ".arrow"}

// dataUnder lists the first files under dir (hidden ones left out) whose
// extension says they hold data, compressed or not.
func dataUnder(dir string, n int) ([]string, error) {
	var out []string
	err := walkVisible(dir, func(path string, d fs.DirEntry) error {
		if d.IsDir() {
			return nil
		}
		name := strings.ToLower(d.Name())
		if isCompressedName(name) {
			name = strings.TrimSuffix(name, filepath.Ext(name))
		}
		if slices.Contains(strongDataExts, filepath.Ext(name)) {
			out = append(out, path)
			if len(out) == n {
				return filepath.SkipAll
			}
		}
		return nil
	})
	return out, err
}
