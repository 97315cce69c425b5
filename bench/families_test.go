package bench

import (
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/ftune/ftune/kernels/asm"
	"github.com/ftune/ftune/nn"
)

// TestFamilyFoldersReadBackAsTheirFamily: each family's random folder is
// read by nn.LoadConfig as that family with the features the speed
// comparison is about, loads, and trains (loss about ln vocab, as for
// near-zero random weights), so a config key the loader ignored or a
// misnamed tensor cannot make a "family" run time plain Llama.
func TestFamilyFoldersReadBackAsTheirFamily(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0)) // RunLoRA sets both
	defer asm.SetThreads(asm.Threads())
	s := Shape{Name: "toy", Vocab: 64, Hidden: 32, Layers: 6, Heads: 4, KVHeads: 2, FFN: 48, Batch: 1, Seq: 8}
	cache := t.TempDir()
	checks := map[string]func(c nn.Config) bool{
		"llama": func(c nn.Config) bool {
			return c.ModelType == "llama" && !c.QKNorm && !c.SandwichNorms && !c.FusedProjections && c.SlidingWindow == 0 && c.AttnSoftcap == 0
		},
		"qwen3": func(c nn.Config) bool { return c.ModelType == "qwen3" && c.QKNorm && !c.SandwichNorms },
		"gemma2": func(c nn.Config) bool {
			return c.ModelType == "gemma2" && !c.QKNorm && c.SandwichNorms && c.NormPlusOne && c.EmbedScale > 0 &&
				c.AttnSoftcap == 50 && c.FinalSoftcap == 30 && c.SlidingWindow == 5 &&
				pattern(c.SlidingLayers) == "LGLGLG" && strings.Contains(c.HiddenAct, "gelu")
		},
		"gemma3": func(c nn.Config) bool {
			return c.ModelType == "gemma3_text" && c.QKNorm && c.SandwichNorms && c.AttnSoftcap == 0 && c.FinalSoftcap == 0 &&
				pattern(c.SlidingLayers) == "LLLLLG" && c.LocalRope != nil && c.LocalRope.Theta == 10000 &&
				c.Rope.Type == "linear" && c.Rope.Factor == 8 && strings.Contains(c.HiddenAct, "gelu")
		},
		"phi3": func(c nn.Config) bool {
			return c.ModelType == "phi3" && c.FusedProjections && c.Rope.Type == "longrope" && !c.TieEmbeddings &&
				(c.PartialRotary == 0 || c.PartialRotary == 1)
		},
		"phi4mini": func(c nn.Config) bool {
			return c.ModelType == "phi3" && c.FusedProjections && c.Rope.Type == "longrope" && c.TieEmbeddings && c.PartialRotary == 0.75
		},
	}
	if len(checks) != len(Families) {
		t.Fatalf("checks for %d families, Families has %d", len(checks), len(Families))
	}
	for _, fam := range Families {
		t.Run(fam, func(t *testing.T) {
			dir, err := RandomFamilyModelDir(cache, s, fam, 5)
			if err != nil {
				t.Fatal(err)
			}
			c, err := nn.LoadConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !checks[fam](c) {
				t.Fatalf("config read back as %+v", c)
			}
			r, err := RunLoRA(LoRARun{Shape: s, ModelDir: dir, Family: fam, Threads: 1, Warmup: 0, Steps: 1})
			if err != nil {
				t.Fatal(err)
			}
			if want := math.Log(64); math.Abs(r.Loss-want) > 0.1 || r.Family != fam {
				t.Fatalf("result %+v, want family %s and loss about ln 64 = %.3f", r, fam, want)
			}
		})
	}
	if _, err := RandomFamilyModelDir(cache, s, "mistral", 5); err == nil || !strings.Contains(err.Error(), "phi4mini") {
		t.Fatalf("unknown family: err %v, want one naming the known ones", err)
	}
	llama, _ := RandomModelDir(cache, s)
	if _, err := RunLoRA(LoRARun{Shape: s, ModelDir: llama, Family: "qwen3", Threads: 1, Steps: 1}); err == nil {
		t.Fatal("a llama folder was timed as qwen3")
	}
}

// pattern spells the sliding (L) and global (G) layers.
func pattern(sliding []bool) string {
	var b strings.Builder
	for _, l := range sliding {
		if l {
			b.WriteByte('L')
		} else {
			b.WriteByte('G')
		}
	}
	return b.String()
}
