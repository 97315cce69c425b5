// Command gen-quiz writes the bundled quiz subject datasets.
//
//	go run ./internal/cmd/gen-quiz [-src assets/data/quiz] [-out assets/data/subjects] [-seed N]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/ftune/ftune/data/subject/quizgen"
	"github.com/ftune/ftune/internal/fsutil"
)

func main() {
	src := flag.String("src", "assets/data/quiz", "folder of BSD quiz data files")
	out := flag.String("out", "assets/data/subjects", "folder to write subject folders into")
	seed := flag.Uint64("seed", quizgen.DefaultSeed, "seed for phrasings and splits")
	flag.Parse()
	if err := run(*src, *out, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "gen-quiz:", err)
		os.Exit(1)
	}
}

func run(src, out string, seed uint64) error {
	files, err := quizgen.Generate(os.DirFS(src), seed)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(out, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := fsutil.WriteFileAtomic(p, files[name], 0o644); err != nil {
			return err
		}
		fmt.Printf("%s (%d bytes)\n", p, len(files[name]))
	}
	return nil
}
