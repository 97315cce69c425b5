package tokenizer

import (
	"runtime"
	"strings"
	"testing"
)

// allocated is the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestTokenizerFilesValueBound: a tokenizer.json or tokenizer_config.json
// of more JSON values than any real one holds is refused before it is
// decoded, naming the file and the bound, without allocating what
// decoding would (a 64 MiB list of empty merges took 2.4 GB).
func TestTokenizerFilesValueBound(t *testing.T) {
	merges := []byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[` + strings.Repeat("[],", MaxFileValues) + `[]]}}`)
	var err error
	if n := allocated(func() { _, err = FromJSON(merges, nil) }); n > 16<<20 {
		t.Errorf("refusing %d MB of empty merges allocated %d MiB", len(merges)>>20, n>>20)
	}
	if err == nil || !strings.Contains(err.Error(), "tokenizer.json holds more than 16000000 JSON values") {
		t.Errorf("tokenizer.json of %d values: %v", MaxFileValues+1, err)
	}

	templates := []byte(`{"chat_template":[` + strings.Repeat("{},", MaxConfigFileValues) + `{}]}`)
	if n := allocated(func() { _, err = ParseConfig(templates) }); n > 16<<20 {
		t.Errorf("refusing %d MB of empty templates allocated %d MiB", len(templates)>>20, n>>20)
	}
	if err == nil || !strings.Contains(err.Error(), "tokenizer_config.json holds more than 4000000 JSON values") {
		t.Errorf("tokenizer_config.json of %d values: %v", MaxConfigFileValues+1, err)
	}
}
