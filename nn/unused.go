package nn

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// layerIndex matches the decoder layer a tensor name belongs to.
var layerIndex = regexp.MustCompile(`^model\.layers\.(\d+)\.`)

// ignoredUnused reports tensors that checkpoints carry and transformers
// drops on purpose: RoPE's inv_freq buffer (older Llama checkpoints) and a
// saved lm_head when the embeddings are tied.
func ignoredUnused(cfg Config, name string) bool {
	return strings.HasSuffix(name, ".rotary_emb.inv_freq") || cfg.TieEmbeddings && name == "lm_head.weight"
}

// checkUnused refuses weights that config.json does not account for. A
// model whose num_hidden_layers is smaller than the layers in the weights
// would load truncated and train or generate as another model; any other
// tensor the architecture has no place for (a bias the config does not
// declare, another family's module) would be dropped silently. Both are
// errors that name the tensors, so the user fixes the config or the files.
func checkUnused(cfg Config, src tensorSource, shapes map[string][]int, where string) error {
	var beyond, unknown []string
	top := -1
	for _, name := range src.Names() {
		if _, ok := shapes[name]; ok || ignoredUnused(cfg, name) {
			continue
		}
		if m := layerIndex.FindStringSubmatch(name); m != nil {
			if i, err := strconv.Atoi(m[1]); err == nil && i >= cfg.NumLayers {
				beyond = append(beyond, name)
				top = max(top, i)
				continue
			}
		}
		unknown = append(unknown, name)
	}
	if len(beyond) > 0 {
		return fmt.Errorf("nn: %s: tensor %q (%s) is beyond config.json's num_hidden_layers %d: the weights hold layers up to %d (%d tensors past the config); fix num_hidden_layers or the files (a truncated model is not loaded)",
			where, beyond[0], src.FileOf(beyond[0]), cfg.NumLayers, top, len(beyond))
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("nn: %s: %d tensor(s) that a %s model with this config.json has no place for: %s (from %s); the config does not describe these weights",
			where, len(unknown), cfg.ModelType, someNames(unknown), src.FileOf(unknown[0]))
	}
	return nil
}

// checkLayerCount refuses a num_hidden_layers beyond the last layer the
// weights hold, before the expected tensors are listed: that list grows
// with the claim, and its first missing name (in sorted order, layers.10
// before layers.2) would not say what is wrong.
func checkLayerCount(cfg Config, src tensorSource, where string) error {
	top := -1
	for _, name := range src.Names() {
		if m := layerIndex.FindStringSubmatch(name); m != nil {
			if i, err := strconv.Atoi(m[1]); err == nil {
				top = max(top, i)
			}
		}
	}
	if cfg.NumLayers <= top+1 {
		return nil
	}
	held := "no decoder layer"
	if top >= 0 {
		held = fmt.Sprintf("layers 0 to %d", top)
	}
	return fmt.Errorf("nn: %s: config.json's num_hidden_layers is %d, but the weights (%s) hold %s; fix num_hidden_layers or the files",
		where, cfg.NumLayers, someNames(src.Shards()), held)
}

func someNames(xs []string) string {
	const show = 5
	q := make([]string, 0, show)
	for _, x := range xs[:min(show, len(xs))] {
		q = append(q, strconv.Quote(x))
	}
	if len(xs) > show {
		return fmt.Sprintf("%s and %d more", strings.Join(q, ", "), len(xs)-show)
	}
	return strings.Join(q, ", ")
}
