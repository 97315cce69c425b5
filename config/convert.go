package config

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// convertedHeader begins the run file `ftune init --from` writes
// (Conversion.Write). Its first line tells Parse that ftune wrote the file
// (every unmarked key is a default printed, as in `ftune init`'s file),
// while a key whose line ends in the mark holds a value the user set in
// the other trainer's config and counts as chosen (RunConfig.Chose): a
// converted `warmup_steps: 10` is the user's 10, not the default that
// short runs scale down.
const convertedHeader = `ftune run file converted from another trainer's config (ftune init --from).
A key whose line ends in "# from FILE:LINE KEY" holds the value converted
from that line of the other trainer's config, and counts as set by you;
so does one ending in "# TRAINER's default of KEY": the other trainer's
default for a key its config leaves out, where it is not ftune's. Every
other key shows ftune's default. Train with: ftune train -c this.yaml
Override any key on the command line: --set training.optimizer.lr=1e-4
Paths expand a leading ~/ (your home) and $VARS, ${VARS}; $$ is a literal $.`

// convertedMarkRE matches the end of a converted key's line:
// "# from axolotl.yaml:12 learning_rate", or, for a key the file left to
// its trainer's default, "# Axolotl's default of num_epochs".
var convertedMarkRE = regexp.MustCompile(`\s# (from .+:[0-9]+ [^\s]+|(Axolotl|LLaMA-Factory|transformers)'s default of [^\s]+)\s*$`)

// Conversion is another trainer's config converted to a run config
// (Convert).
type Conversion struct {
	// Config is the converted run config; it passed Validate.
	Config *RunConfig
	// Source is the converted file's name; Trainer is whose config it is
	// (Axolotl, LLaMA-Factory, or transformers for TrainingArguments and
	// TRL's configs), told by its keys.
	Source, Trainer string
	// Notes are, in the file's order, its keys that were not converted
	// (each with the reason) and converted keys with something to say
	// (a value the run reads otherwise, a model to download).
	Notes []Note
	// marks maps an ftune key path to the comment ending its line: the
	// line and key of the source it came from.
	marks map[string]string
}

// Note is what a conversion says about one key of the source.
type Note struct {
	Where, Key, Msg string
	// Dropped: the key was not converted; the run does without it.
	Dropped bool
	line    int // of the key, to list notes in the file's order
}

func (n Note) String() string {
	if n.Dropped {
		return commentText(fmt.Sprintf("%s: %s: not converted: %s", n.Where, n.Key, n.Msg))
	}
	return commentText(fmt.Sprintf("%s: %s: %s", n.Where, n.Key, n.Msg))
}

// commentText escapes, as Go writes them in a string (\x01, \n, \u2028),
// the characters of s that are not printable, and bytes that are not
// UTF-8: a note or a mark quotes the source's values, keys and name,
// and YAML refuses a control character even in a comment (the written
// file would not load), a newline would end the comment, and a terminal
// would act on an escape sequence of a note printed to stderr.
func commentText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t' || unicode.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// Convert reads another trainer's flat config (Axolotl's, LLaMA-Factory's,
// or transformers' TrainingArguments as YAML or JSON) as a run config:
// each key with an ftune equivalent is set from its value read as that
// trainer means it (the key names come from the synonyms that the
// unknown-key errors propose); every other key becomes a Note with the
// reason. A value that cannot be converted is an error naming the key
// and its line. name is the file's name, for messages, and relative
// paths in the file (models, data) are taken, as the other trainers take
// them, from the working directory.
func Convert(data []byte, name string) (*Conversion, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, ErrorList{{Where: name, Kind: ErrBadValue, Msg: "empty: nothing to convert"}}
		}
		return nil, syntaxError(name, data, err)
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, ErrorList{{Where: fmt.Sprintf("%s:%d", name, root.Line), Kind: ErrBadValue, Msg: "want a config of key: value lines (Axolotl's, LLaMA-Factory's or transformers'), got " + describe(root)}}
	}
	c := &converter{name: name, cfg: Default(), top: map[string]entry{}, marks: map[string]string{}}
	c.cfg.file = name
	d := &decoder{cfg: c.cfg, where: c.whereNode}
	entries := d.entries(root, "")
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	for _, e := range entries {
		if k := e.k.Value; k == "model" || k == "data" || k == "training" {
			return nil, ErrorList{{Where: c.whereNode(e.k), Kind: ErrBadValue, Msg: fmt.Sprintf("`%s` is a section of an ftune run file: this is one already (train with it: ftune train -c %s)", k, name)}}
		}
		c.top[e.k.Value] = e
	}
	c.trainer = "transformers"
	switch {
	case c.has("base_model") || c.has("datasets") || c.has("micro_batch_size") || c.has("sequence_len") || c.has("num_epochs"):
		c.trainer = "Axolotl"
	case c.has("stage") || c.has("finetuning_type") || c.has("cutoff_len") || c.has("dataset") || c.has("lora_target"):
		c.trainer = "LLaMA-Factory"
	}
	// The datasets first: their type may decide the template, which
	// chat_template would otherwise set.
	slices.SortStableFunc(entries, func(a, b entry) int {
		return cmpBool(b.k.Value == "datasets" || b.k.Value == "dataset", a.k.Value == "datasets" || a.k.Value == "dataset")
	})
	for _, e := range entries {
		if !c.done[e.k.Value] {
			c.key(e.k.Value, resolve(e.v))
		}
	}
	slices.SortStableFunc(c.notes, func(a, b Note) int { return a.line - b.line })
	c.theirDefaults()
	c.unset()
	if err := c.errs.err(); err != nil {
		return nil, err
	}
	if err := c.cfg.Validate(); err != nil {
		return nil, err
	}
	return &Conversion{Config: c.cfg, Source: name, Trainer: c.trainer, Notes: c.notes, marks: c.marks}, nil
}

// Write writes the run file: `ftune init`'s, every key with its comment,
// holding the converted values, each converted key's line marked with
// the line and key it came from (convertedMarkRE), under
// convertedHeader and the list of what was not converted.
func (cv *Conversion) Write(w io.Writer) error {
	root := toNode(reflect.ValueOf(*cv.Config), true, false)
	for path, mark := range cv.marks {
		if n := nodeAt(root, path); n != nil {
			n.LineComment = mark
		}
	}
	head := convertedHeader + fmt.Sprintf("\n\nConverted from %s (%s's config).", commentText(cv.Source), cv.Trainer)
	var dropped, said []string
	for _, n := range cv.Notes {
		if n.Dropped {
			dropped = append(dropped, n.String())
		} else {
			said = append(said, n.String())
		}
	}
	if len(dropped) > 0 {
		head += "\nNot converted (the run does without them):\n  " + strings.Join(firstNotes(dropped), "\n  ")
	}
	if len(said) > 0 {
		head += "\nConverted, with a word:\n  " + strings.Join(firstNotes(said), "\n  ")
	}
	root.HeadComment = head
	// The file must load as a run file (Load reads at most MaxFileBytes):
	// a data path of characters written escaped can grow past it.
	var buf bytes.Buffer
	if err := encode(&buf, root); err != nil {
		return err
	}
	if buf.Len() > MaxFileBytes {
		return fmt.Errorf("config: the run file converted from %s would be %d bytes, and ftune reads at most %d of a run file: %s holds more than a trainer's config does", commentText(cv.Source), buf.Len(), MaxFileBytes, commentText(cv.Source))
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// maxListedNotes is how many notes of each kind the written file's head
// lists: a source of thousands of keys would write a file past
// MaxFileBytes, which train -c refuses. Conversion.Notes holds every one
// (ftune init --from prints them on stderr).
const maxListedNotes = 50

// firstNotes is the first maxListedNotes of notes, and how many more.
func firstNotes(notes []string) []string {
	if len(notes) <= maxListedNotes {
		return notes
	}
	return append(slices.Clone(notes[:maxListedNotes]), fmt.Sprintf("... and %d more (ftune init --from prints every one on stderr)", len(notes)-maxListedNotes))
}

// nodeAt is the value node at a dotted key path of a tree toNode built.
func nodeAt(n *yaml.Node, path string) *yaml.Node {
	for _, part := range strings.Split(path, ".") {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

type converter struct {
	name, trainer string
	cfg           *RunConfig
	top           map[string]entry
	// done holds keys another key's conversion read (dataset_dir with
	// dataset), so they are not converted again.
	done  map[string]bool
	errs  ErrorList
	notes []Note
	marks map[string]string
	// unmarked is the one of a default's paths that its apply left as
	// it was (theirDefaults).
	unmarked string
}

func (c *converter) whereNode(n *yaml.Node) string { return fmt.Sprintf("%s:%d", c.name, n.Line) }

func (c *converter) has(key string) bool { _, ok := c.top[key]; return ok }

// value is the node of a key of the file (nil when absent).
func (c *converter) value(key string) *yaml.Node {
	e, ok := c.top[key]
	if !ok {
		return nil
	}
	return resolve(e.v)
}

func (c *converter) at(key string) string { return c.whereNode(c.top[key].k) }

func (c *converter) consume(keys ...string) {
	if c.done == nil {
		c.done = map[string]bool{}
	}
	for _, k := range keys {
		c.done[k] = true
	}
}

func (c *converter) fail(key, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Where: c.at(key), Path: key, Msg: fmt.Sprintf(format, args...), Kind: ErrBadValue})
}

func (c *converter) note(key string, dropped bool, format string, args ...any) {
	c.notes = append(c.notes, Note{Where: c.at(key), Key: key, Msg: fmt.Sprintf(format, args...), Dropped: dropped, line: c.top[key].k.Line})
}

// mark records that path holds key's value.
func (c *converter) mark(key, path string) {
	c.marks[path] = commentText(fmt.Sprintf("from %s:%d %s", filepath.Base(c.name), c.top[key].k.Line, key))
	c.cfg.setSource(path, c.at(key), false)
}

// set decodes key's value node into path as a run file's value is read;
// an error names the key, its line and the ftune key.
func (c *converter) set(key, path string, n *yaml.Node) bool {
	if err := setNode(c.cfg, path, n, c.at(key)); err != nil {
		for _, fe := range err.(ErrorList) {
			fe.Path = fmt.Sprintf("%s (ftune's %s)", key, path)
			c.errs = append(c.errs, fe)
		}
		return false
	}
	c.mark(key, path)
	return true
}

// setTo sets path to a value the conversion computed from key's.
func (c *converter) setTo(key, path string, v any) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		panic(err) // the values given are strings, numbers, bools and lists of them
	}
	c.set(key, path, &n)
}

// scalar is a key's value as text; false (with an error) when the key
// holds a list or a section.
func (c *converter) scalar(key string, n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		c.fail(key, "want a single value, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (c *converter) number(key string, n *yaml.Node) (float64, bool) {
	s, ok := c.scalar(key, n)
	if !ok {
		return 0, false
	}
	f, err := parseFloat(s)
	if err != nil || !finite(f) {
		c.fail(key, "want a number, got %q", s)
		return 0, false
	}
	return f, true
}

func (c *converter) boolean(key string, n *yaml.Node) (bool, bool) {
	s, ok := c.scalar(key, n)
	if !ok {
		return false, false
	}
	b, err := strconv.ParseBool(s)
	if err != nil || (n.Tag != "!!bool" && n.Tag != "!!str") {
		c.fail(key, "want true or false, got %q", s)
		return false, false
	}
	return b, true
}

// null says a key is set to nothing (key: or null): the other trainers
// read that as unset.
func null(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// key converts one key of the source.
func (c *converter) key(k string, n *yaml.Node) {
	if null(n) {
		c.note(k, true, "set to nothing (null): %s reads that as unset", c.trainer)
		return
	}
	switch k {
	case "base_model", "model_name_or_path":
		c.model(k, n)
	case "datasets", "dataset":
		c.datasets(k, n)
	case "dataset_dir":
		c.note(k, true, "read with dataset, which this file does not set")
	case "adapter", "finetuning_type":
		if s, ok := c.scalar(k, n); ok {
			switch {
			case s == "lora":
				c.note(k, false, "lora: ftune trains a LoRA adapter (training.lora)")
			case s == "qlora" && k == "adapter":
				c.setTo(k, "model.load_in_4bit", true)
			default:
				c.fail(k, "%q is not offered: %s", s, explained[k])
			}
		}
	case "load_in_4bit":
		c.set(k, "model.load_in_4bit", n)
	case "load_in_8bit":
		if b, ok := c.boolean(k, n); ok && b {
			c.fail(k, "true is not offered: %s", explained[k])
		} else if ok {
			c.note(k, true, "false: nothing to set")
		}
	case "quantization_bit":
		if f, ok := c.number(k, n); ok && f == 4 {
			c.setTo(k, "model.load_in_4bit", true)
		} else if ok {
			c.fail(k, "%v is not offered: %s", f, explained[k])
		}
	case "stage", "rl":
		c.objective(k, n)
	case "pref_loss":
		c.prefLoss(k, n)
	case "num_epochs", "num_train_epochs", "epochs":
		c.epochs(k, n)
	case "max_steps":
		// transformers' -1 (the default) means epochs decide.
		if f, ok := c.number(k, n); ok && f > 0 {
			c.set(k, "training.max_steps", n)
		} else if ok {
			c.note(k, true, "%v: the number of epochs decides", f)
		}
	case "batch_size":
		c.batchSize(k, n)
	case "lr_scheduler", "lr_scheduler_type":
		c.schedule(k, n)
	case "lr_scheduler_kwargs":
		c.scheduleKwargs(k, n)
	case "cosine_min_lr_ratio", "min_lr_ratio", "min_lr_rate":
		c.set(k, "training.schedule.min_lr_rate", n)
		if k == "cosine_min_lr_ratio" && !c.has("lr_scheduler") {
			// Axolotl's default schedule is cosine, with this floor
			// transformers' cosine_with_min_lr (see schedule).
			c.setTo(k, "training.schedule.name", "cosine_with_min_lr")
		}
	case "warmup_steps":
		c.warmupSteps(k, n)
	case "warmup_ratio":
		c.warmupRatio(k, n)
	case "optimizer", "optim":
		c.optimizer(k, n)
	case "adam_beta1", "adam_beta2":
		c.betas(k)
	case "seed":
		// transformers' seed seeds the model's initialisation and the
		// data's shuffling alike; data_seed, when set, the data's.
		c.set(k, "training.seed", n)
		if !c.has("data_seed") {
			c.set(k, "data.seed", n)
		}
	case "data_seed":
		c.set(k, "data.seed", n)
	case "val_set_size", "val_size", "validation_split":
		if f, ok := c.number(k, n); ok && (f < 0 || f >= 1) {
			c.fail(k, "%v: ftune holds out a fraction of the data, in [0, 1) (data.val_split); a count of examples cannot be converted", f)
		} else if ok && c.set(k, "data.val_split", n) && f == 0 {
			// No validation data: nothing ranks checkpoints (ftune's
			// default ranks them by val/loss).
			c.setTo(k, "training.checkpointing.monitor", "")
			c.setTo(k, "training.checkpointing.top_k", 0)
		}
	case "lora_target_modules", "lora_target", "target_modules":
		c.targets(k, n)
	case "lora_target_linear":
		if b, ok := c.boolean(k, n); ok && b {
			c.setTo(k, "training.lora.targets", "all-linear")
		} else if ok {
			c.note(k, true, "false: the modules are those of lora_target_modules")
		}
	case "chat_template", "template":
		c.template(k, n)
	case "metric_for_best_model":
		c.metric(k, n)
	case "early_stopping_patience":
		if c.set(k, "training.early_stopping.patience", n) {
			c.setTo(k, "training.early_stopping.enabled", true)
		}
	case "bf16":
		c.precision(k, n)
	case "fp16":
		if b, ok := c.boolean(k, n); ok && b {
			c.note(k, true, "%s", explained[k])
		} else if ok {
			c.note(k, true, "false: nothing to set")
		}
	case "completion_only_loss", "train_on_inputs":
		if b, ok := c.boolean(k, n); ok {
			c.setTo(k, "data.train_on_inputs", b == (k == "train_on_inputs"))
		}
	case "num_decay_steps":
		c.fail(k, "counts steps, and ftune's training.schedule.decay_ratio is a fraction of the run's steps: set decay_ratio instead")
	case "tiled_mlp":
		c.note(k, true, "ftune's training.mlp_chunk_tokens takes the tokens per chunk (e.g. 4096), not a switch: set it to use it")
	case "lora_modules_to_save":
		c.set(k, "training.lora.modules_to_save", n)
	default:
		c.other(k, n)
	}
}

// other converts a key whose ftune key is its synonym or its own name
// (weight_decay, output_dir), its value read as it stands; any other is
// a Note with the explanation the unknown-key error gives, or none.
func (c *converter) other(k string, n *yaml.Node) {
	path, ok := synonyms[k]
	if !ok {
		path = leafPath(k)
	}
	if path != "" && isLeaf(path) {
		c.set(k, path, n)
		return
	}
	if text, ok := explained[k]; ok {
		c.note(k, true, "%s", text)
		return
	}
	c.note(k, true, "ftune has no such setting")
}

// leafPath is the one ftune key named k ("" when none or several are:
// seed is data.seed and training.seed).
func leafPath(k string) string {
	found := ""
	for _, p := range allPaths {
		if lastElem(p) == k {
			if found != "" {
				return ""
			}
			found = p
		}
	}
	return found
}

// isLeaf says path names a value, not a section.
func isLeaf(path string) bool {
	v, ok := valueAt(reflect.ValueOf(Default()).Elem(), path)
	return ok && (v.Kind() != reflect.Struct || v.Type() == durationType)
}
