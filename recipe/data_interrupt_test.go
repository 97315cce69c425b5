package recipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadDataReadingStops: loading a data file stops at its first
// records once the context is done (the first Ctrl-C), for supervised
// and preference data alike: the files were read whole first (a 27 MB
// file took 5.8 s after the Ctrl-C), their reader given a context that
// was never cancelled.
func TestLoadDataReadingStops(t *testing.T) {
	tp, err := LoadText(tinyBase, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var sft, pref strings.Builder
	for i := range 200 {
		fmt.Fprintf(&sft, `{"prompt":"What is %d plus %d?","completion":"%d"}`+"\n", i, i, 2*i)
		fmt.Fprintf(&pref, `{"prompt":"What is %d plus %d?","chosen":"%d","rejected":"%d"}`+"\n", i, i, 2*i, 2*i+1)
	}
	for name, c := range map[string]struct {
		text      string
		objective string
	}{"sft.jsonl": {sft.String(), ""}, "pref.jsonl": {pref.String(), "dpo"}} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		o := dataOptions()
		o.DataRoot, o.DataFiles = "", []string{path}
		if c.objective != "" {
			o.Objective = c.objective
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := loadData(ctx, o, tp, 0)
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), path+": reading interrupted") {
			t.Errorf("%s: %v, want the reading interrupted", name, err)
		}
	}
}
