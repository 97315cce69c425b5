package ftune

import (
	"os/exec"
	"strings"
	"testing"
)

// Libraries that a program which only loads a model and generates must not
// link: the training report's plotting and PDF writers, and the parquet
// reader of the data pipeline. They belong to training and reporting, and
// make every embedding program larger and slower to build.
var heavyForGeneration = []string{
	"gonum.org/v1/plot",
	"codeberg.org/go-pdf/fpdf",
	"github.com/go-pdf/fpdf",
	"github.com/jung-kurt/gofpdf",
	"github.com/parquet-go/parquet-go",
}

// TestGenerateOnlyDeps lists what testdata/generateonly (load tiny-base,
// chat once) links, and fails on any of heavyForGeneration.
func TestGenerateOnlyDeps(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./testdata/generateonly").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./testdata/generateonly: %v\n%s", err, out)
	}
	heavy := func(pkg string) bool {
		for _, h := range heavyForGeneration {
			if pkg == h || strings.HasPrefix(pkg, h+"/") {
				return true
			}
		}
		return false
	}
	var linked, via []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if heavy(f[0]) {
			linked = append(linked, f[0])
		}
		if !strings.HasPrefix(f[0], "github.com/ftune/ftune") {
			continue
		}
		for _, imp := range f[1:] {
			if heavy(imp) {
				via = append(via, f[0]+" imports "+imp)
			}
		}
	}
	if len(linked) > 0 {
		t.Errorf("a generate-only program links %d packages of %v it does not use; %s",
			len(linked), heavyForGeneration, strings.Join(via, "; "))
	}
}
