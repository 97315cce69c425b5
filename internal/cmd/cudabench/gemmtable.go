package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/ftune/ftune/kernels/cuda"
)

// gemmShape is one product of a LoRA training step: C[M,N] = op(A)·op(B)
// with ftune's row-major transposes (nt: y = x·Wᵀ, the forward; nn:
// dx = dy·W, the backward through a frozen weight; tn: a LoRA factor's
// gradient).
type gemmShape struct {
	model, op string
	tr        string
	M, N, K   int
}

// stepGEMMs lists the products of one step of issue 10's benchmark shapes
// (tokens = batch × sequence; LoRA rank 16 on all seven projections): per
// distinct weight shape the forward (nt) and the input gradient (nn), the
// LM head both ways, and the LoRA products of the widest projection.
func stepGEMMs() []gemmShape {
	type model struct {
		name                         string
		tokens, hidden, q, kv, inter int
		vocab                        int
	}
	models := []model{
		{"smollm2-135m", 8 * 2048, 576, 576, 192, 1536, 49152},
		{"llama-3.2-1b", 4 * 2048, 2048, 2048, 512, 8192, 128256},
		{"llama-3-8b", 2 * 2048, 4096, 4096, 1024, 14336, 128256},
	}
	const r = 16
	var out []gemmShape
	for _, m := range models {
		T, h := m.tokens, m.hidden
		for _, w := range []struct {
			op      string
			in, out int
		}{{"q/o_proj", h, m.q}, {"k/v_proj", h, m.kv}, {"gate/up_proj", h, m.inter}, {"down_proj", m.inter, h}, {"lm_head", h, m.vocab}} {
			out = append(out, gemmShape{m.name, w.op + " fwd", "nt", T, w.out, w.in}, gemmShape{m.name, w.op + " dx", "nn", T, w.in, w.out})
		}
		out = append(out,
			gemmShape{m.name, "lora A fwd (x·Aᵀ)", "nt", T, r, h},
			gemmShape{m.name, "lora B fwd (h·Bᵀ)", "nt", T, m.inter, r},
			gemmShape{m.name, "lora dA (dhᵀ·x)", "tn", r, h, T},
			gemmShape{m.name, "lora dB (dyᵀ·h)", "tn", m.inter, r, T},
		)
	}
	return out
}

// gemmTable times ftune's bf16 GEMM and cuBLASLt on the same operands at
// every step shape (random bf16 inputs, float32 C, beta 0, medians of
// *reps event-timed runs after two warm-ups) and prints the TFLOP/s of
// each and their ratio. Without cuBLASLt it prints ftune's column and the
// reason. Then the wgmma tables of loads (wgmmaTable). ltFile, when set,
// receives cuBLASLt's time per shape; skipMain runs the wgmma tables
// alone, their ratios against the times read from ltFile.
func gemmTable(out string, loads []string, ltFile string, skipMain bool) {
	if skipMain {
		ltMs := map[int]float64{}
		if ltFile != "" {
			b, err := os.ReadFile(ltFile)
			must(err)
			must(json.Unmarshal(b, &ltMs))
		}
		for _, l := range loads {
			wgmmaTable(out, ltMs, l)
		}
		return
	}
	// On the legacy stream, where the training step queues its products:
	// only there does ftune's GEMM split K (kernels/cuda's splitK), as it
	// does for the LoRA weight gradients below.
	defer func(old cuda.Stream) { s = old }(s)
	s = cuda.Stream{}
	lt, ltErr := d.OpenBLASLt()
	var sb strings.Builder
	if ltErr != nil {
		fmt.Fprintf(&sb, "Device: %s. cuBLASLt unavailable: %v\n\n", d, ltErr)
	} else {
		defer lt.Close()
		fmt.Fprintf(&sb, "Device: %s; %s. bf16 inputs, float32 C, beta 0; median of %d runs, CUDA events.\n\n", d, lt, *reps)
	}
	fmt.Fprintln(&sb, "| model | product | op | M×N×K | ftune ms | ftune TFLOP/s | cuBLASLt ms | cuBLASLt TFLOP/s | ftune / cuBLASLt |")
	fmt.Fprintln(&sb, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
	var sumOurs, sumLt float64
	ltMs := map[int]float64{} // cuBLASLt's time per shape, for the wgmma table
	for i, g := range stepGEMMs() {
		ta, tb := g.tr[0] == 't', g.tr[1] == 't'
		lda, ldb := g.K, g.N
		if ta {
			lda = g.M
		}
		if tb {
			ldb = g.K
		}
		A, B := buf(2*g.M*g.K, cuda.BF16), buf(2*g.K*g.N, cuda.BF16)
		C := buf(4*g.M*g.N, cuda.F32)
		flops := 2 * float64(g.M) * float64(g.N) * float64(g.K)
		ours := timeIt(func() error { return d.MatmulBF16(s, ta, tb, g.M, g.N, g.K, A, lda, B, ldb, C, g.N, 1, 0) })
		row := fmt.Sprintf("| %s | %s | %s | %dx%dx%d | %.3f | %.1f |", g.model, g.op, g.tr, g.M, g.N, g.K, ours, flops/(ours*1e9))
		if ltErr == nil {
			theirs := timeIt(func() error {
				return lt.Matmul(s, cuda.BF16, cuda.F32, ta, tb, g.M, g.N, g.K, A, lda, B, ldb, C, g.N, 1, 0)
			})
			row += fmt.Sprintf(" %.3f | %.1f | %.0f%% |", theirs, flops/(theirs*1e9), 100*theirs/ours)
			sumOurs += ours
			sumLt += theirs
			ltMs[i] = theirs
		} else {
			row += " – | – | – |"
		}
		emit(&sb, row, A, B, C)
	}
	if sumLt > 0 {
		fmt.Fprintf(&sb, "\nAll shapes once each: ftune %.2f ms, cuBLASLt %.2f ms: ftune at %.0f%% of cuBLASLt's speed (issue 10's goal: ≥ 70%%).\n", sumOurs, sumLt, 100*sumLt/sumOurs)
	}
	fmt.Print(sb.String())
	if out != "" {
		must(os.WriteFile(out, []byte(sb.String()), 0o644))
	}
	if ltFile != "" {
		b, err := json.Marshal(ltMs)
		must(err)
		must(os.WriteFile(ltFile, b, 0o644))
	}
	for _, l := range loads {
		wgmmaTable(out, ltMs, l)
	}
}

// wgmmaTable times the sm_90a wgmma kernels (gemm_sm90.cu) with the given
// loads (cp.async, tma, tma-ws: TMA in a producer warpgroup) on the nt and
// nn shapes they take, beside cuBLASLt's times from the table above, and
// appends its table to out. Each runs after the tables before it are
// written: a fault of these kernels (not yet run on a GPU when they were
// written) ends the process without losing them.
func wgmmaTable(out string, ltMs map[int]float64, loads string) {
	var sb strings.Builder
	fmt.Fprintln(&sb)
	if _, ok := map[string]bool{"cp.async": true, "tma": true, "tma-ws": true}[loads]; !ok {
		fmt.Fprintf(os.Stderr, "cudabench: -wgmma-loads: unknown %q (cp.async, tma, tma-ws)\n", loads)
		os.Exit(2)
	}
	kind, col := map[string]string{
		"cp.async": "wgmma GEMM (nt and nn products, cp.async loads)",
		"tma":      "wgmma GEMM with TMA loads (cp.async.bulk.tensor, mbarriers)",
		"tma-ws":   "wgmma GEMM with TMA loads in a producer warpgroup (warp-specialised)",
	}[loads], "wgmma "+loads
	if err := d.WGMMATakes(false, true, 64, 64, 64, 64, 0, 0); err != nil {
		fmt.Fprintf(&sb, "The sm_90a %s: not run: %v\n", kind, err)
	} else {
		fmt.Fprintf(&sb, "The sm_90a %s:\n", kind)
		fmt.Fprintln(&sb)
		fmt.Fprintf(&sb, "| model | product | M×N×K | %[1]s ms | %[1]s TFLOP/s | %[1]s / cuBLASLt |\n", col)
		fmt.Fprintln(&sb, "| --- | --- | --- | ---: | ---: | ---: |")
		var sumWG, sumLt float64
		for i, g := range stepGEMMs() {
			nt := g.tr == "nt"
			ldb := g.N // nn: B [K,N]
			if nt {
				ldb = g.K
			}
			if g.tr != "nt" && g.tr != "nn" || d.WGMMATakes(false, nt, g.N, g.K, g.K, ldb, 0, 0) != nil {
				continue
			}
			A, B := buf(2*g.M*g.K, cuda.BF16), buf(2*g.K*g.N, cuda.BF16)
			C := buf(4*g.M*g.N, cuda.F32)
			flops := 2 * float64(g.M) * float64(g.N) * float64(g.K)
			wg := timeIt(func() error {
				switch loads {
				case "tma":
					return d.MatmulWGMMATMABF16To(s, cuda.F32, nt, g.M, g.N, g.K, A, g.K, B, ldb, C, g.N, 1, 0)
				case "tma-ws":
					return d.MatmulWGMMAWarpSpecializedBF16To(s, cuda.F32, nt, g.M, g.N, g.K, A, g.K, B, ldb, C, g.N, 1, 0)
				}
				return d.MatmulWGMMABF16To(s, cuda.F32, nt, g.M, g.N, g.K, A, g.K, B, ldb, C, g.N, 1, 0)
			})
			row := fmt.Sprintf("| %s | %s | %dx%dx%d | %.3f | %.1f |", g.model, g.op, g.M, g.N, g.K, wg, flops/(wg*1e9))
			if lt := ltMs[i]; lt > 0 {
				row += fmt.Sprintf(" %.0f%% |", 100*lt/wg)
				sumWG += wg
				sumLt += lt
			} else {
				row += " – |"
			}
			emit(&sb, row, A, B, C)
		}
		if sumLt > 0 {
			fmt.Fprintf(&sb, "\nThese shapes once each: %s %.2f ms, cuBLASLt %.2f ms: %.0f%% of cuBLASLt's speed.\n", col, sumWG, sumLt, 100*sumLt/sumWG)
		}
		if loads == "cp.async" {
			nf4Table(&sb, ltMs)
		}
	}
	fmt.Print(sb.String())
	if out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		must(err)
		_, err = f.WriteString(sb.String())
		must(err)
		must(f.Close())
	}
}

// emit adds a table row (also to stderr, as it comes) and gives the row's
// buffers back to the device.
func emit(sb *strings.Builder, row string, bufs ...cuda.Ptr) {
	fmt.Fprintln(sb, row)
	fmt.Fprintf(os.Stderr, "%s\n", row)
	for _, p := range bufs {
		must(d.Allocator().Free(p))
	}
	must(d.Allocator().Trim())
}

// nf4Table times QLoRA's NF4 products (the Llama-3-8B projections' forward
// and dx, block size 64, plain scales) on gemm.cu's NF4 kernel and on the
// sm_90a one (gemm_sm90.cu's NF4 variant), beside cuBLASLt's bf16 product
// of the same shape (a dequantized weight: the speed QLoRA gives up).
func nf4Table(sb *strings.Builder, ltMs map[int]float64) {
	fmt.Fprintln(sb)
	fmt.Fprintln(sb, "QLoRA's NF4 products (block size 64), sm_80 kernel against the sm_90a wgmma one:")
	fmt.Fprintln(sb)
	fmt.Fprintln(sb, "| model | product | M×N×K | sm_80 NF4 ms | wgmma NF4 ms | wgmma NF4 TFLOP/s | speed-up | wgmma NF4 / cuBLASLt bf16 |")
	fmt.Fprintln(sb, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
	for i, g := range stepGEMMs() {
		if g.model != "llama-3-8b" || g.tr == "tn" || strings.HasPrefix(g.op, "lm_head") || strings.HasPrefix(g.op, "lora") {
			continue
		}
		nt := g.tr == "nt"
		if d.WGMMANF4Takes(g.K, g.K, 0) != nil {
			continue
		}
		A := buf(2*g.M*g.K, cuda.BF16)
		packed, absmax := buf(g.N*g.K/2, cuda.F32), buf(4*((g.N*g.K+63)/64), cuda.F32)
		C := buf(4*g.M*g.N, cuda.F32)
		flops := 2 * float64(g.M) * float64(g.N) * float64(g.K)
		old := timeIt(func() error {
			return d.MatmulNF4BF16To(s, cuda.F32, nt, g.M, g.N, g.K, A, g.K, packed, absmax, 64, C, g.N, 1, 0)
		})
		wg := timeIt(func() error {
			return d.MatmulWGMMANF4BF16To(s, cuda.F32, nt, g.M, g.N, g.K, A, g.K, packed, absmax, 64, nil, C, g.N, 1, 0)
		})
		row := fmt.Sprintf("| %s | %s | %dx%dx%d | %.3f | %.3f | %.1f | %.2f× |", g.model, g.op, g.M, g.N, g.K, old, wg, flops/(wg*1e9), old/wg)
		if lt := ltMs[i]; lt > 0 {
			row += fmt.Sprintf(" %.0f%% |", 100*lt/wg)
		} else {
			row += " – |"
		}
		emit(sb, row, A, packed, absmax, C)
	}
}
