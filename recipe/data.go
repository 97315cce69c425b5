package recipe

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/subject"
	"github.com/ftune/ftune/train"
)

// dataset is what a run trains and evaluates on.
type dataset struct {
	subjects  []string
	train     []train.Row
	val       []train.Row
	questions []train.QA
	stats     map[string]prep.Stats // train split, per subject
}

// loadData reads the selected subjects: training rows (packed or padded),
// validation rows (padded) and held-out questions from the test split with
// multiple-choice distractors drawn from the subject's other answers.
func loadData(o Options, tp Text) (*dataset, error) {
	mgr, err := subject.Open(o.DataRoot)
	if err != nil {
		return nil, err
	}
	var selected []*subject.Subject
	if len(o.Subjects) == 0 {
		selected = mgr.Subjects
	}
	for _, name := range o.Subjects {
		s, ok := mgr.Subject(name)
		if !ok {
			var have []string
			for _, x := range mgr.Subjects {
				have = append(have, x.Name)
			}
			return nil, fmt.Errorf("recipe: no subject %q under %s (have: %s)", name, o.DataRoot, strings.Join(have, ", "))
		}
		selected = append(selected, s)
	}
	ds := &dataset{stats: map[string]prep.Stats{}}
	p := tp.preprocessor(o.SeqLen)
	var perSubject [][]prep.Row
	var weights []float64
	for i, s := range selected {
		ds.subjects = append(ds.subjects, s.Name)
		exs, _, err := s.Load(subject.Train, format.Options{})
		if err != nil {
			return nil, err
		}
		docs, st, err := tokenized(o, tp, p, s, subject.Train, exs)
		if err != nil {
			return nil, err
		}
		var rows []prep.Row
		if o.Pack {
			rows, _, err = prep.Pack(docs, prep.PackOptions{SeqLen: o.SeqLen, PadID: int32(tp.pad)})
		} else {
			rows, err = prep.Pad(docs, 0, int32(tp.pad))
		}
		if err != nil {
			return nil, fmt.Errorf("subject %s: %w", s.Name, err)
		}
		for j := range rows {
			rows[j].Subject = i
		}
		perSubject = append(perSubject, rows)
		weights = append(weights, s.WeightOrDefault())
		ds.stats[s.Name] = st

		if _, ok := s.Files[subject.Val]; ok {
			vex, _, err := s.Load(subject.Val, format.Options{})
			if err != nil {
				return nil, err
			}
			vrows, _, err := p.Rows(vex, prep.RowOptions{SeqLen: o.SeqLen, PadID: int32(tp.pad)})
			if err != nil {
				return nil, fmt.Errorf("subject %s: %w", s.Name, err)
			}
			for j := range vrows {
				vrows[j].Subject = i
			}
			ds.val = append(ds.val, train.FromPrep(vrows, ds.subjects)...)
		}
		if _, ok := s.Files[subject.Test]; ok && o.EvalQuestions > 0 {
			tex, _, err := s.Load(subject.Test, format.Options{})
			if err != nil {
				return nil, err
			}
			qs, err := questions(tp, s.Name, tex, exs, o.EvalQuestions, o.Seed)
			if err != nil {
				return nil, err
			}
			ds.questions = append(ds.questions, qs...)
		}
	}
	mixed, err := subject.Mix(perSubject, subject.MixOptions{Strategy: subject.Interleave, Weights: weights, Seed: o.Seed})
	if err != nil {
		return nil, err
	}
	ds.train = train.FromPrep(mixed, ds.subjects)
	if len(ds.train) == 0 {
		return nil, fmt.Errorf("recipe: no training rows in %s", o.DataRoot)
	}
	return ds, nil
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
		text, err := tp.render(msgs, true)
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

func lastAnswer(ex format.Example) string {
	if n := len(ex.Messages); n >= 2 && ex.Messages[n-1].Role == "assistant" {
		return ex.Messages[n-1].Content
	}
	return ""
}

// tokenized returns a split's token ids and labels: from the memory-mapped
// token cache under o.TokenCache when set (built on first use, rebuilt when
// the tokenizer, template or options changed), else tokenised now.
func tokenized(o Options, tp Text, p *prep.Preprocessor, s *subject.Subject, split subject.Split, exs []format.Example) ([]prep.Tokenized, prep.Stats, error) {
	if o.TokenCache == "" {
		return p.TokenizeAll(exs)
	}
	path := filepath.Join(o.TokenCache, s.Name, string(split)+".tokens")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, prep.Stats{}, err
	}
	key := prep.CacheKey{Tokenizer: tp.TokenizerHash, Template: tp.TemplateHash, Options: prep.OptionsHash(p.Opts, p.EOS)}
	var st prep.Stats
	c, _, err := prep.OpenOrBuild(path, key, func() ([]prep.Tokenized, error) {
		docs, s2, err := p.TokenizeAll(exs)
		st = s2
		return docs, err
	})
	if err != nil {
		return nil, st, err
	}
	defer c.Close()
	// The cache's slices point into its mapping, which Close releases.
	docs := c.Docs()
	for i, d := range docs {
		d.IDs = append([]int32(nil), d.IDs...)
		d.Labels = append([]int32(nil), d.Labels...)
		docs[i] = d
	}
	if st.Examples == 0 { // read from the cache: count what it holds
		for _, d := range docs {
			st.Examples++
			st.Kept++
			st.Tokens += len(d.IDs)
		}
	}
	return docs, st, nil
}
