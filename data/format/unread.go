package format

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Fields that a record holds and its mapping does not read vanish from
// the training data. Two checks keep that from happening without a word:
// unreadPrompt, for preference and feedback records, whose prompt other
// tools keep in fields of their own; and unreadText, for any record whose
// shape was detected, for a field of text that no part of the shape reads
// (a question's context).

// promptFields are the fields preference layouts hold a prompt in: TRL's
// prompt, LLaMA-Factory's alpaca instruction and input (its ranking data's
// prompt and query), Axolotl's chatml.intel question.
var promptFields = []string{"prompt", "instruction", "input", "query", "question"}

// unreadPrompt refuses a preference or feedback record with a prompt in a
// field m does not read: the record would be learnt with another prompt,
// or, where it has no prompt field m reads, with the completions' shared
// beginning as its prompt (TRL's implicit prompt).
func (m Mapping) unreadPrompt(f map[string]any) error {
	read := m.columns()
	for _, name := range promptFields {
		if slices.Contains(read, name) || !hasValue(f[name]) {
			continue
		}
		from := "read from " + quoteList(m.promptColumns())
		switch {
		case m.Messages != "" && m.Shape == ShapePreference:
			from = fmt.Sprintf("the conversation in %q", m.Messages)
		case m.Messages != "":
			from = fmt.Sprintf("the messages of %q before the last", m.Messages)
		case m.Instruction == "" && !hasValue(f[m.Prompt]) && m.Shape == ShapePreference:
			from = fmt.Sprintf("the beginning %q and %q share, as it has no %q", m.Chosen, m.Rejected, m.Prompt)
		}
		return fmt.Errorf("%w: field %q holds a prompt that would be dropped: the %v record's prompt is %s; give the prompt in one field (detection reads it from prompt, else instruction and input, else question; a shape set by hand reads its own columns only)", ErrBadValue, name, m.Shape, from)
	}
	return nil
}

// unreadText are the fields of record f that hold text m reads nowhere,
// sorted. Not text: a value other than a string (lists, objects, numbers,
// booleans: tags, scores, flags), an empty or blank string (Dolly's
// context is often ""), a number or boolean written as a string (a CSV
// cell is always one). Not lost: a metadata field (isMetadata), and a
// string that repeats what is read, being part of one read text or
// holding them all (ultrachat_200k's prompt is its first message;
// tatsu-lab/alpaca's text is the record rendered with its template).
//
// The repeat check scans what is read once per candidate field: past
// maxRepeatChecks candidates the record is no shape's (it was quadratic:
// a 4 MB text beside 200,000 short fields ran for minutes), so they are
// all unread without it. Each check is linear too (repeats): the read
// texts are deduplicated, and a field is searched for them in one pass.
func (m Mapping) unreadText(f map[string]any) []string {
	read := m.columns()
	var candidates []string
	for name, v := range f {
		s, ok := v.(string)
		if ok && !slices.Contains(read, name) && !isMetadata(name) && isText(s) {
			candidates = append(candidates, name)
		}
	}
	sort.Strings(candidates)
	if len(candidates) == 0 || len(candidates) > maxRepeatChecks {
		return candidates
	}
	var texts []string // what m reads
	for _, c := range read {
		if c != m.Tools {
			texts = appendTexts(texts, f[c], m.Content)
		}
	}
	texts = dedup(texts) // a conversation's "ok"s are checked once
	budget := repeatScanBudget
	return slices.DeleteFunc(candidates, func(name string) bool { return repeats(f[name].(string), texts, &budget) })
}

// maxRepeatChecks bounds unreadText's repeat checks: a record of a shape
// has a few fields beside those it reads (ultrachat's prompt, alpaca's
// text), not dozens.
const maxRepeatChecks = 16

// isText says whether a string field's value is text that training would
// miss: not blank, and not a number or a boolean written out.
func isText(s string) bool {
	t := strings.TrimSpace(s)
	if t == "" {
		return false
	}
	if _, err := strconv.ParseFloat(t, 64); err == nil {
		return false
	}
	_, err := strconv.ParseBool(t)
	return err != nil
}

// appendTexts appends the strings v holds: v itself, a list's items, and
// the content of each message (content) or pair (a history) in it, and
// the text of a content part (contentParts).
func appendTexts(texts []string, v any, content string) []string {
	switch x := v.(type) {
	case string:
		if t := strings.TrimSpace(x); t != "" {
			texts = append(texts, t)
		}
	case []any:
		for _, item := range x {
			texts = appendTexts(texts, item, content)
		}
	case map[string]any:
		texts = appendTexts(texts, x[content], content)
		for _, k := range ReasoningKeys {
			texts = appendTexts(texts, x[k], content)
		}
		if _, part := x["type"].(string); part {
			texts = appendTexts(texts, x["text"], content)
		}
	}
	return texts
}

// dedup is texts without the repeats of a text, in the order of their
// first appearance.
func dedup(texts []string) []string {
	seen := make(map[string]bool, len(texts))
	return slices.DeleteFunc(texts, func(t string) bool {
		if seen[t] {
			return true
		}
		seen[t] = true
		return false
	})
}

// repeatScanBudget bounds, in bytes, the searches of a record's repeat
// checks for a read text out of its order (repeats): every other search
// goes forward, so a check is linear in the record's size without it.
const repeatScanBudget = 64 << 20

// repeats says whether s repeats what texts hold: it is part of one of
// them, or holds every one.
//
// Holding every one was a search of s for each text, and a record has up
// to 16,384 messages beside a field of up to 64 MiB: a 16 MB field with
// its match at its end beside 16,000 messages took 12 to 18 s. A field
// that holds them is a rendering of the record (tatsu-lab/alpaca's text, a
// conversation written with its template), with the texts in their
// order, so s is searched for each text from where the one before it was
// found (the earliest such place, so none is missed): one pass. A text
// not found after it is searched for in the whole of s (a system prompt
// read after the messages and written before them), at most len(s) +
// len(text) bytes, taken from budget; with budget spent, s is not a
// repeat, so the record is refused as holding unread text, with the way
// out (a shape set by hand). That is the conservative way: a field taken
// for a repeat is dropped without a word, and it may be text the user
// meant to train on; a refusal of a rendering written out of order, past
// 64 MiB of searching, costs a data.shape.
func repeats(s string, texts []string, budget *int) bool {
	t := strings.TrimSpace(s)
	for _, r := range texts {
		if len(r) >= len(t) && strings.Contains(r, t) {
			return true
		}
	}
	if len(texts) == 0 {
		return false
	}
	at := 0 // where the text before was found
	for _, r := range texts {
		if len(r) > len(t) {
			return false
		}
		if i := strings.Index(t[at:], r); i >= 0 {
			at += i
			continue
		}
		if *budget < len(t)+len(r) {
			return false
		}
		*budget -= len(t) + len(r)
		if !strings.Contains(t[:min(len(t), at+len(r)-1)], r) {
			return false
		}
	}
	return true
}

// metadataNames are field names that describe a record rather than hold
// what it teaches: ids, where it came from (web corpora's url, dump and
// file path), what kind it is, its language, links, its licence, the
// model that wrote it, dates, scores. Compared in lower case with '-' and
// ' ' as '_'.
var metadataNames = map[string]bool{
	"id": true, "idx": true, "uid": true, "uuid": true, "guid": true, "key": true, "index": true, "hash": true,
	"source": true, "sources": true, "origin": true, "dataset": true, "subset": true, "split": true, "config": true,
	"path": true, "file": true, "filename": true, "repo": true, "commit": true, "sha": true, "dump": true, "crawl": true, "snapshot": true,
	"format": true, "encoding": true, "status": true,
	"category": true, "categories": true, "task": true, "type": true, "kind": true, "topic": true, "topics": true,
	"domain": true, "subject": true, "tag": true, "tags": true, "difficulty": true, "level": true, "grade": true,
	"lang": true, "language": true, "languages": true, "locale": true,
	"url": true, "urls": true, "link": true, "links": true, "href": true, "license": true, "licence": true,
	"model": true, "models": true, "generator": true, "author": true, "annotator": true, "title": true, "name": true,
	"date": true, "time": true, "timestamp": true, "created": true, "updated": true, "added": true, "version": true,
	"score": true, "scores": true, "rating": true, "ratings": true, "quality": true, "views": true, "votes": true,
}

// metadataSuffixes end metadata names made of words (prompt_id,
// chosen_model, source_url, created_at).
var metadataSuffixes = []string{"_id", "_ids", "_idx", "_hash", "_key", "_source", "_origin", "_dataset", "_path", "_file", "_type", "_category",
	"_task", "_topic", "_domain", "_tag", "_tags", "_lang", "_language", "_locale", "_url", "_link", "_license",
	"_model", "_name", "_author", "_date", "_time", "_at", "_timestamp", "_version", "_score", "_rating", "_quality"}

// isMetadata says whether a field's name says it describes the record
// (metadataNames, metadataSuffixes, a camel-case id or URL such as
// conversationId or avatarUrl), or is an index a dataframe wrote
// (pandas' "Unnamed: 0" in CSV, "__index_level_0__" in parquet).
func isMetadata(name string) bool {
	if strings.HasSuffix(name, "Id") || strings.HasSuffix(name, "ID") || strings.HasSuffix(name, "Url") || strings.HasSuffix(name, "URL") {
		return true
	}
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.NewReplacer("-", "_", " ", "_").Replace(n)
	if n == "" || strings.HasPrefix(n, "__") || strings.HasPrefix(n, "unnamed") || strings.HasPrefix(n, "meta") {
		return true
	}
	if metadataNames[n] {
		return true
	}
	for _, s := range metadataSuffixes {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// quoteList writes names as "a", "b" and "c".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}
