package nn

import (
	"encoding/json"
	"fmt"
)

// smollm3Keys are the config.json keys SmolLM3Config adds to Llama's.
type smollm3Keys struct {
	NoRopeLayers        json.RawMessage `json:"no_rope_layers"`
	NoRopeLayerInterval *int            `json:"no_rope_layer_interval"`
}

// parseSmolLM3 applies what SmolLM3Config and SmolLM3Attention do
// differently from Llama (transformers' models/smollm3): some layers are
// NoPE layers, whose queries and keys are not rotated at all
// (no_rope_layers[i] == 0; absent, every no_rope_layer_interval-th layer,
// default 4, which is the released SmolLM3-3B's pattern), and the sliding
// window, when use_sliding_window is on, goes to layers whose layer_types
// entry is sliding_attention (by default the NoPE layers).
//
// Transformers builds the sliding mask from layer_types alone, whatever
// use_sliding_window says, but hands the window to flash attention only
// with use_sliding_window: the two disagree when layer_types names a
// sliding layer and use_sliding_window is off, so that config is refused
// rather than run as one of them.
func (c *Config) parseSmolLM3(r rawConfig) error {
	interval := 4
	if v := r.NoRopeLayerInterval; v != nil {
		interval = *v
	}
	c.NoRopeLayers = make([]bool, max(c.NumLayers, 0))
	switch raw := r.NoRopeLayers; {
	case len(raw) == 0 || string(raw) == "null":
		if interval <= 0 {
			return fmt.Errorf("nn: config.json: no_rope_layer_interval must be > 0, got %d", interval)
		}
		for i := range c.NoRopeLayers {
			c.NoRopeLayers[i] = (i+1)%interval == 0
		}
	default:
		var flags []int
		if err := json.Unmarshal(raw, &flags); err != nil {
			return fmt.Errorf("nn: config.json: no_rope_layers: want a list of 0 and 1, got %.40s", raw)
		}
		// SmolLM3Config documents "at least the same length as the number
		// of layers": layer i reads entry i, and entries past the last
		// layer are never read.
		if len(flags) < c.NumLayers {
			return fmt.Errorf("nn: config.json: no_rope_layers has %d entries, num_hidden_layers is %d", len(flags), c.NumLayers)
		}
		for i := range c.NoRopeLayers {
			switch flags[i] {
			case 0:
				c.NoRopeLayers[i] = true
			case 1:
			default:
				return fmt.Errorf("nn: config.json: no_rope_layers[%d] is %d; want 1 (RoPE) or 0 (NoPE)", i, flags[i])
			}
		}
	}
	return nil
}

// parseSmolLM3Sliding sets the sliding layers as SmolLM3Config does:
// layer_types when config.json has it, else a sliding layer for each NoPE
// layer when use_sliding_window is on and sliding_window is set.
func (c *Config) parseSmolLM3Sliding(r rawConfig, window int, windowSet bool) error {
	use := r.UseSlidingWindow != nil && *r.UseSlidingWindow
	if r.LayerTypes == nil {
		if !use || !windowSet {
			return nil
		}
		if window <= 0 {
			return fmt.Errorf("nn: config.json: sliding_window must be > 0 or null, got %d", window)
		}
		copy(c.SlidingLayers, c.NoRopeLayers)
	} else {
		err := c.readLayerTypes(r.LayerTypes, func(i int) error {
			if !use || !windowSet || window <= 0 {
				return fmt.Errorf("%w: layer_types[%d] is sliding_attention but use_sliding_window is %v and sliding_window %s (transformers' eager and SDPA attention would slide there, its flash attention would not)",
					ErrUnsupported, i, use, orNull(r.SlidingWindow))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if contains(c.SlidingLayers, true) {
		c.SlidingWindow = window
	}
	return nil
}
