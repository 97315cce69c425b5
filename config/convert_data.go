package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ftune/ftune/internal/fsutil"
)

// dataset is one data file of the source and how its records read, in
// ftune's terms (data.shape, data.columns, data.template).
type dataset struct {
	path, shape, template string
	columns               map[string]string
}

// datasets converts Axolotl's datasets (a list of {path, type, ...}) and
// LLaMA-Factory's dataset (names in its dataset_dir's dataset_info.json)
// into data.files, data.shape and data.columns. ftune reads every file of
// a run with one shape and one mapping, so datasets that differ in either
// are refused. A path that is no file or folder here is a Hugging Face Hub
// dataset, which ftune does not download: it stays in data.files, which
// training refuses until it is downloaded there, and a note says how.
func (c *converter) datasets(k string, n *yaml.Node) {
	var sets []dataset
	ok := false
	if k == "datasets" {
		sets, ok = c.axolotlDatasets(k, n)
	} else {
		sets, ok = c.factoryDatasets(k, n)
	}
	if !ok || len(sets) == 0 {
		return
	}
	first := sets[0]
	var files []string
	for _, s := range sets {
		if s.shape != first.shape || !maps.Equal(s.columns, first.columns) || s.template != first.template {
			c.fail(k, "%s is read as %s, and %s as %s: ftune reads every data file of a run in one layout (data.shape, data.columns); convert them to one, or train on them in separate runs",
				first.path, describeSet(first), s.path, describeSet(s))
			return
		}
		if !c.pathText(k, s.path) {
			return
		}
		files = append(files, s.path)
		if _, err := os.Stat(s.path); err != nil && !IsHubID(s.path) {
			c.note(k, false, "%s is not a file or folder here: data.files names it until it is (from the folder you train in)", s.path)
		} else if err != nil {
			c.note(k, false, "%s is not a file or folder here, and ftune does not download datasets: data.files names it until you do (hf download --repo-type dataset %s --local-dir %s)", s.path, s.path, s.path)
		}
	}
	// Paths are kept as written: the other trainers read them literally.
	c.cfg.Data.Files = files
	c.mark(k, "data.files")
	c.setTo(k, "data.shape", first.shape)
	if len(first.columns) > 0 {
		c.cfg.Data.Columns = first.columns
		c.mark(k, "data.columns")
	}
	if first.template != "" {
		if c.has("chat_template") {
			c.consume("chat_template")
			c.note("chat_template", true, "Axolotl's %s datasets are written in the %s prompt whatever chat_template says (it sets the tokenizer's template, for inference)", first.shape, first.template)
		}
		c.setTo(k, "data.template", first.template)
	}
}

func describeSet(s dataset) string {
	out := "shape " + s.shape
	if len(s.columns) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(s.columns)) {
			kv = append(kv, k+": "+s.columns[k])
		}
		out += " with columns {" + strings.Join(kv, ", ") + "}"
	}
	return out
}

// axolotlDatasets reads Axolotl's datasets: each entry's path and type
// (alpaca, sharegpt, chat_template, completion) and the fields that name
// its columns.
func (c *converter) axolotlDatasets(k string, n *yaml.Node) ([]dataset, bool) {
	if n.Kind != yaml.SequenceNode {
		c.fail(k, "want a list of datasets ({path: ..., type: ...}), got %s", describe(n))
		return nil, false
	}
	var out []dataset
	for i, e := range n.Content {
		e = resolve(e)
		fields := map[string]*yaml.Node{}
		at := fmt.Sprintf("entry %d (line %d)", i+1, e.Line)
		if e.Kind == yaml.MappingNode {
			lines := map[string]int{}
			for j := 0; j+1 < len(e.Content); j += 2 {
				key := e.Content[j]
				if first, dup := lines[key.Value]; dup {
					// Refused as at the top: which one Axolotl reads is
					// not for the file to leave unsaid.
					c.fail(k, "%s: %s set twice (lines %d and %d)", at, key.Value, first, key.Line)
					return nil, false
				}
				lines[key.Value] = key.Line
				fields[key.Value] = resolve(e.Content[j+1])
			}
		}
		str := func(name string) string {
			if v := fields[name]; v != nil && v.Kind == yaml.ScalarNode && !null(v) {
				return v.Value
			}
			return ""
		}
		path := str("path")
		if path == "" {
			c.fail(k, "%s: want a path (a data file, a folder, or a Hub dataset)", at)
			return nil, false
		}
		d := dataset{path: path}
		typ := fields["type"]
		switch {
		case typ == nil || null(typ):
			c.fail(k, "%s: no type: give the records' layout (alpaca, sharegpt, chat_template or completion)", at)
			return nil, false
		case typ.Kind != yaml.ScalarNode:
			c.fail(k, "%s: a type written as fields (a custom prompt format) cannot be converted: ftune's alpaca shape reads instruction, input and output (data.columns names them) in a chat template or the alpaca prompt", at)
			return nil, false
		}
		columns := map[string]string{}
		rename := func(col, field, def string) {
			if v := str(field); v != "" && v != def {
				columns[col] = v
			}
		}
		switch typ.Value {
		case "alpaca":
			// Axolotl writes alpaca records in the Stanford Alpaca prompt,
			// which is ftune's alpaca template.
			d.shape, d.template = "alpaca", "alpaca"
			rename("instruction", "field_instruction", "instruction")
			rename("input", "field_input", "input")
			rename("output", "field_output", "output")
			rename("system", "field_system", "system")
		case "sharegpt":
			d.shape = "sharegpt"
		case "chat_template":
			d.shape = "chat"
			rename("messages", "field_messages", "messages")
			rename("role", "message_field_role", "role")
			rename("content", "message_field_content", "content")
			if m := fields["message_property_mappings"]; m != nil && m.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(m.Content); j += 2 {
					col, v := m.Content[j].Value, resolve(m.Content[j+1]).Value
					if (col == "role" || col == "content") && v != col {
						columns[col] = v
					}
				}
			}
		case "completion":
			d.shape = "completion"
			rename("text", "field", "text")
		default:
			c.fail(k, "%s: type %q cannot be converted: ftune's shapes are alpaca, sharegpt, chat (Axolotl's chat_template) and completion", at, typ.Value)
			return nil, false
		}
		if len(columns) > 0 {
			d.columns = columns
		}
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			switch name {
			case "path", "type", "ds_type", "field_instruction", "field_input", "field_output", "field_system", "field_messages",
				"message_field_role", "message_field_content", "message_property_mappings", "field":
			case "split":
				if str(name) != "train" {
					c.fail(k, "%s: split %q cannot be converted: ftune trains on the files as they are, and holds out data.val_split of them", at, str(name))
					return nil, false
				}
			default:
				c.note(k, true, "%s: %s of a dataset has no ftune setting", at, name)
			}
		}
		out = append(out, d)
	}
	return out, true
}

// factoryInfo is an entry of LLaMA-Factory's dataset_info.json.
type factoryInfo struct {
	FileName   string            `json:"file_name"`
	HubURL     string            `json:"hf_hub_url"`
	Formatting string            `json:"formatting"`
	Ranking    bool              `json:"ranking"`
	Columns    map[string]string `json:"columns"`
	Tags       map[string]string `json:"tags"`
	Split      string            `json:"split"`
	Subset     string            `json:"subset"`
	NumSamples *int              `json:"num_samples"`
}

// factoryDatasets reads LLaMA-Factory's dataset: names (a,b or a list)
// of entries in dataset_dir/dataset_info.json (dataset_dir "data" by
// default), each a file_name under dataset_dir or a hf_hub_url, in
// formatting alpaca (its columns prompt, query, response, system, tools)
// or sharegpt (messages, and tags saying which fields and values hold the
// roles).
func (c *converter) factoryDatasets(k string, n *yaml.Node) ([]dataset, bool) {
	var names []string
	switch n.Kind {
	case yaml.ScalarNode:
		names = splitTrim(n.Value)
	case yaml.SequenceNode:
		for _, e := range n.Content {
			names = append(names, resolve(e).Value)
		}
	default:
		c.fail(k, "want dataset names (a,b), got %s", describe(n))
		return nil, false
	}
	dir := "data"
	if v := c.value("dataset_dir"); v != nil && !null(v) {
		dir = v.Value
		c.consume("dataset_dir")
	}
	infoPath := filepath.Join(dir, "dataset_info.json")
	raw, err := fsutil.ReadFileLimit(infoPath, MaxFileBytes)
	if err != nil {
		c.fail(k, "LLaMA-Factory names its datasets in %s, which cannot be read: %v (run from the folder LLaMA-Factory runs in, or set dataset_dir)", infoPath, err)
		return nil, false
	}
	var info map[string]factoryInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		c.fail(k, "%s: %v", infoPath, err)
		return nil, false
	}
	var out []dataset
	for _, name := range names {
		e, ok := info[name]
		at := fmt.Sprintf("%s (%s)", name, infoPath)
		switch {
		case !ok:
			c.fail(k, "%s is not in %s", name, infoPath)
			return nil, false
		case e.Ranking:
			c.fail(k, "%s: preference data (ranking) is not converted: set data.files, data.shape preference and training.objective dpo yourself", at)
			return nil, false
		case e.Subset != "" || (e.Split != "" && e.Split != "train"):
			c.fail(k, "%s: a subset or a split other than train cannot be converted: download that part and name its files", at)
			return nil, false
		}
		d := dataset{path: e.HubURL}
		if e.FileName != "" {
			d.path = filepath.Join(dir, e.FileName)
		}
		if d.path == "" {
			c.fail(k, "%s: neither file_name nor hf_hub_url: only files and Hub datasets are converted", at)
			return nil, false
		}
		if e.NumSamples != nil {
			c.note(k, true, "%s: num_samples %d: ftune trains on every record", at, *e.NumSamples)
		}
		columns := map[string]string{}
		col := func(theirs, ours, def string) {
			if v, ok := e.Columns[theirs]; ok && v != "" && v != def {
				columns[ours] = v
			}
		}
		switch e.Formatting {
		case "", "alpaca":
			d.shape = "alpaca"
			col("prompt", "instruction", "instruction")
			col("query", "input", "input")
			col("response", "output", "output")
			col("system", "system", "system")
			col("tools", "tools", "tools")
			if h, ok := e.Columns["history"]; ok && h != "history" {
				c.fail(k, "%s: history in field %q: ftune reads an alpaca record's earlier turns from the field history only", at, h)
				return nil, false
			}
		case "sharegpt":
			tag := func(name, def string) string {
				if v, ok := e.Tags[name]; ok {
					return v
				}
				return def
			}
			user, assistant := tag("user_tag", "human"), tag("assistant_tag", "gpt")
			role, content := tag("role_tag", "from"), tag("content_tag", "value")
			switch {
			case user == "human" && assistant == "gpt":
				d.shape = "sharegpt"
				col("messages", "messages", "conversations")
				if role != "from" {
					columns["role"] = role
				}
				if content != "value" {
					columns["content"] = content
				}
			case user == "user" && assistant == "assistant":
				d.shape = "chat"
				msgs := "conversations" // LLaMA-Factory's default; chat's is messages
				if v := e.Columns["messages"]; v != "" {
					msgs = v
				}
				if msgs != "messages" {
					columns["messages"] = msgs
				}
				if role != "role" {
					columns["role"] = role
				}
				if content != "content" {
					columns["content"] = content
				}
			default:
				c.fail(k, "%s: roles tagged %q and %q cannot be converted: ftune reads ShareGPT's human and gpt, and chat's user and assistant", at, user, assistant)
				return nil, false
			}
			col("system", "system", "system")
			col("tools", "tools", "tools")
		default:
			c.fail(k, "%s: formatting %q cannot be converted (alpaca and sharegpt are)", at, e.Formatting)
			return nil, false
		}
		if len(columns) > 0 {
			d.columns = columns
		}
		out = append(out, d)
	}
	return out, true
}
