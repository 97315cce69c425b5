package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
)

// GPUShapes are the shapes of issue 10's GPU benchmark table, named as its
// bench/results/gpu-lora-<gpu>-<date>.jsonl rows name them; Batch and Seq
// are each run's defaults (scripts/gpu-bench.sh passes them explicitly).
// llama-3.1-8b-maxctx is the Llama-3-8B shape at batch 1 with the longest
// sequence that trains under a device-memory cap.
var GPUShapes = map[string]Shape{
	"smollm2-135m":        {Name: "smollm2-135m", Vocab: 49152, Hidden: 576, Layers: 30, Heads: 9, KVHeads: 3, FFN: 1536, Batch: 8, Seq: 2048},
	"llama-3.2-1b":        {Name: "llama-3.2-1b", Vocab: 128256, Hidden: 2048, Layers: 16, Heads: 32, KVHeads: 8, FFN: 8192, Batch: 4, Seq: 2048},
	"llama-3-8b":          {Name: "llama-3-8b", Vocab: 128256, Hidden: 4096, Layers: 32, Heads: 32, KVHeads: 8, FFN: 14336, Batch: 2, Seq: 2048},
	"llama-3.1-8b-maxctx": {Name: "llama-3.1-8b-maxctx", Vocab: 128256, Hidden: 4096, Layers: 32, Heads: 32, KVHeads: 8, FFN: 14336, Batch: 1, Seq: 81920},
}

// anchorNames maps bench/peft_lora_bench.py's shape names to GPUShapes'.
var anchorNames = map[string]string{
	"smollm2-135m": "smollm2-135m",
	"llama3.2-1b":  "llama-3.2-1b",
	"llama3-8b":    "llama-3-8b",
}

// GPURow is one line of bench/results/gpu-lora-<gpu>-<date>.jsonl.
type GPURow struct {
	Shape      string  `json:"shape"`
	Side       string  `json:"side"` // "ftune" or "peft"
	Batch      int     `json:"batch"`
	Seq        int     `json:"seq"`
	SeqLen     int     `json:"seq_len,omitempty"` // the long-context run's trained sequence
	Ckpt       bool    `json:"ckpt"`
	Variant    string  `json:"variant,omitempty"` // ftune: "bf16", "f32", "nf4", with "+release" etc.
	TokensPerS float64 `json:"tokens_per_s"`
	PeakGiB    float64 `json:"peak_gib"`
	StepS      float64 `json:"step_s,omitempty"`
	Loss       float64 `json:"loss,omitempty"`
	// GEMMProvider is ftune's -gemm-provider setting (auto, ftune,
	// cublaslt; empty on the CPU) and Optimizer the path the trainer's
	// optimizer step took (train.Trainer.OptimizerPath).
	GEMMProvider string `json:"gemm_provider,omitempty"`
	Optimizer    string `json:"optimizer,omitempty"`
	// Per timed step, ftune on a GPU: kernels queued, and the driver calls
	// after which the host waited for the GPU (cuda.HostWaits), by name.
	LaunchesPerStep  float64            `json:"launches_per_step,omitempty"`
	HostWaitsPerStep map[string]float64 `json:"host_waits_per_step,omitempty"`
	// GEMMKernelsPerStep: launches per timed step of each GEMM kernel
	// (matmul_*): which kernels the step's products ran on (the fused
	// LoRA ones, _lr_; the sm_90a ones, _wgmma_; cuBLASLt's are not ours
	// and not counted).
	GEMMKernelsPerStep map[string]float64 `json:"gemm_kernels_per_step,omitempty"`
	// ForcedGCsPerStep: collections the backend forced for device memory
	// left to Go's collector, per timed step (each holds up the host).
	ForcedGCsPerStep float64 `json:"forced_gcs_per_step,omitempty"`
	// DriverAllocsPerStep: cuMemAlloc calls per timed step, the requests
	// the caching allocator could not serve from its cache (0 once a run
	// has reached its steady state).
	DriverAllocsPerStep float64 `json:"driver_allocs_per_step,omitempty"`
	// HostWaitSPerStep: seconds per timed step the host spent blocked
	// until the GPU finished (the end-of-step readbacks). Near StepS: the
	// host had the step queued early and the GPU is the bottleneck; near
	// zero: the GPU waited for the host (launch overhead; CUDA graphs
	// would pay).
	HostWaitSPerStep float64 `json:"host_wait_s_per_step,omitempty"`
}

// AnchorRows reads the gpubench.json that bench/peft_lora_bench.py writes
// and returns one "peft" row per successful run, and the keys of the runs
// the anchor reports as "failed" (out of memory, say), which the caller
// must print: a table never silently lacks its anchor.
func AnchorRows(path string) (rows []GPURow, failed []string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var doc struct {
		Runs map[string]json.RawMessage `json:"peft_lora_bf16_sdpa"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Runs == nil {
		return nil, nil, fmt.Errorf("%s: no peft_lora_bf16_sdpa object", path)
	}
	keys := make([]string, 0, len(doc.Runs))
	for k := range doc.Runs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if string(doc.Runs[key]) == `"failed"` {
			failed = append(failed, key)
			continue
		}
		var r struct {
			StepS      float64 `json:"step_s"`
			TokensPerS float64 `json:"tokens_per_s"`
			PeakGiB    float64 `json:"peak_mem_gib"`
		}
		if err := json.Unmarshal(doc.Runs[key], &r); err != nil {
			return nil, nil, fmt.Errorf("%s: anchor run %s: %s (want an object with tokens_per_s)", path, key, strings.TrimSpace(string(doc.Runs[key])))
		}
		var name string
		var b, t, ck int
		i := strings.Index(key, "_b")
		if i < 0 {
			return nil, nil, fmt.Errorf("%s: anchor run key %q is not name_bB_tT_ckptC", path, key)
		}
		if _, err := fmt.Sscanf(key[i:], "_b%d_t%d_ckpt%d", &b, &t, &ck); err != nil {
			return nil, nil, fmt.Errorf("%s: anchor run key %q is not name_bB_tT_ckptC: %v", path, key, err)
		}
		name = anchorNames[key[:i]]
		if name == "" {
			return nil, nil, fmt.Errorf("%s: anchor run %s: unknown shape %q", path, key, key[:i])
		}
		rows = append(rows, GPURow{Shape: name, Side: "peft", Batch: b, Seq: t, Ckpt: ck == 1, Variant: "bf16",
			TokensPerS: round1(r.TokensPerS), PeakGiB: round3(r.PeakGiB), StepS: round4(r.StepS)})
	}
	return rows, failed, nil
}

// ReadRows reads JSON lines of GPURow (ftune's side, one per gpubench run);
// blank lines are skipped, anything else that is not a row is an error with
// its line number.
func ReadRows(r io.Reader, name string) ([]GPURow, error) {
	var rows []GPURow
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var row GPURow
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&row); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		if row.Shape == "" || (row.Side != "ftune" && row.Side != "peft") || row.TokensPerS <= 0 {
			return nil, fmt.Errorf("%s:%d: want shape, side ftune|peft and tokens_per_s > 0, got %s", name, n, line)
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// WriteRows writes rows as JSON lines.
func WriteRows(w io.Writer, rows []GPURow) error {
	enc := json.NewEncoder(w)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// WriteRatioTable prints the benchmark table: every ftune row beside the
// anchor row of the same shape, batch and sequence (un-checkpointed anchor
// preferred, as issue 10's goals are stated against it), with the
// tokens/s and peak-memory ratios.
func WriteRatioTable(w io.Writer, rows []GPURow) error {
	anchor := map[string]GPURow{}
	for _, r := range rows {
		if r.Side != "peft" {
			continue
		}
		k := fmt.Sprintf("%s/%d/%d", r.Shape, r.Batch, r.Seq)
		if a, ok := anchor[k]; !ok || (a.Ckpt && !r.Ckpt) {
			anchor[k] = r
		}
	}
	fmt.Fprintln(w, "| shape | B × T | side | variant | tokens/s | peak GiB | tokens/s ratio | memory ratio |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |")
	for _, r := range rows {
		ratio, mem := "", ""
		if a, ok := anchor[fmt.Sprintf("%s/%d/%d", r.Shape, r.Batch, r.Seq)]; ok && r.Side == "ftune" {
			ratio = fmt.Sprintf("%.2f×", r.TokensPerS/a.TokensPerS)
			if a.PeakGiB > 0 {
				mem = fmt.Sprintf("%.2f×", r.PeakGiB/a.PeakGiB)
			}
		}
		v := r.Variant
		if r.Ckpt {
			v += " ckpt"
		}
		if _, err := fmt.Fprintf(w, "| %s | %d × %d | %s | %s | %.0f | %.2f | %s | %s |\n", r.Shape, r.Batch, r.Seq, r.Side, v, r.TokensPerS, r.PeakGiB, ratio, mem); err != nil {
			return err
		}
	}
	return writeHostTable(w, rows)
}

// writeHostTable prints, for the ftune rows that carry them, the host's
// side of a step: kernels queued, the driver calls the host waited in and
// the time it spent there against the step's, and forced collections.
func writeHostTable(w io.Writer, rows []GPURow) error {
	header := false
	for _, r := range rows {
		if r.Side != "ftune" || r.LaunchesPerStep == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\n| shape | B × T | variant | launches/step | host waits/step | s blocked/step | step s | forced GCs/step | cuMemAlloc/step |")
			fmt.Fprintln(w, "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |")
			header = true
		}
		names := slices.Sorted(maps.Keys(r.HostWaitsPerStep))
		waits := make([]string, len(names))
		for i, n := range names {
			waits[i] = fmt.Sprintf("%g %s", r.HostWaitsPerStep[n], n)
		}
		v := r.Variant
		if r.Ckpt {
			v += " ckpt"
		}
		if _, err := fmt.Fprintf(w, "| %s | %d × %d | %s | %.0f | %s | %.4f | %.4f | %g | %g |\n", r.Shape, r.Batch, r.Seq, v, r.LaunchesPerStep, strings.Join(waits, ", "), r.HostWaitSPerStep, r.StepS, r.ForcedGCsPerStep, r.DriverAllocsPerStep); err != nil {
			return err
		}
	}
	return nil
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
func round3(x float64) float64 { return math.Round(x*1e3) / 1e3 }
