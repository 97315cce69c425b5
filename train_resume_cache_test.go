package ftune

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResumeUsesTheRunsTokenCache: a run started with a token cache and
// resumed without naming one reads the run's cache (said in the log; its
// files are not rewritten) instead of tokenizing the data again; a cache
// folder removed since is said to be gone.
func TestResumeUsesTheRunsTokenCache(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	out, cache := t.TempDir(), t.TempDir()
	if _, err := TrainWith(context.Background(), tinyTrainConfig(out, 2), TrainOptions{TokenCache: cache}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "*", "*.tokens"))
	if len(files) == 0 {
		t.Fatal("the first run wrote no token cache")
	}
	before, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if _, err := TrainWith(context.Background(), tinyTrainConfig(out, 3), TrainOptions{Log: &log, Resume: filepath.Join(out, "r")}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if want := "resuming with the run's token cache " + cache; !strings.Contains(log.String(), want) {
		t.Errorf("the resume's log does not say %q:\n%s", want, log.String())
	}
	if !strings.Contains(log.String(), "from the token cache") {
		t.Errorf("the resume tokenized its data again instead of reading the cache:\n%s", log.String())
	}
	if after, err := os.Stat(files[0]); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the cache file was rewritten (%v)", err)
	}

	if err := os.RemoveAll(cache); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	if _, err := TrainWith(context.Background(), tinyTrainConfig(out, 4), TrainOptions{Log: &log, Resume: filepath.Join(out, "r")}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if want := "the run's token cache " + cache + " is gone"; !strings.Contains(log.String(), want) {
		t.Errorf("the resume's log does not say %q:\n%s", want, log.String())
	}
}
