package archtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// layer is one group of DESIGN.md's stack. A package may import packages of
// its own group, and of lower-ranked groups; where only is non-nil it may
// import only those groups (besides its own), whatever their rank.
type layer struct {
	name string
	rank int
	only []string
}

// layers is DESIGN.md's "Layers" section, bottom first. kernels/* know
// nothing of tensors and data needs no tensor, so both are restricted to
// internal rather than ranked above anything.
var layers = []layer{
	{name: "internal", rank: 0, only: []string{}},
	{name: "kernels/asm", rank: 0, only: []string{"internal"}},
	// kernels/dropout is the dropout stream's definition in plain Go: the
	// CPU's masks, and the reference kernels/cuda's kernel is tested against.
	{name: "kernels/dropout", rank: 0, only: []string{"internal"}},
	{name: "kernels/cuda", rank: 0, only: []string{"internal", "kernels/dropout"}},
	// assets embeds the default model and datasets (not in DESIGN.md's
	// diagram): a leaf that holds files, so it sits at the bottom with
	// internal (it may use internal/fsutil) and anything may import it.
	{name: "assets", rank: 0, only: []string{"internal"}},
	{name: "tensor", rank: 1},
	{name: "autograd", rank: 2},
	{name: "data", rank: 3, only: []string{"internal"}},
	// quant holds base-weight quantization (NF4): formats over tensors,
	// below the models that load through it.
	{name: "quant", rank: 3},
	{name: "nn", rank: 4},
	{name: "lora", rank: 5},
	// export writes models out (merged Hugging Face folders, GGUF).
	{name: "export", rank: 6},
	// config (the run file schema), optim (optimizers and schedules) and
	// track (run folders) do not depend on the trainer or on each other;
	// they rank below it so that train and recipe may use them.
	{name: "config", rank: 6, only: []string{"internal"}},
	{name: "optim", rank: 6, only: []string{"internal"}},
	{name: "track", rank: 6, only: []string{"internal"}},
	// dist (data-parallel workers and their collectives over MPI/NCCL)
	// needs no tensor: it moves slices.
	{name: "dist", rank: 6, only: []string{"internal"}},
	{name: "train", rank: 7},
	// recipe is the application layer: a whole run from options.
	{name: "recipe", rank: 8},
	// "" is the root package ftune, the API that programs embed.
	{name: "", rank: 9},
	{name: "bench", rank: 9},
	{name: "cmd/ftune", rank: 10},
	// internal/cmd holds developers' tools (benchmarks, checkers,
	// generators); they may use anything below the CLI.
	{name: "internal/cmd", rank: 10},
	// parity holds only end-to-end tests against the Python golden outputs;
	// its doc.go puts it on top so its tests may use every package.
	{name: "parity", rank: 11},
}

// groupOf maps a module-relative package path to its layer group: the top
// folder, or the top two for kernels/ and cmd/, whose subfolders are
// separate groups. Subpackages belong to their folder's group
// (data/tokenizer is data, train/optim would be train).
func groupOf(rel string) string {
	parts := strings.Split(rel, "/")
	if (parts[0] == "kernels" || parts[0] == "cmd") && len(parts) > 1 || parts[0] == "internal" && len(parts) > 1 && parts[1] == "cmd" {
		return parts[0] + "/" + parts[1]
	}
	return parts[0]
}

func findLayer(group string) (layer, bool) {
	for _, l := range layers {
		if l.name == group {
			return l, true
		}
	}
	return layer{}, false
}

// mayImport reports whether a package of layer from may import one of to.
func mayImport(from, to layer) bool {
	if from.name == to.name {
		return true
	}
	if from.only != nil {
		return slices.Contains(from.only, to.name)
	}
	return to.rank < from.rank
}

// allowedList describes what a layer may import, for error messages.
func allowedList(from layer) string {
	var names []string
	for _, l := range layers {
		if l.name != from.name && mayImport(from, l) {
			names = append(names, l.name)
		}
	}
	if len(names) == 0 {
		return "only itself, the standard library and third-party modules"
	}
	return "itself, " + strings.Join(names, ", ") + ", the standard library and third-party modules"
}

// pkgImports is a package and its non-test imports, as go list reports them.
type pkgImports struct {
	ImportPath string
	Imports    []string
	Error      *struct{ Err string }
}

// violation is one import (or package) that breaks the layering.
type violation struct {
	pkg, imp string // imp is empty for a package that is in no layer
	msg      string
}

// checkLayers returns the violations among pkgs of module, sorted.
func checkLayers(module string, pkgs []pkgImports) []violation {
	rel := func(path string) (string, bool) {
		if path == module {
			return "", true
		}
		r, ok := strings.CutPrefix(path, module+"/")
		return r, ok
	}
	var out []violation
	for _, p := range pkgs {
		r, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		from, ok := findLayer(groupOf(r))
		if !ok {
			out = append(out, violation{pkg: p.ImportPath, msg: fmt.Sprintf(
				"package %s is in folder %q, which is in no layer of DESIGN.md; add its group to layers in internal/archtest/layers_test.go",
				p.ImportPath, groupOf(r))})
			continue
		}
		for _, imp := range p.Imports {
			ri, ok := rel(imp)
			if !ok {
				continue // standard library or third party
			}
			to, ok := findLayer(groupOf(ri))
			if !ok {
				continue // reported as a package of its own
			}
			if !mayImport(from, to) {
				out = append(out, violation{pkg: p.ImportPath, imp: imp, msg: fmt.Sprintf(
					"%s (layer %s) imports %s (layer %s): %s may import %s",
					p.ImportPath, from.name, imp, to.name, from.name, allowedList(from))})
			}
		}
	}
	slices.SortFunc(out, func(a, b violation) int { return strings.Compare(a.pkg+" "+a.imp, b.pkg+" "+b.imp) })
	return slices.CompactFunc(out, func(a, b violation) bool { return a.pkg == b.pkg && a.imp == b.imp })
}

// platforms are the build configurations listed: go list applies build
// constraints, so an import in a file for another GOOS/GOARCH or behind the
// purego tag is only seen when that configuration is listed.
var platforms = []struct{ goos, goarch, tags string }{
	{"linux", "amd64", ""},
	{"linux", "amd64", "purego"},
	{"linux", "arm64", ""},
	{"darwin", "arm64", ""},
	{"windows", "amd64", ""},
}

// goList runs go list in the module root and decodes its JSON stream.
func goList(t *testing.T, root string, env []string, args ...string) []pkgImports {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []pkgImports
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkgImports
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestImportLayers(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed to list the module's packages: %v", err)
	}
	modOut, err := exec.Command("go", "list", "-m", "-f", "{{.Path}} {{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	module, root, _ := strings.Cut(strings.TrimSpace(string(modOut)), " ")
	self := module + "/internal/archtest"

	for _, pl := range platforms {
		env := []string{"GOOS=" + pl.goos, "GOARCH=" + pl.goarch, "CGO_ENABLED=0"}
		args := []string{"list", "-e", "-json=ImportPath,Imports,Error"}
		if pl.tags != "" {
			args = append(args, "-tags", pl.tags)
		}
		pkgs := goList(t, root, env, append(args, "./...")...)
		found := false
		for _, p := range pkgs {
			found = found || p.ImportPath == self
			if p.Error != nil {
				// Packages being written may not compile yet; their
				// imports are still listed, and compiling is other tests' job.
				t.Logf("%s/%s: %s: %s", pl.goos, pl.goarch, p.ImportPath, p.Error.Err)
			}
		}
		if !found {
			t.Fatalf("go list did not report %s among %d packages: the listing is broken", self, len(pkgs))
		}
		for _, v := range checkLayers(module, pkgs) {
			t.Errorf("%s/%s %s: %s", pl.goos, pl.goarch, pl.tags, v.msg)
		}
	}
}

// The checker itself, on a synthetic module: every rule of DESIGN.md once
// broken and once kept, so a checker that accepts everything fails here.
func TestCheckLayersSynthetic(t *testing.T) {
	const m = "example.com/ft"
	pkgs := []pkgImports{
		{ImportPath: m + "/internal/safetensors", Imports: []string{"fmt", "golang.org/x/sys/unix", m + "/internal/fsutil", m + "/tensor"}},
		{ImportPath: m + "/kernels/asm", Imports: []string{m + "/internal/cpu", m + "/tensor", "github.com/klauspost/cpuid/v2"}},
		{ImportPath: m + "/kernels/cuda", Imports: []string{m + "/kernels/asm", m + "/internal/cpu"}},
		{ImportPath: m + "/tensor", Imports: []string{m + "/kernels/asm", m + "/kernels/cuda", m + "/internal/x", m + "/nn"}},
		{ImportPath: m + "/autograd", Imports: []string{m + "/tensor", m + "/data"}},
		{ImportPath: m + "/data/tokenizer", Imports: []string{m + "/internal/x", m + "/tensor", "github.com/dlclark/regexp2"}},
		{ImportPath: m + "/data/chat", Imports: []string{m + "/data/tokenizer", m + "/autograd"}},
		{ImportPath: m + "/nn/llama", Imports: []string{m + "/nn", m + "/autograd", m + "/tensor", m + "/data", m + "/internal/safetensors", m + "/kernels/asm", m + "/lora"}},
		{ImportPath: m + "/lora", Imports: []string{m + "/nn", m + "/train"}},
		{ImportPath: m + "/train/optim", Imports: []string{m + "/lora", m + "/train", m + "/bench"}},
		{ImportPath: m + "/bench", Imports: []string{m + "/train/optim", m + "/cmd/ftune"}},
		{ImportPath: m + "/cmd/ftune", Imports: []string{m + "/bench", m + "/train", m + "/data/chat", m + "/internal/fsutil"}},
		{ImportPath: m + "/tools/gen", Imports: []string{m + "/tensor"}},
		{ImportPath: m, Imports: []string{m + "/recipe", m + "/cmd/ftune"}},
		{ImportPath: "other.org/mod/tensor", Imports: []string{m + "/cmd/ftune"}}, // not ours
	}
	want := [][2]string{
		{m, m + "/cmd/ftune"},
		{m + "/autograd", m + "/data"},
		{m + "/bench", m + "/cmd/ftune"},
		{m + "/data/chat", m + "/autograd"},
		{m + "/data/tokenizer", m + "/tensor"},
		{m + "/internal/safetensors", m + "/tensor"},
		{m + "/kernels/asm", m + "/tensor"},
		{m + "/kernels/cuda", m + "/kernels/asm"},
		{m + "/lora", m + "/train"},
		{m + "/nn/llama", m + "/lora"},
		{m + "/tensor", m + "/nn"},
		{m + "/tools/gen", ""},
		{m + "/train/optim", m + "/bench"},
	}
	got := checkLayers(m, pkgs)
	var gotPairs [][2]string
	for _, v := range got {
		gotPairs = append(gotPairs, [2]string{v.pkg, v.imp})
		if !strings.Contains(v.msg, v.pkg) || !strings.Contains(v.msg, v.imp) {
			t.Errorf("message %q does not name %s and %s", v.msg, v.pkg, v.imp)
		}
	}
	if !slices.Equal(gotPairs, want) {
		t.Fatalf("violations:\n got %v\nwant %v", gotPairs, want)
	}
	if msg := got[slices.IndexFunc(got, func(v violation) bool { return v.pkg == m+"/data/tokenizer" })].msg; !strings.Contains(msg, "data may import itself, internal,") {
		t.Errorf("message %q does not say what data may import", msg)
	}
}

func TestGroupOf(t *testing.T) {
	for rel, want := range map[string]string{
		"data/tokenizer":        "data",
		"train/optim":           "train",
		"internal/cmd/gpulora":  "internal/cmd",
		"":                      "",
		"kernels/cuda/ptx":      "kernels/cuda",
		"kernels/asm":           "kernels/asm",
		"cmd/ftune/internal/ui": "cmd/ftune",
		"internal/safetensors":  "internal",
		"nn":                    "nn",
	} {
		if got := groupOf(rel); got != want {
			t.Errorf("groupOf(%q) = %q, want %q", rel, got, want)
		}
	}
}
