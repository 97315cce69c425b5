package recipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/subject"
	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/train"
	"github.com/ftune/ftune/train/dpo"
)

// dataset is what a run trains and evaluates on.
type dataset struct {
	subjects  []string
	train     []prep.Row // subject ids index subjects
	val       []prep.Row
	questions []train.QA
	stats     map[string]prep.Stats // train split, per subject
	// cached names the subjects whose training split was read from a
	// token cache (its stats are the cache's record of the examples).
	cached map[string]bool
	// inputs are the files and folders the data was read from (the run's
	// manifest hashes them); reads are the data files as read (size and
	// sha256 of the bytes parsed, or of a token cache's files), which the
	// manifest records instead of hashing them again later.
	inputs []string
	reads  []track.FileHash
	// augment changes each training batch (prompt dropout); nil when off.
	augment func(rows []prep.Row, epoch, index int) ([]prep.Row, error)
	// pairs and valPairs are the preference pairs of training.objective
	// dpo (then train and val are empty).
	pairs, valPairs []dpo.Pair
	// templates are the chat template sources each subject was rendered
	// with (a subject.yaml's own, else the run's), which the adapters
	// trained on them carry (chat_template.jinja).
	templates map[string]string
}

// withTemplateFile is inputs (the files the data is read from) and a
// data.template file, which the rendering reads too: the manifest records
// it, and a resume says when it was edited (the tokens change with it).
func withTemplateFile(o Options, inputs []string) []string {
	if config.IsTemplateFile(o.Template) {
		return append(slices.Clone(inputs), o.Template)
	}
	return inputs
}

// templatesOf maps each source's subject to its chat template's source.
func templatesOf(srcs []*source) map[string]string {
	out := make(map[string]string, len(srcs))
	for _, s := range srcs {
		out[s.name] = s.text.tmpl.Source()
	}
	return out
}

// trainLen is the number of training items: rows, or preference pairs.
func (d *dataset) trainLen() int {
	if d.pairs != nil {
		return len(d.pairs)
	}
	return len(d.train)
}

// source is one subject's examples before tokenising.
type source struct {
	name   string
	weight float64 // subject.yaml weight (1 without one)
	text   Text    // tokenizer and the template this subject is rendered with
	// train, val and test examples; val is nil when the subject has no
	// validation file (a share of train is then held out).
	train, val, test []format.Example
	phrasings        [][]string // subject.yaml phrasings (data.augment.rephrase)
	where            string     // subject.yaml path or data file, for errors
	// files are a file subject's data files (nil for a subject folder).
	files []string
	// data is the token cache's data key of the training examples as
	// read (filesKey), zero where it is their content (HashExamples).
	data prep.Hash
	// cache, when set, is a file subject's up-to-date token cache of its
	// training files, opened instead of reading them: train is then nil.
	cache *prep.Cache
	// reads are the files read as they were read (see dataset.reads).
	reads []track.FileHash
}

// loadData reads the selected subjects: training rows (packed or padded),
// validation rows (padded) and held-out questions from the test split with
// multiple-choice distractors drawn from the subject's other answers.
//
// Tokenising stops when ctx is done (chat templates are rendered under
// it); maxPositions is the model's position limit, for the warning about
// examples longer than it.
func loadData(ctx context.Context, o Options, tp Text, maxPositions int) (*dataset, error) {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	if o.preference() {
		return loadPreferences(ctx, o, tp, log)
	}
	srcs, inputs, err := readSources(ctx, o, tp, log, true)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range srcs {
			if s.cache != nil { // opened by fileSource, not reached
				s.cache.Close()
			}
		}
	}()
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.name
	}
	if _, err := mixOptions(o, srcs, nil); err != nil { // bad keys fail before tokenising
		return nil, err
	}
	if err := checkAugment(o, srcs); err != nil {
		return nil, err
	}
	// The token caches that documents were read from in place: open until
	// every row is built (rows copy their tokens), closed on return, when
	// no document is left to read them.
	var mapped []*prep.Cache
	defer func() {
		for _, c := range mapped {
			c.Close()
		}
	}()
	ds := &dataset{subjects: names, stats: map[string]prep.Stats{}, cached: map[string]bool{}, inputs: withTemplateFile(o, inputs), augment: promptDropout(o, tp), templates: templatesOf(srcs)}
	var perSubject [][]prep.Row
	for i, s := range srcs {
		ds.reads = append(ds.reads, s.reads...)
		p := subjectPreprocessor(o, s.text, maxPositions).WithContext(ctx)
		// Documents in 5 bytes a token, not 8, until they are packed.
		p.Compact = true
		allRows := o.EvalAllRows && s.val == nil // all of it is validation: nothing to train on
		sp, err := trainSplit(ctx, o, s, p, log)
		if sp.mapped != nil {
			mapped = append(mapped, sp.mapped)
		}
		if err != nil {
			return nil, err
		}
		ds.cached[s.name] = sp.cached
		st := sp.train.Stats
		if err := st.NoneKeptError("subject "+s.name+" (training examples)", o.SeqLen); err != nil && !allRows {
			return nil, err
		}
		if w := st.PositionsWarning(maxPositions); w != "" {
			fmt.Fprintf(log, "warning: subject %s: %s\n", s.name, w)
		}
		var docs, heldPieces []prep.Tokenized
		if sp.piecesHeldOut {
			docs, heldPieces = holdOutPieces(log, s.name, sp.train.Docs, o)
			for _, d := range heldPieces { // the tokens trained on are the rest's
				st.Tokens -= len(d.IDs)
				for j := range d.IDs {
					if d.Label(j) != prep.IgnoreIndex {
						st.LabelTokens--
					}
				}
			}
		} else {
			docs = splitLong(log, s.name, sp.train.Docs, o.SeqLen)
		}
		// Each document is let go as its row is built (Release): docs is
		// then the only hold on their arrays, but for the held-out pieces,
		// which get arrays of their own (a document's pieces share its).
		sp.train.Docs = nil
		heldPieces = ownArrays(heldPieces)
		var rows []prep.Row
		if o.Pack {
			rows, _, err = prep.PackContext(ctx, docs, prep.PackOptions{SeqLen: o.SeqLen, Release: true})
		} else {
			rows, err = prep.PadReleasing(ctx, docs, 0)
		}
		docs = nil
		if err != nil {
			return nil, fmt.Errorf("subject %s: %w", s.name, err)
		}
		for j := range rows {
			rows[j].Subject = i
		}
		perSubject = append(perSubject, rows)
		ds.stats[s.name] = st

		var vrows []prep.Row
		switch {
		case sp.val != nil: // held out of the training file's documents
			saySkippedTokenizing(log, s.name+" (validation)", sp.val.Stats)
			// What Preprocessor.Rows makes of the held-out examples:
			// tokenised up to the sequence length (p's MaxLen already),
			// one row each.
			vdocs := append(splitLong(log, s.name+" (validation)", sp.val.Docs, o.SeqLen), heldPieces...)
			if vrows, err = prep.PadContext(ctx, vdocs, o.SeqLen); err != nil {
				return nil, fmt.Errorf("subject %s: %w", s.name, err)
			}
		case len(s.val) > 0:
			vp := *p
			vp.Progress = tokenizeProgress(log, s.name+" (validation)")
			var vst prep.Stats
			vrows, vst, err = vp.Rows(s.val, prep.RowOptions{SeqLen: o.SeqLen})
			if err != nil {
				return nil, fmt.Errorf("subject %s: %w", s.name, err)
			}
			saySkippedTokenizing(log, s.name+" (validation)", vst)
		}
		for j := range vrows {
			vrows[j].Subject = i
		}
		ds.val = append(ds.val, vrows...)
		if len(s.test) > 0 && o.EvalQuestions > 0 {
			qs, err := questions(s.text, s.name, s.test, sp.exs, o.EvalQuestions, o.DataSeed)
			if err != nil {
				return nil, err
			}
			ds.questions = append(ds.questions, qs...)
		}
	}
	if o.EvalAllRows { // Evaluate reads no training rows
		return ds, nil
	}
	sizes := make([]int, len(perSubject))
	for i, r := range perSubject {
		sizes[i] = len(r)
	}
	mix, err := mixOptions(o, srcs, sizes)
	if err != nil {
		return nil, err
	}
	mixed, err := subject.Mix(perSubject, mix)
	if err != nil {
		return nil, err
	}
	ds.train = mixed
	if len(ds.train) == 0 {
		return nil, fmt.Errorf("recipe: no training rows in %s", strings.Join(inputs, ", "))
	}
	return ds, nil
}

// splitLong cuts the plain-text documents longer than the sequence length
// (kept whole under data.long_text split) into rows' worth, saying how
// many were cut: what subject "what" trains or validates on.
func splitLong(log io.Writer, what string, docs []prep.Tokenized, seqLen int) []prep.Tokenized {
	docs, split, pieces := prep.SplitLong(docs, seqLen)
	if split > 0 {
		fmt.Fprintf(log, "subject %s: %d text examples longer than data.max_length (%d tokens) are split into %d pieces, each a document of its own (data.long_text: split; truncate keeps only their start)\n", what, split, seqLen, pieces)
	}
	return docs
}

// split is a subject's training documents and, when they were held out
// of the same tokenisation, its validation documents.
type split struct {
	train prep.Tokenization
	// val is the held-out share's documents; nil when the validation
	// examples (source.val: a validation file, or a share held out of
	// examples that augmentation changed) are tokenised apart.
	val *prep.Tokenization
	// exs are the training examples (for the questions' distractors);
	// nil when the files were not read (an up-to-date token cache).
	exs    []format.Example
	cached bool // read from a token cache
	// piecesHeldOut says that train holds documents longer than a row
	// whose pieces share the validation set (holdOutPieces).
	piecesHeldOut bool
	// mapped, when set, is the token cache whose mapping train's and
	// val's documents read: the caller closes it once done with them.
	mapped *prep.Cache
}

// trainSplit tokenises what a subject trains on: its training file, less
// the share held out for validation (data.val_split, drawn with
// data.seed) when it has no validation file. The whole file is tokenised
// (or read from its token cache, which `ftune data prepare` writes) and
// split after, by index: tokenising is per example, so the documents and
// counts of each side are those of tokenising it alone, and the held-out
// examples are the ones prep.SplitRatio draws from the examples, as when
// the examples were split before tokenising. Augmentation that changes
// the examples (data.augment.dedup, rephrase) goes through trainExamples
// instead, cached in a file of its own.
func trainSplit(ctx context.Context, o Options, s *source, p *prep.Preprocessor, log io.Writer) (sp split, err error) {
	var (
		exs    []format.Example // the training examples; nil when served from a token cache
		all    prep.Tokenization
		cached bool
		mapped *prep.Cache
	)
	defer func() {
		if err != nil && mapped != nil {
			mapped.Close()
			mapped = nil
		}
		sp.mapped = mapped
	}()
	allRows := o.EvalAllRows && s.val == nil
	if (o.Dedup > 0 || o.Rephrase > 0 && len(s.phrasings) > 0) && !allRows {
		// Without rephrasing, which changes training examples only, the
		// share is held out after tokenizing, as below, so that documents
		// cut into pieces are held out by piece.
		later := p.Opts.Overflow == prep.Split && !(o.Rephrase > 0 && len(s.phrasings) > 0)
		var variant string
		if exs, variant, err = trainExamples(o, s, !later, log); err != nil {
			return split{}, err
		}
		if all, cached, mapped, err = tokenized(ctx, o, s.text, p, s.name, subject.Train, variant, tokenInput{exs: exs}); err != nil {
			return split{}, err
		}
		if !later || s.val != nil {
			t, err := all.Select(count(len(exs)), p.Opts.MaxPositions, func(i int) string { return exs[i].Source })
			if err != nil {
				return split{}, fmt.Errorf("subject %s: %w", s.name, err)
			}
			saySkippedTokenizing(log, s.name, t.Stats)
			return split{train: t, exs: exs, cached: cached}, nil
		}
	} else {
		in := tokenInput{exs: s.train, data: s.data, open: s.cache}
		s.cache = nil // tokenized closes it
		if all, cached, mapped, err = tokenized(ctx, o, s.text, p, s.name, subject.Train, "", in); err != nil {
			return split{}, err
		}
		exs = s.train
	}
	n := len(all.Outcomes)
	idx := count(n)
	var held []int
	sp = split{cached: cached}
	if allRows {
		idx, held = nil, idx
		fmt.Fprintf(log, "subject %s: no validation file; all %d examples evaluated, none held out (data.val_split does not apply)\n", s.name, n)
	} else if s.val == nil && o.ValSplit > 0 {
		// Documents cut into pieces are held out piece by piece
		// (holdOutPieces): whole, a few long ones would make the held-out
		// share whatever their lengths make it (one manual of eight, half
		// the corpus).
		cands, long := idx, []int(nil)
		if p.Opts.Overflow == prep.Split {
			cands, long = splitAside(all, p.Opts.MaxLen)
		}
		idx, held = prep.SplitRatio(cands, o.ValSplit, splitSeed(o.DataSeed, s.name))
		idx = append(idx, long...)
		sp.piecesHeldOut = len(long) > 0
		by := ""
		if sp.piecesHeldOut {
			by = fmt.Sprintf("; the %d examples longer than a row are held out by their pieces instead, below", len(long))
		}
		fmt.Fprintf(log, "subject %s: no validation file; %d of %d training examples held out for validation (data.val_split %g, data.seed %d)%s\n",
			s.name, len(held), n, o.ValSplit, o.DataSeed, by)
	}
	// Where an example over the model's positions is named: its record
	// when the file was read, else its place in the file.
	source := func(i int) string { return fmt.Sprintf("%s example %d", filesWhere(s.files), i+1) }
	if exs != nil {
		source = func(i int) string { return exs[i].Source }
	}
	maxPos := p.Opts.MaxPositions
	if sp.train, err = all.Select(idx, maxPos, source); err != nil {
		return split{}, fmt.Errorf("subject %s: %w", s.name, err)
	}
	saySkippedTokenizing(log, s.name, sp.train.Stats)
	if exs != nil {
		sp.exs = make([]format.Example, len(idx))
		for k, i := range idx {
			sp.exs[k] = exs[i]
		}
	}
	valKeys := prep.ExampleKeys(s.val)
	if held != nil {
		val, err := all.Select(held, maxPos, source)
		if err != nil {
			return split{}, fmt.Errorf("subject %s: %w", s.name, err)
		}
		sp.val, valKeys = &val, val.Keys
	} else if sp.piecesHeldOut {
		sp.val = &prep.Tokenization{} // pieces only
	}
	warnSeenValidation(log, s.name, sp.train.Keys, valKeys)
	return sp, nil
}

// splitAside parts the examples t was made of into those whose documents
// fit maxLen tokens and those longer, which a run under prep.Split cuts
// into pieces.
func splitAside(t prep.Tokenization, maxLen int) (fit, long []int) {
	d := 0
	for i, o := range t.Outcomes {
		if o != prep.Kept && o != prep.Truncated {
			fit = append(fit, i)
			continue
		}
		if len(t.Docs[d].IDs) > maxLen {
			long = append(long, i)
		} else {
			fit = append(fit, i)
		}
		d++
	}
	return fit, long
}

// holdOutPieces cuts the training documents of subject name longer than
// the sequence length into pieces (as splitLong does) and holds out
// data.val_split of those pieces for validation, drawn with data.seed:
// documents that fit are held out whole by trainSplit, long ones here.
func holdOutPieces(log io.Writer, name string, docs []prep.Tokenized, o Options) (train, val []prep.Tokenized) {
	var long []prep.Tokenized
	for _, d := range docs {
		if len(d.IDs) > o.SeqLen {
			long = append(long, d)
		} else {
			train = append(train, d)
		}
	}
	pieces, split, n := prep.SplitLong(long, o.SeqLen)
	kept, val := prep.SplitRatio(pieces, o.ValSplit, splitSeed(o.DataSeed, name+" pieces"))
	fmt.Fprintf(log, "subject %s: %d text examples longer than data.max_length (%d tokens) are split into %d pieces (data.long_text: split; truncate keeps only their start): %d of them held out for validation (data.val_split %g), %d trained on\n",
		name, split, o.SeqLen, n, len(val), o.ValSplit, len(kept))
	return append(train, kept...), val
}

// ownArrays gives each document arrays of its own, not a part of a longer
// document's (SplitLong's pieces share them), so that it does not keep
// the rest of that document live.
func ownArrays(docs []prep.Tokenized) []prep.Tokenized {
	for i, d := range docs {
		d.IDs, d.Labels, d.Learnt = slices.Clone(d.IDs), slices.Clone(d.Labels), slices.Clone(d.Learnt)
		docs[i] = d
	}
	return docs
}

// count is 0, 1, ..., n-1.
func count(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// SetTokenizing sets on p how the options say examples become documents:
// what is learnt (train_on_inputs, mask_history) and whether long plain
// text is kept whole to be split (long_text). The run and `ftune data`
// must agree on it: data validate counts the learnt tokens, and a cache
// data prepare writes is keyed on it.
func (o Options) SetTokenizing(p *prep.Preprocessor) {
	p.Opts.TrainOnInputs, p.Opts.MaskHistory = o.TrainOnInputs, o.MaskHistory
	if o.LongText != "truncate" {
		p.Opts.Overflow = prep.Split
		if p.Opts.MaxLen > 0 && p.Opts.MaxLen <= p.Opts.MaxPositions {
			// Whole text past the model's positions is cut into rows
			// within them: nothing to warn about.
			p.Opts.MaxPositions = 0
		}
	}
}

// trainExamples are the examples a subject trains on when augmentation
// changes them: its training file less near duplicates
// (data.augment.dedup), less the share held out for validation
// (data.val_split, drawn with data.seed) when it has no validation file
// and holdOut is set (else the caller holds it out after tokenising),
// rephrased (data.augment.rephrase). The hold-out happens before
// tokenising, so no example is in both. variant names what differs from
// the training file as read (for the token cache).
func trainExamples(o Options, s *source, holdOut bool, log io.Writer) ([]format.Example, string, error) {
	var variant []string
	// Near duplicates go first, so that none straddles train and the
	// held-out share.
	exs, err := dedup(o, s, s.train, log)
	if err != nil {
		return nil, "", err
	}
	if o.Dedup > 0 {
		variant = append(variant, fmt.Sprintf("dedup=%g seed=%d", o.Dedup, o.DataSeed))
	}
	if holdOut && s.val == nil && o.EvalAllRows {
		// All of it is validation (Evaluate of preference records),
		// as read: augmentation is training's.
		s.val = s.train
		fmt.Fprintf(log, "subject %s: no validation file; all %d examples evaluated, none held out (data.val_split does not apply)\n", s.name, len(s.val))
		return nil, "", nil
	}
	if holdOut && s.val == nil && o.ValSplit > 0 {
		var held []format.Example
		n := len(exs)
		exs, held = prep.SplitRatio(exs, o.ValSplit, splitSeed(o.DataSeed, s.name))
		s.val = held
		fmt.Fprintf(log, "subject %s: no validation file; %d of %d training examples held out for validation (data.val_split %g, data.seed %d)\n",
			s.name, len(held), n, o.ValSplit, o.DataSeed)
		variant = append(variant, fmt.Sprintf("val_split=%g seed=%d", o.ValSplit, o.DataSeed))
	}
	warnSeenValidation(log, s.name, prep.ExampleKeys(exs), prep.ExampleKeys(s.val))
	// Rephrasing changes training examples only: validation stays as
	// written.
	if exs, err = rephrase(o, s, exs, log); err != nil {
		return nil, "", err
	}
	if o.Rephrase > 0 && len(s.phrasings) > 0 {
		variant = append(variant, fmt.Sprintf("rephrase=%g seed=%d", o.Rephrase, o.DataSeed))
	}
	return exs, strings.Join(variant, " "), nil
}

// warnSeenValidation says when validation examples are also training
// examples, word for word (a data file with repeated records, a
// validation file copied from the training one): the validation loss then
// counts examples the adapter learnt as unseen, and overstates how well
// it generalises. Nothing is dropped: the user decides.
//
// train and val are the examples' keys (prep.ExampleKey, which a token
// cache records): nil train keys (a cache written without them) check
// nothing.
func warnSeenValidation(log io.Writer, subject string, train, val []uint64) {
	if len(val) == 0 || len(train) == 0 {
		return
	}
	seen := make(map[uint64]bool, len(train))
	for _, k := range train {
		seen[k] = true
	}
	n := 0
	for _, k := range val {
		if seen[k] {
			n++
		}
	}
	if n > 0 {
		fmt.Fprintf(log, "warning: subject %s: %d of the %d validation examples are also training examples, word for word: the validation loss counts them as unseen (remove the repeated records, or set data.augment.dedup, e.g. 0.9, to drop them before the split)\n", subject, n, len(val))
	}
}

// splitSeed gives each subject its own hold-out draw from data.seed.
func splitSeed(seed uint64, name string) uint64 {
	h := prep.HashString(name)
	var x uint64
	for _, b := range h[:8] {
		x = x<<8 | uint64(b)
	}
	return seed ^ x
}

// ErrUnknownSubject is wrapped when data.subjects names a subject the
// data does not have.
var ErrUnknownSubject = errors.New("no subject")

// rootInputs are the selected subjects of a subject root: its subject
// folders and its data files, each file the subject named after it (its
// name less the extension, as data.files names a file's subject) and read
// as data.files reads one (fo), a share of it held out for validation.
// Subjects come sorted by name, folders and files together; a name given
// twice (law/ and law.jsonl, or law.jsonl and law.csv) is refused naming
// both, since which the user meant cannot be told.
func rootInputs(o Options, root string, fo format.Options) ([]DataInput, error) {
	mgr, err := subject.Open(root)
	if err != nil && !errors.Is(err, subject.ErrNoSubjects) {
		return nil, err
	}
	var folders []*subject.Subject
	if mgr != nil {
		folders = mgr.Subjects
	}
	// A Hub dataset's data/ folder of split files reads as a subject
	// folder named "data"; its shards are no subjects either.
	if len(folders) == 0 || hubDataFolder(root) {
		if err := hubRoot(root); err != nil {
			return nil, err
		}
	}
	// dataFilesIn fails when the root holds no data file (or cannot be
	// listed, which subject.Open has just done): a root of folders alone.
	files, _, ferr := dataFilesIn(root, false)
	if ferr != nil {
		if len(folders) == 0 {
			return nil, fmt.Errorf("recipe: %s: %w and no data files (want folders holding subject.yaml and train/val/test files, or one data file per subject: %s)", root, subject.ErrNoSubjects, strings.Join(dataExts, ", "))
		}
		files = nil
	}
	type found struct {
		name string
		dir  *subject.Subject // nil for a file
		file string
	}
	var all []found
	byName := map[string]string{}
	for _, s := range folders {
		all = append(all, found{name: s.Name, dir: s})
		byName[s.Name] = s.Dir
	}
	for _, f := range files {
		base := filepath.Base(f)
		name := strings.TrimSuffix(base, filepath.Ext(base))
		if _, ok := subject.SplitOf(name); ok {
			// A train/val/test file makes the root look like one subject's
			// folder; taking "train" as a subject's name would hide that.
			return nil, fmt.Errorf("recipe: %s: %s is named after a split, not a subject: a subject root's files are subjects named after them; move the train/val/test files into a folder named after their subject (or give that folder as data.files)", root, base)
		}
		if other, dup := byName[name]; dup {
			return nil, fmt.Errorf("recipe: subject %q is given twice under %s, by %s and by %s: keep one", name, root, other, f)
		}
		byName[name] = f
		all = append(all, found{name: name, file: f})
	}
	slices.SortFunc(all, func(a, b found) int { return strings.Compare(a.name, b.name) })
	selected := all
	if len(o.Subjects) > 0 {
		selected = nil
		for _, name := range o.Subjects {
			i := slices.IndexFunc(all, func(x found) bool { return x.name == name })
			if i < 0 {
				var have []string
				for _, x := range all {
					have = append(have, x.name)
				}
				return nil, fmt.Errorf("recipe: %w %q under %s (have: %s)", ErrUnknownSubject, name, root, strings.Join(have, ", "))
			}
			selected = append(selected, all[i])
		}
	}
	var out []DataInput
	for _, x := range selected {
		if x.dir != nil {
			out = append(out, DataInput{Name: x.name, Folder: x.dir})
		} else {
			out = append(out, DataInput{Name: x.name, Files: []string{x.file}, Format: fo})
		}
	}
	return out, nil
}

// subjectSource reads one subject folder's splits.
func subjectSource(o Options, s *subject.Subject, tp Text, log io.Writer) (*source, error) {
	src := &source{name: s.Name, weight: s.WeightOrDefault(), text: tp, phrasings: s.Config.Phrasings, where: filepath.Join(s.Dir, subject.ConfigFile)}
	var err error
	if src.text, err = subjectText(o, s, tp, log); err != nil {
		return nil, err
	}
	load := func(split subject.Split) ([]format.Example, error) {
		fo, err := o.ReadOptions()
		if err != nil {
			return nil, err
		}
		path := s.Files[split]
		var d *digest
		if streamed(path, "") {
			// What the manifest records of the file: the bytes read.
			d = newDigest()
			fo.Digest = d
		}
		exs, rep, err := s.Load(split, fo)
		if err == nil {
			SayHowRead(log, rep)
			if d != nil {
				src.reads = append(src.reads, d.file(path))
			}
		}
		return exs, err
	}
	if src.train, err = load(subject.Train); err != nil {
		return nil, err
	}
	if _, ok := s.Files[subject.Val]; ok {
		if src.val, err = load(subject.Val); err != nil {
			return nil, err
		}
	}
	if _, ok := s.Files[subject.Test]; ok {
		if src.test, err = load(subject.Test); err != nil {
			return nil, err
		}
	}
	return src, nil
}

// SayHowRead says how a read took its file where that is not the plain
// reading (the report's notes: JSON Lines named .json, records wrapped in
// an object) and how many malformed records it skipped (data.skip_bad),
// with the first reasons: nothing is read otherwise or dropped unsaid. A
// run says them as it reads its data, and so does ftune data prepare.
func SayHowRead(log io.Writer, rep format.Report) {
	for _, n := range rep.Notes {
		fmt.Fprintf(log, "note: %s: %s\n", rep.File, n)
	}
	if rep.Skipped == 0 {
		return
	}
	saySkips(log, fmt.Sprintf("data: %s: %d malformed records skipped (data.skip_bad), of %d", rep.File, rep.Skipped, rep.Records), rep.SkipErrors)
}

// saySkips prints line with the first three reasons after it.
func saySkips(log io.Writer, line string, reasons []string) {
	fmt.Fprint(log, line)
	for i, why := range reasons {
		if i == 3 {
			fmt.Fprintf(log, "; ...")
			break
		}
		fmt.Fprintf(log, "; %s", why)
	}
	fmt.Fprintln(log)
}

// subjectText is the tokenizer and template a subject is rendered with: a
// subject.yaml template unless the run sets data.template itself. Either
// way a template other than the run's is said.
func subjectText(o Options, s *subject.Subject, tp Text, log io.Writer) (Text, error) {
	name := s.TemplatePath()
	if name == "" {
		return tp, nil
	}
	t := tp
	if err := t.UseTemplate(name); err != nil {
		return tp, fmt.Errorf("%s: template %q: %w", filepath.Join(s.Dir, subject.ConfigFile), s.Config.Template, err)
	}
	if strings.TrimSpace(t.tmpl.Source()) == strings.TrimSpace(tp.tmpl.Source()) {
		return tp, nil // the same template: nothing changes
	}
	if o.Template != "" && o.Template != "auto" {
		fmt.Fprintf(log, "subject %s: data.template %s overrides the template %q of its subject.yaml\n", s.Name, o.Template, s.Config.Template)
		return tp, nil
	}
	fmt.Fprintf(log, "subject %s: rendered with the template %q of its subject.yaml\n", s.Name, s.Config.Template)
	return t, nil
}

// questions turns the first n test examples (a user turn and the
// assistant's answer) into prompts, with three distractor answers from the
// subject's training answers for multiple choice.
func questions(tp Text, subj string, test, trainExs []format.Example, n int, seed uint64) ([]train.QA, error) {
	var pool []string
	for _, ex := range trainExs {
		if a := lastAnswer(ex); a != "" && !slices.Contains(pool, a) {
			pool = append(pool, a)
		}
	}
	r := rand.New(rand.NewPCG(seed, 0x9a))
	var out []train.QA
	for _, ex := range test {
		if len(out) == n {
			break
		}
		ans := lastAnswer(ex)
		if ans == "" {
			continue
		}
		msgs := ex.Messages[:len(ex.Messages)-1]
		text, err := tp.render(msgs, ex.Tools, true)
		if err != nil {
			return nil, err
		}
		prompt, err := tp.encode(text, false)
		if err != nil {
			return nil, err
		}
		q := train.QA{Subject: subj, Question: msgs[len(msgs)-1].Content, Answer: ans, Prompt: prompt}
		choices := []string{ans}
		for _, i := range r.Perm(len(pool)) {
			if len(choices) == 4 {
				break
			}
			if train.Normalize(pool[i]) != train.Normalize(ans) && !slices.Contains(choices, pool[i]) {
				choices = append(choices, pool[i])
			}
		}
		r.Shuffle(len(choices), func(i, j int) { choices[i], choices[j] = choices[j], choices[i] })
		for i, c := range choices {
			ids, err := tp.encode(c, false)
			if err != nil {
				return nil, err
			}
			q.Choices = append(q.Choices, c)
			q.ChoiceIDs = append(q.ChoiceIDs, ids)
			if c == ans {
				q.Correct = i
			}
		}
		out = append(out, q)
	}
	return out, nil
}

// lastAnswer is the final assistant message's answer, the reference of
// exact-match evaluation: its content without a <think> block (thinking
// given in the content; reasoning_content is already apart from it).
func lastAnswer(ex format.Example) string {
	if n := len(ex.Messages); n >= 2 && ex.Messages[n-1].Role == "assistant" {
		_, answer := train.SplitThinking(ex.Messages[n-1].Content)
		return answer
	}
	return ""
}

// tokenInput is what tokenized makes documents of: examples, whose token
// cache is found under data (filesKey: the bytes they were read from;
// zero: their content, prep.HashExamples); or a file subject's up-to-date
// cache, opened instead of reading its files (exs is then nil).
type tokenInput struct {
	exs  []format.Example
	data prep.Hash
	open *prep.Cache
}

// tokenized returns what tokenising a split's examples makes: documents,
// the outcome of each example, their keys and counts. With o.TokenCache
// they come from the memory-mapped token cache there (built on first
// use, rebuilt when the tokenizer, template, options or data changed,
// saying why), else they are tokenised now. variant is non-empty when the
// examples differ from the split's file (an augmentation): such caches
// get their own file, so the cache of the whole split (`ftune data
// prepare`) stays valid. fromCache says the documents were read from an
// existing cache, whose record of the examples gives the counts. The
// caller takes its split's documents and counts with Select (t.Stats, set
// only when tokenised now, counts every example), and says what was
// skipped tokenizing (data.skip_bad).
//
// Documents read from a cache lie in its mapping, not copied (a 100 MB
// corpus's 39 million tokens cost 8 bytes each of heap with their labels
// copied out): mapped is that cache, which the caller closes once no
// document is read any more (nil when the documents were tokenised now).
// Writing the cache stops when ctx is done, leaving none (an interrupted
// run returns the context's error).
func tokenized(ctx context.Context, o Options, tp Text, p *prep.Preprocessor, name string, split subject.Split, variant string, in tokenInput) (t prep.Tokenization, fromCache bool, mapped *prep.Cache, err error) {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	q := *p
	q.Progress = tokenizeProgress(log, name)
	p = &q
	if in.open != nil {
		defer func() { // handed to the caller, or closed
			if mapped != in.open {
				in.open.Close()
			}
		}()
	}
	tokenize := func() (prep.Tokenization, error) {
		t, err := p.TokenizeAllOutcomes(in.exs)
		if err != nil {
			return t, err
		}
		t.Keys = prep.ExampleKeys(in.exs)
		return t, nil
	}
	if o.TokenCache == "" {
		t, err := tokenize()
		return t, false, nil, err
	}
	path := cachePath(o.TokenCache, name, split, variant)
	made, err := fsutil.MkdirAllMade(filepath.Dir(path))
	if err != nil {
		return prep.Tokenization{}, false, nil, fmt.Errorf("data.token_cache %s: %w", o.TokenCache, err)
	}
	defer func() {
		if err != nil {
			// An interrupted or failed first tokenising leaves no empty
			// cache folders behind.
			fsutil.RemoveEmpty(made)
		}
	}()
	data := in.data
	if data == (prep.Hash{}) {
		data = prep.HashExamples(in.exs)
	}
	key := cacheKey(tp, p, data)
	c, rebuilt := in.open, false
	if c != nil && c.Key != key {
		return prep.Tokenization{}, false, nil, fmt.Errorf("recipe: subject %s: the token cache %s was opened under another key than its tokenising needs", name, path)
	}
	if c == nil {
		var uncached prep.Tokenization
		// The log hears why a cache is rebuilt, and of the killed writes'
		// temporaries the build removes.
		c, rebuilt, err = prep.OpenOrBuildTokenization(ctx, path, key, o.Log, func() (prep.Tokenization, error) {
			t, err := tokenize()
			if err == nil && t.Stats.Skipped > 0 {
				// The cache is keyed on the examples as read, skipped ones
				// too: a later run reading it would leave them out unsaid.
				uncached = t
				return prep.Tokenization{}, errSkippedUncached
			}
			return t, err
		})
		if errors.Is(err, errSkippedUncached) {
			fmt.Fprintf(log, "data: subject %s: token cache not written while records are skipped\n", name)
			return uncached, false, nil, nil
		}
		if err == nil {
			err = ctx.Err() // written as the interrupt came: complete, and kept
		}
		if err != nil && ctx.Err() != nil {
			if c != nil {
				c.Close()
			}
			return prep.Tokenization{}, false, nil, err
		}
		var fsErr *fs.PathError
		if errors.As(err, &fsErr) {
			// Reading or writing the cache, not the data: say which
			// setting put it there.
			return prep.Tokenization{}, false, nil, fmt.Errorf("data.token_cache %s: %w", o.TokenCache, err)
		}
		if err != nil {
			return prep.Tokenization{}, false, nil, err
		}
		if rebuilt {
			fmt.Fprintf(log, "data: subject %s: token cache %s written (%d examples)\n", name, path, c.Examples())
		}
	}
	// A cache is a file on disk: an id past the vocabulary (another
	// model's cache, damage) is named here, not met in the embedding.
	if err := c.CheckVocab(tp.tok.VocabSize()); err != nil {
		c.Close()
		return prep.Tokenization{}, false, nil, err
	}
	return prep.Tokenization{Docs: c.MappedDocs(), Outcomes: c.Outcomes(), Keys: c.Keys()}, !rebuilt, c, nil
}

// errSkippedUncached: tokenising skipped records (data.skip_bad), so the
// token cache is not written.
var errSkippedUncached = errors.New("records skipped: not cached")

// BadRecord reports whether err, of tokenising one record, is the
// record's own (what data.skip_bad skips, prep.Preprocessor.SkipBad): its
// chat template rendering over the template's budget (a 50 MB answer
// over the 16 MiB string limit) or its encoding over the tokenizer's.
// prep's own limits on a record (prep.ErrRecordLimit) are skipped too.
func BadRecord(err error) bool {
	return errors.Is(err, chat.ErrBudget) || errors.Is(err, tokenizer.ErrLimit)
}

// saySkippedTokenizing says how many records tokenising what skipped
// (data.skip_bad), and the first reasons, as SayHowRead does for reading.
func saySkippedTokenizing(log io.Writer, what string, st prep.Stats) {
	if st.Skipped == 0 {
		return
	}
	saySkips(log, fmt.Sprintf("data: subject %s: %d records skipped while tokenizing (data.skip_bad), of %d", what, st.Skipped, st.Examples), st.SkipErrors)
}

// progressEvery is how often a long tokenizing says how far it is, and
// progressNow its clock (tests set both).
var (
	progressEvery = 10 * time.Second
	progressNow   = time.Now
)

// tokenizeProgress is a prep.Preprocessor.Progress writing a line to log
// at most every progressEvery while what is tokenised: a 200 MB file takes
// about a minute on two cores, which was a minute of silence. Tokenising
// that takes less writes nothing.
func tokenizeProgress(log io.Writer, what string) func(done, total int) {
	start := progressNow()
	last := start
	return func(done, total int) {
		now := progressNow()
		if now.Sub(last) < progressEvery || total == 0 {
			return
		}
		last = now
		fmt.Fprintf(log, "tokenizing %s: %s of %s examples (%d%%), %d s\n", what, thousands(done), thousands(total), done*100/total, int(now.Sub(start).Seconds()))
	}
}

// thousands writes n with commas between groups of three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// evaluable says whether there is anything to evaluate before and after
// training, and says once what is missing: no validation rows (no val
// file, data.val_split 0) or no held-out questions (no test file).
func (d *dataset) evaluable(log io.Writer) bool {
	if d.pairs != nil {
		if len(d.valPairs) == 0 {
			fmt.Fprintln(log, "no validation pairs: the before/after evaluation is skipped (hold out a share with data.val_split, or add a val file)")
			return false
		}
		return true
	}
	switch {
	case len(d.val) == 0 && len(d.questions) == 0:
		fmt.Fprintln(log, "no validation or test data: the before/after evaluation is skipped (hold out a share with data.val_split, or add val and test files)")
		return false
	case len(d.val) == 0:
		fmt.Fprintln(log, "no validation data: validation loss is skipped (hold out a share with data.val_split, or add a val file)")
	case len(d.questions) == 0:
		fmt.Fprintln(log, "no held-out questions (no test file, or training.eval.generation.questions is 0): question answering is not evaluated")
	}
	return true
}
