package recipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/subject"
	"github.com/ftune/ftune/track"
)

// DataInput is one subject a run reads, named but not yet read: a subject
// folder (train/val/test files), or data files read in order as one
// subject's training examples (a file of a data root, or data.files), with
// a Hugging Face dataset folder's validation and test splits.
type DataInput struct {
	Name   string
	Folder *subject.Subject // nil for data files
	Files  []string
	// Format is how Files are read (data.format, data.shape and
	// data.columns), Val's and Test's too.
	Format format.Options
	// Passed are the Markdown files of the folders given that are not
	// read: they lie beside data files (PassedNote says so).
	Passed []string
	// Val and Test are the files of a Hugging Face dataset folder's
	// validation and test splits (hubdata.go): Val is read as a subject
	// folder's validation file is, Test is never trained on (its examples
	// are the held-out questions).
	Val, Test []string
	// Notes say what a folder given as data is read as and what of it is
	// left out (its test split, its dataset card, other files).
	Notes []string
}

// PassedNote is the lines that name what the input leaves out (the
// Markdown files beside its data files; a dataset folder's test split,
// card and other files) and what it is read as, or "" when there is
// nothing to say.
func (in DataInput) PassedNote() string {
	lines := slices.Clone(in.Notes)
	if len(in.Passed) > 0 {
		lines = append([]string{passedLine(in.Passed)}, lines...)
	}
	return strings.Join(lines, "\n")
}

// passedLine names the Markdown files left out beside data files.
func passedLine(passed []string) string {
	names := strings.Join(passed[:min(len(passed), 3)], ", ")
	if len(passed) > 3 {
		names += ", ..."
	}
	return fmt.Sprintf("data: %d Markdown file(s) not read, beside the data files of their folder: %s (a folder's Markdown documents are read when it holds no other data file; give them as --data 'DIR/*.md', or 'DIR/**/*.md' with subfolders)", len(passed), names)
}

// DataInputs resolves the run's data (data.root or data.files, and
// data.subjects) into the subjects a run reads, in its order, without
// reading them; `ftune data validate|prepare` check the same. where are
// the files and folders given (the run's manifest hashes them).
func DataInputs(o Options) (ins []DataInput, where []string, err error) {
	fo, err := fileOptions(o)
	if err != nil {
		return nil, nil, err
	}
	if ins, where, err = dataInputs(o, fo); err != nil {
		return nil, nil, err
	}
	if err := checkLayoutRead(o, fo, ins, where); err != nil {
		return nil, nil, err
	}
	var files []string
	for _, in := range ins {
		files = append(files, in.Files...)
		files = append(files, in.Val...)
		files = append(files, in.Test...)
		if in.Folder != nil {
			for _, split := range subject.Splits {
				if f, ok := in.Folder.Files[split]; ok {
					files = append(files, f)
				}
			}
		}
	}
	if err := checkTextUnit(o, fo, files); err != nil {
		return nil, nil, err
	}
	return ins, where, nil
}

// checkLayoutRead refuses data.shape and data.columns when no data file
// is read with them: subject folders say their records' layout in their
// own subject.yaml, and a subject folder's Load reads by that alone.
func checkLayoutRead(o Options, fo format.Options, ins []DataInput, where []string) error {
	if fo.Mapping.Shape == format.ShapeAuto || slices.ContainsFunc(ins, func(in DataInput) bool { return in.Folder == nil }) {
		return nil
	}
	what := fmt.Sprintf("data.shape %v applies", fo.Mapping.Shape)
	if len(o.Columns) > 0 {
		what = fmt.Sprintf("data.shape %v and data.columns apply", fo.Mapping.Shape)
	}
	return fmt.Errorf("recipe: %s to data files, and %s holds subject folders only (train/val/test files), which say their records' layout in their own subject.yaml (shape, columns): map them there, and leave data.shape auto", what, strings.Join(where, ", "))
}

// dataInputs is DataInputs before the checks of what the inputs hold.
func dataInputs(o Options, fo format.Options) (ins []DataInput, where []string, err error) {
	if len(o.DataFiles) == 0 {
		ins, err := rootInputs(o, o.DataRoot, fo)
		return ins, []string{o.DataRoot}, err
	}
	files, root, passed, err := resolveDataFiles(o.DataFiles)
	if err != nil {
		return nil, nil, err
	}
	if root != "" { // a folder of subject folders: the multi-subject way
		ins, err := rootInputs(o, root, fo)
		return ins, []string{root}, err
	}
	if st, err := os.Stat(files[0]); err == nil && st.IsDir() {
		if s, ok, err := subject.OpenSubject(files[0]); err != nil {
			return nil, nil, err
		} else if ok { // one subject folder (train/val/test files)
			for _, name := range o.Subjects {
				if name != s.Name {
					return nil, nil, fmt.Errorf("recipe: data.subjects: %w %q in %s (have: %s)", ErrUnknownSubject, name, files[0], s.Name)
				}
			}
			notes, err := folderNotes(o, s)
			if err != nil {
				return nil, nil, err
			}
			return []DataInput{{Name: s.Name, Folder: s, Notes: notes}}, files, nil
		}
		h, err := hubLayout(files[0])
		if err != nil {
			return nil, nil, err
		}
		if h != nil { // a Hugging Face dataset's folder: its splits
			in, err := h.input(o, fo)
			if err != nil {
				return nil, nil, err
			}
			for _, name := range o.Subjects {
				if name != in.Name {
					return nil, nil, fmt.Errorf("recipe: data.subjects: no subject %q in %s (have: %s)", name, files[0], in.Name)
				}
			}
			return []DataInput{in}, files, nil
		}
	}
	if files, err = selectFiles(files, o.Subjects); err != nil {
		return nil, nil, err
	}
	return []DataInput{{Name: filesSubject(files), Files: files, Format: fo, Passed: passed}}, files, nil
}

// readSources reads the run's data: the subject folders and files under
// DataRoot, or the user's own files (DataFiles), as DataInputs names them,
// stopping, with ctx's error, once ctx is done (a
// data file's records are read one by one, and a large file took seconds
// to minutes to read after the first Ctrl-C); with warm, a file subject
// whose token cache is up to date comes as that cache, opened, its files
// hashed but not read (fileSource): supervised training's loadData, which
// tokenized serves from the cache, asks for it.
func readSources(ctx context.Context, o Options, tp Text, log io.Writer, warm bool) ([]*source, []string, error) {
	ins, where, err := DataInputs(o)
	if err != nil {
		return nil, nil, err
	}
	srcs := make([]*source, 0, len(ins))
	for _, in := range ins {
		if note := in.PassedNote(); note != "" {
			fmt.Fprintln(log, note)
		}
		var src *source
		if in.Folder != nil {
			src, err = subjectSource(o, in.Folder, tp, log)
		} else {
			src, err = fileSource(ctx, o, in, tp, log, warm)
		}
		if err != nil {
			return nil, nil, err
		}
		srcs = append(srcs, src)
	}
	return srcs, where, nil
}

// filesSubject names the subject of data files: the file's name less its
// extension, or "data" for several.
func filesSubject(files []string) string {
	if len(files) != 1 {
		return "data"
	}
	base := filepath.Base(files[0])
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// selectFiles keeps the data files that data.subjects names: each file is
// the subject named after it (its name less the extension), as a run on
// one file names its subject. Without subjects every file is kept; a name
// no file has is refused with the names there are, as under a subject
// root, rather than ignored.
func selectFiles(files, subjects []string) ([]string, error) {
	if len(subjects) == 0 {
		return files, nil
	}
	stem := func(f string) string {
		base := filepath.Base(f)
		return strings.TrimSuffix(base, filepath.Ext(base))
	}
	var have []string
	for _, f := range files {
		if !slices.Contains(have, stem(f)) {
			have = append(have, stem(f))
		}
	}
	for _, name := range subjects {
		if !slices.Contains(have, name) {
			return nil, fmt.Errorf("recipe: data.subjects: %w %q among data.files (have: %s; a data file is the subject named after it)", ErrUnknownSubject, name, strings.Join(have, ", "))
		}
	}
	var out []string
	for _, f := range files {
		if slices.Contains(subjects, stem(f)) {
			out = append(out, f)
		}
	}
	return out, nil
}

// resolveDataFiles expands data.files: globs, folders of data files, or
// files. A single folder of subject folders is returned as root instead.
// A file reached twice (the same path given twice, or a glob and a path
// that both name it) is refused: reading it twice would double its
// weight without a word, and dropping the second would guess that the
// user did not mean that; to weigh files, use subject folders' weights.
func resolveDataFiles(entries []string) (files []string, root string, passed []string, err error) {
	seen := map[string]string{} // the file's resolved path: the entry that gave it
	add := func(f, entry string) error {
		key, err := filepath.Abs(f)
		if err == nil {
			if real, err := filepath.EvalSymlinks(key); err == nil {
				key = real
			}
		}
		if prev, dup := seen[key]; dup {
			how := "twice"
			if prev != entry {
				how = fmt.Sprintf("by %q and again by %q", prev, entry)
			}
			return fmt.Errorf("data.files: %s is given %s: give each file once", f, how)
		}
		seen[key] = entry
		return nil
	}
	for _, e := range entries {
		var matches []string
		if strings.ContainsAny(e, "*?[") {
			// ** reaches into subfolders (docs trees nest), as in shells
			// with globstar (filepath.Glob read it as *), and wildcards
			// pass over hidden files and folders (.git), as shells' do.
			if matches, err = doublestar.FilepathGlob(e, doublestar.WithNoHidden()); err != nil {
				return nil, "", nil, fmt.Errorf("data.files: %q: %w", e, err)
			}
			if len(matches) == 0 {
				return nil, "", nil, fmt.Errorf("data.files: %q matches no file", e)
			}
		} else {
			matches = []string{e}
		}
		for _, m := range matches {
			st, err := os.Stat(m)
			if errors.Is(err, fs.ErrNotExist) && config.IsHubID(m) {
				// A Hub dataset's id, as other trainers' configs name it
				// (and ftune init --from keeps it).
				return nil, "", nil, fmt.Errorf("data.files: %s: no such file or folder, and ftune does not download datasets from the Hugging Face Hub: download it there (hf download --repo-type dataset %s --local-dir %s), or name its files (%w)", m, m, m, err)
			}
			if err != nil {
				return nil, "", nil, fmt.Errorf("data.files: %w", err)
			}
			if !st.IsDir() {
				if err := add(m, e); err != nil {
					return nil, "", nil, err
				}
				files = append(files, m)
				continue
			}
			alone := len(entries) == 1 && len(matches) == 1
			if hasDatasetCard(m) || hubDataFolder(m) {
				// A Hub dataset's data/ or configuration folders hold
				// split files as subject folders do (data/train.jsonl):
				// read as subjects, the dataset would be a subject named
				// "data", or its configurations mixed.
				if ok, err := hubAlone(m, alone); err != nil {
					return nil, "", nil, err
				} else if ok {
					return []string{m}, "", nil, nil
				}
			}
			if _, err := subject.Open(m); err == nil {
				if len(entries) > 1 || len(matches) > 1 {
					return nil, "", nil, fmt.Errorf("data.files: %s is a folder of subject folders: give it alone (or as data.root)", m)
				}
				return nil, m, nil, nil
			} else if !errors.Is(err, subject.ErrNoSubjects) {
				return nil, "", nil, err
			}
			if _, ok, err := subject.OpenSubject(m); err != nil {
				return nil, "", nil, err
			} else if ok {
				if len(entries) > 1 || len(matches) > 1 {
					return nil, "", nil, fmt.Errorf("data.files: %s is a subject folder (train/val/test files): give it alone", m)
				}
				return []string{m}, "", nil, nil
			}
			if ok, err := hubAlone(m, alone); err != nil {
				return nil, "", nil, err
			} else if ok {
				return []string{m}, "", nil, nil
			}
			inDir, left, err := dataFilesIn(m, true)
			if err != nil {
				return nil, "", nil, err
			}
			passed = append(passed, left...)
			for _, f := range inDir {
				if err := add(f, e); err != nil {
					return nil, "", nil, err
				}
			}
			files = append(files, inDir...)
		}
	}
	return files, "", passed, nil
}

// hubAlone says whether dir is laid out as a Hugging Face dataset
// (hubLayout), which is read as one subject: an error when it is one but
// not given alone (alone false), or cannot be read.
func hubAlone(dir string, alone bool) (bool, error) {
	h, err := hubLayout(dir)
	if err != nil || h == nil {
		return false, err
	}
	if !alone {
		return false, fmt.Errorf("data.files: %s is a Hugging Face dataset folder (its splits are one subject): give it alone", dir)
	}
	return true, nil
}

// dataExts are the extensions taken from a folder of data files.
var dataExts = []string{".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".txt"}

// docExts are Markdown's: a folder of them given as data is a folder of
// documents (a product's docs, say), each one example. Beside data files
// they are passed over: a dataset downloaded from the Hugging Face Hub
// holds its card, README.md, beside its data. A subject root's are never
// subjects: its README describes the subjects.
var docExts = []string{".md", ".markdown"}

// isCompressedName says whether a file name ends as compressed files do.
func isCompressedName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".gz", ".zst", ".bz2", ".xz", ".zip":
		return true
	}
	return false
}

// dataFilesIn lists a folder's data files (not recursive, hidden files
// left out). With docs, a folder without data files gives its Markdown
// documents instead, those of its subfolders too (hidden ones left out:
// a docs tree nests, mkdocs' and Docusaurus' do), unless its subfolders
// hold data (a dataset's card is not its data: refused), and one with
// data files gives the Markdown files it leaves out as passed, for a note.
func dataFilesIn(dir string, docs bool) (files, passed []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("data.files: %w", err)
	}
	var out, other []string
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		ext := strings.ToLower(filepath.Ext(e.Name()))
		switch {
		case slices.Contains(dataExts, ext):
			out = append(out, filepath.Join(dir, e.Name()))
		case docs && slices.Contains(docExts, ext):
		default:
			other = append(other, e.Name())
		}
	}
	if docs {
		mds, err := markdownUnder(dir)
		if err != nil {
			return nil, nil, err
		}
		if len(out) == 0 && len(mds) > 0 {
			// A dataset's card is not its data: Markdown is the corpus
			// only of a tree without data files.
			data, err := dataUnder(dir, 3)
			if err != nil {
				return nil, nil, err
			}
			if len(data) > 0 {
				return nil, nil, fmt.Errorf("data.files: %s holds no data file at its top (%s), and its Markdown files are not read as the data beside data files: %s (give the data files, e.g. --data '%s', or the documents alone, --data '%s')",
					dir, strings.Join(dataExts, ", "), strings.Join(data, ", "), filepath.Join(dir, "**", "*"+filepath.Ext(data[0])), filepath.Join(dir, "**", "*.md"))
			}
		}
		if len(out) == 0 {
			out = mds
		} else {
			passed = mds
		}
	}
	if len(out) == 0 {
		skipped := ""
		if len(other) > 0 {
			// A folder of .jsonl.gz files: say what was passed over.
			skipped = fmt.Sprintf("; it holds %d other file(s), not read: %s", len(other), strings.Join(other[:min(len(other), 3)], ", "))
			if len(other) > 3 {
				skipped += ", ..."
			}
			if slices.ContainsFunc(other, isCompressedName) {
				skipped += " (compressed files: decompress them first)"
			}
		}
		want := strings.Join(dataExts, ", ")
		if docs {
			want += "; nor Markdown documents, " + strings.Join(docExts, ", ") + ", in it or its subfolders"
		}
		return nil, nil, fmt.Errorf("data.files: %s holds no data file (%s) and no subject folder%s", dir, want, skipped)
	}
	return out, passed, nil
}

// markdownUnder lists the Markdown files in dir and its subfolders, in
// lexical order, hidden files and folders left out, linked documents in;
// a linked folder is not walked (a link can loop). A link to a document
// the tree holds too is refused by resolveDataFiles, as a file given
// twice is.
func markdownUnder(dir string) ([]string, error) {
	var files []string
	err := walkVisible(dir, func(path string, d fs.DirEntry) error {
		if d.IsDir() || !slices.Contains(docExts, strings.ToLower(filepath.Ext(d.Name()))) {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
				return nil // a broken link, or one to a folder or device
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		files = append(files, path)
		return nil
	})
	return files, err
}

// walkVisible walks the tree under dir as a user sees it, in lexical
// order: hidden files and folders (a dot first: .git, .cache) are passed
// over, as a shell's glob passes them; fn sees the rest. Errors name the
// key the tree was given by.
func walkVisible(dir string, fn func(path string, d fs.DirEntry) error) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return fn(path, d)
	})
	if err != nil {
		return fmt.Errorf("data.files: %w", err)
	}
	return nil
}

// ReadOptions are the reader's options every data file and subject
// folder is read with: data.skip_bad and data.text_unit.
func (o Options) ReadOptions() (format.Options, error) {
	text, err := format.ParseTextMode(o.TextUnit)
	if err != nil {
		return format.Options{}, fmt.Errorf("data.text_unit: %w", err)
	}
	return format.Options{Skip: o.SkipBad, Text: text}, nil
}

// fileOptions maps data.format, data.shape and data.columns onto the
// reader's options ("auto": by extension and by the first record's
// fields).
func fileOptions(o Options) (format.Options, error) {
	fo, err := o.ReadOptions()
	if err != nil {
		return fo, err
	}
	switch o.Format {
	case "", "auto":
	case "jsonl", "json", "csv", "tsv", "parquet", "text":
		fo.Kind = format.Kind(o.Format)
	default:
		return fo, fmt.Errorf("data.format: %q (want auto, jsonl, json, csv, tsv, parquet or text)", o.Format)
	}
	shape, err := format.ParseShape(o.Shape)
	if err != nil {
		return fo, fmt.Errorf("data.shape: %w", err)
	}
	// data.columns as a subject.yaml's columns: one mapping, checked as
	// theirs are, for every file.
	if fo.Mapping, err = subject.ColumnMapping(shape, o.Columns); err != nil {
		return fo, fmt.Errorf("data.%w", err)
	}
	return fo, nil
}

// checkTextUnit refuses a data.text_unit that no file would be read
// with: the setting would be dropped.
func checkTextUnit(o Options, fo format.Options, files []string) error {
	if fo.Text == format.TextAuto {
		return nil
	}
	for _, f := range files {
		kind := fo.Kind
		if kind == "" {
			kind, _ = format.KindOf(f)
		}
		if kind == format.KindText {
			return nil
		}
	}
	names := filesWhere(files[:min(len(files), 3)])
	if len(files) > 3 {
		names += fmt.Sprintf(" and %d other files", len(files)-3)
	}
	return fmt.Errorf("data.text_unit: %s cuts plain-text files (.txt, .md) into examples, and none of the data's files is one (%s)", o.TextUnit, names)
}

// fileSource reads the user's files as one subject, named after the file
// (or "data" for several, or the dataset folder), and says what it found:
// in.Files are its training examples, in.Val its validation examples, and
// in.Test, read only for the held-out questions, its test examples. With
// warm and an up-to-date token cache of the training files it reads none
// of their records: the cache, opened, stands for them (warmFiles).
func fileSource(ctx context.Context, o Options, in DataInput, tp Text, log io.Writer, warm bool) (*source, error) {
	fo, err := fileOptions(o)
	if err != nil {
		return nil, err
	}
	files := in.Files
	src := &source{name: in.Name, weight: 1, text: tp, where: files[0], files: files}
	var c *prep.Cache
	var data prep.Hash
	var reads []track.FileHash
	if warm {
		if c, data, reads, err = warmFiles(o, src, fo, tp); err != nil {
			return nil, err
		}
	}
	if c != nil {
		src.cache, src.data, src.reads = c, data, reads
		fmt.Fprintf(log, "data: %s: unchanged since its token cache %s was written (%d examples): read from the cache\n", filesWhere(files), cachePath(o.TokenCache, src.name, subject.Train, ""), c.Examples())
	} else if src.train, src.data, src.reads, err = readFiles(ctx, files, fo, log); err != nil {
		return nil, err
	}
	// A dataset folder's validation split, and its test split when
	// questions are drawn from it (as a subject folder's files are read).
	readSplit := func(files []string) ([]format.Example, error) {
		exs, _, reads, err := readFiles(ctx, files, fo, log)
		if err != nil {
			return nil, fmt.Errorf("subject %s: %w", in.Name, err)
		}
		src.reads = append(src.reads, reads...)
		return exs, nil
	}
	if len(in.Val) > 0 {
		if src.val, err = readSplit(in.Val); err != nil {
			return nil, err
		}
	}
	if len(in.Test) > 0 && o.EvalQuestions > 0 {
		if src.test, err = readSplit(in.Test); err != nil {
			return nil, err
		}
	}
	return src, nil
}
