// Command cudabench times every ftune CUDA kernel at training-like sizes and
// prints a markdown table: time, TFLOP/s or GB/s, and the fraction of the
// device's measured ceiling (a device-to-device copy for bandwidth, a bf16
// matrix product through PyTorch for tensor-core rate when -gemm-ceiling is
// given, else the best of our own GEMMs). Run by scripts/gpu-check.sh.
// With -gemm-table it prints only ftune's bf16 GEMM against cuBLASLt at the
// GEMM shapes of issue 10's training steps (gemmtable.go; run by
// scripts/gpu-bench.sh).
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"

	"github.com/ftune/ftune/kernels/cuda"
)

type row struct {
	name, shape string
	ms          float64
	flops       float64 // 0 for memory-bound kernels
	bytes       float64
}

var (
	d    *cuda.Device
	s    cuda.Stream
	rng  = rand.New(rand.NewPCG(1, 2))
	reps = flag.Int("reps", 20, "timed repetitions (median reported)")
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "cudabench:", err)
		os.Exit(1)
	}
}

// buf allocates n bytes of random data: random, not zeros, because zeros
// can run faster than real data on tensor cores. A 4 MiB random block is
// uploaded and then doubled on the device, which keeps the host RNG out of
// the run time. bf16 values are normal floats truncated to bfloat16.
func buf(n int, t cuda.DType) cuda.Ptr {
	p, err := d.Allocator().Alloc(n)
	must(err)
	pat := patF32
	if t == cuda.BF16 {
		pat = patBF16
	}
	first := min(n, len(pat))
	must(cuda.CopyHtoD(d, p, pat[:first]))
	for done := first; done < n; {
		c := min(done, n-done)
		must(d.CopyDtoD(p.Add(done), p, c))
		done += c
	}
	return p
}

var patF32, patBF16 = func() ([]byte, []byte) {
	const n = 1 << 20
	f, b := make([]byte, 4*n), make([]byte, 4*n)
	for i := 0; i < n; i++ {
		u := math.Float32bits(float32(rng.NormFloat64()))
		f[4*i], f[4*i+1], f[4*i+2], f[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
		v := math.Float32bits(float32(rng.NormFloat64())) >> 16
		w := math.Float32bits(float32(rng.NormFloat64())) >> 16
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(v), byte(v>>8), byte(w), byte(w>>8)
	}
	return f, b
}()

func ints(n, hi int) cuda.Ptr {
	h := make([]int32, n)
	for i := range h {
		h[i] = int32(rng.IntN(hi))
	}
	p, err := d.Allocator().Alloc(4 * n)
	must(err)
	must(cuda.CopyHtoD(d, p, h))
	return p
}

// timeIt runs f twice to warm up, then reps times between events, and
// returns the median milliseconds.
func timeIt(f func() error) float64 {
	start, err := d.NewEvent()
	must(err)
	end, err := d.NewEvent()
	must(err)
	defer d.DestroyEvent(start)
	defer d.DestroyEvent(end)
	for i := 0; i < 2; i++ {
		must(f())
	}
	must(d.SyncStream(s))
	var ts []float64
	for i := 0; i < *reps; i++ {
		must(d.Record(start, s))
		must(f())
		must(d.Record(end, s))
		must(d.SyncEvent(end))
		ms, err := d.Elapsed(start, end)
		must(err)
		ts = append(ts, float64(ms))
	}
	sort.Float64s(ts)
	return ts[len(ts)/2]
}

func main() {
	gemmCeil := flag.Float64("gemm-ceiling", 0, "measured bf16 GEMM TFLOP/s of the device (PyTorch), 0 = unknown")
	copyCeil := flag.Float64("copy-ceiling", 0, "measured device copy GB/s (PyTorch), 0 = measure here")
	out := flag.String("o", "", "also write the table to this file")
	gemmOnly := flag.Bool("gemm-table", false, "only the GEMM table: ftune's bf16 GEMM against cuBLASLt at the GEMM shapes of issue 10's training steps")
	wgLoads := flag.String("wgmma-loads", "cp.async,tma,tma-ws", "with -gemm-table: the sm_90a wgmma tables to add after it, by the kernels' loads (comma-separated; empty: none)")
	ltTimes := flag.String("lt-times", "", "with -gemm-table: write cuBLASLt's time per shape to this JSON file (with -skip-main: read them from it, for the wgmma tables' ratios)")
	skipMain := flag.Bool("skip-main", false, "with -gemm-table: only the wgmma tables, appended to -o (a separate process per kernel family, so that a fault loses one table)")
	flag.Parse()
	if ok, why := cuda.Available(); !ok {
		fmt.Println("cudabench: no GPU:", why)
		os.Exit(2)
	}
	var err error
	d, err = cuda.Open(0)
	must(err)
	s, err = d.NewStream()
	must(err)
	if *gemmOnly {
		var loads []string
		if *wgLoads != "" {
			loads = strings.Split(*wgLoads, ",")
		}
		gemmTable(*out, loads, *ltTimes, *skipMain)
		return
	}
	var rows []row
	add := func(name, shape string, flops, bytes float64, f func() error) {
		ms := timeIt(f)
		rows = append(rows, row{name, shape, ms, flops, bytes})
		fmt.Fprintf(os.Stderr, "%-28s %-28s %9.3f ms\n", name, shape, ms)
	}

	// Ceiling: a 1 GiB device-to-device copy (bytes read + written).
	const cp = 1 << 30
	a, b := buf(cp, cuda.F32), buf(cp, cuda.F32)
	add("memcpy DtoD (ceiling)", "1 GiB", 0, 2*cp, func() error { return d.CopyDtoDAsync(s, b, a, cp) })
	ourCopy := 2 * cp / (rows[0].ms * 1e6)
	must(d.Allocator().Free(a))
	must(d.Allocator().Free(b))
	must(d.Allocator().Trim())

	// GEMMs.
	for _, g := range []struct {
		tr      string
		M, N, K int
	}{{"nt", 4096, 4096, 4096}, {"nn", 4096, 4096, 4096}, {"tn", 4096, 4096, 4096}, {"nt", 8192, 4096, 4096}, {"nt", 8192, 16, 4096}, {"tn", 4096, 4096, 8192}} {
		ta, tb := g.tr[0] == 't', g.tr[1] == 't'
		A, B := buf(2*g.M*g.K, cuda.BF16), buf(2*g.K*g.N, cuda.BF16)
		C := buf(4*g.M*g.N, cuda.F32)
		lda, ldb := g.K, g.N
		if ta {
			lda = g.M
		}
		if tb {
			ldb = g.K
		}
		add("matmul_"+g.tr+"_fwd_bf16", fmt.Sprintf("%dx%dx%d", g.M, g.N, g.K), 2*float64(g.M)*float64(g.N)*float64(g.K), 0, func() error {
			return d.MatmulBF16(s, ta, tb, g.M, g.N, g.K, A, lda, B, ldb, C, g.N, 1, 0)
		})
	}
	{
		n := 2048
		A, B, C := buf(4*n*n, cuda.F32), buf(4*n*n, cuda.F32), buf(4*n*n, cuda.F32)
		add("matmul_fwd_f32 (SIMT)", "2048^3", 2*math.Pow(float64(n), 3), 0, func() error {
			return d.MatmulF32(s, false, true, n, n, n, A, n, B, n, C, n, 1, 0)
		})
	}

	// Memory-bound kernels at Llama-7B-like shapes (8192 tokens).
	const tok, C, F = 8192, 4096, 11008
	{
		n := int64(tok * C)
		x, y := buf(int(4*n), cuda.F32), buf(int(2*n), cuda.BF16)
		add("cast_bf16_fwd_f32", "32M", 0, float64(6*n), func() error { return d.Cast(s, y, cuda.BF16, x, cuda.F32, n) })
		z := buf(int(4*n), cuda.F32)
		add("add_fwd_f32", "32M", 0, float64(12*n), func() error { return d.Add(s, cuda.F32, z, x, z, n) })
		w, rs, dx := buf(2*C, cuda.BF16), buf(4*tok, cuda.F32), buf(int(2*n), cuda.BF16)
		xb := buf(int(2*n), cuda.BF16)
		add("rmsnorm_fwd_bf16", "8192x4096", 0, float64(4*n), func() error { return d.RMSNormFwd(s, cuda.BF16, cuda.BF16, dx, rs, xb, w, tok, C, 1e-5) })
		dw := buf(4*C, cuda.F32)
		add("rmsnorm_bwd_bf16 (+dw)", "8192x4096", 0, float64(10*n), func() error { return d.RMSNormBwd(s, cuda.BF16, cuda.BF16, dx, dw, y, xb, w, rs, tok, C) })
		pos, ct, st := ints(tok, 4096), buf(4*4096*64, cuda.F32), buf(4*4096*64, cuda.F32)
		add("rope_fwd_bf16", "8192x32x128", 0, float64(4*n), func() error { return d.RoPE(s, cuda.BF16, false, xb, pos, ct, st, tok, 32, 128) })
		table, ids := buf(2*32000*C, cuda.BF16), ints(tok, 32000)
		add("embedding_fwd_bf16", "8192x4096", 0, float64(4*n), func() error { return d.EmbeddingFwd(s, cuda.BF16, dx, table, ids, tok, 32000, C) })
		dtab := buf(4*32000*C, cuda.F32)
		add("embedding_bwd_bf16", "8192x4096", 0, float64(2*n+8*n), func() error { return d.EmbeddingBwd(s, cuda.BF16, dtab, xb, ids, tok, 32000, C) })
	}
	{
		n := int64(tok * F)
		gt, u, o := buf(int(2*n), cuda.BF16), buf(int(2*n), cuda.BF16), buf(int(2*n), cuda.BF16)
		add("swiglu_fwd_bf16", "8192x11008", 0, float64(6*n), func() error { return d.SwiGLUFwd(s, cuda.BF16, o, gt, u, n) })
		dg, du := buf(int(2*n), cuda.BF16), buf(int(2*n), cuda.BF16)
		add("swiglu_bwd_bf16", "8192x11008", 0, float64(10*n), func() error { return d.SwiGLUBwd(s, cuda.BF16, dg, du, o, gt, u, n) })
	}
	{
		N, V := 4096, 32000
		x, dx := buf(2*N*V, cuda.BF16), buf(2*N*V, cuda.BF16)
		tg := ints(N, V)
		m, sm, tl, lse, loss, sum := buf(4*N, cuda.F32), buf(4*N, cuda.F32), buf(4*N, cuda.F32), buf(4*N, cuda.F32), buf(4*N, cuda.F32), buf(4, cuda.F32)
		add("crossentropy fwd+loss+bwd bf16", "4096x32000", 0, float64(2*N*V*3), func() error {
			if err := d.CrossEntropyInit(s, m, sm, N); err != nil {
				return err
			}
			if err := d.CrossEntropyFwd(s, cuda.BF16, x, V, 0, V, N, tg, m, sm, tl); err != nil {
				return err
			}
			if err := d.CrossEntropyLoss(s, N, V, tg, m, sm, tl, lse, loss, sum, 1/float32(N)); err != nil {
				return err
			}
			return d.CrossEntropyBwd(s, cuda.BF16, dx, x, V, 0, V, N, V, tg, lse, 1/float32(N))
		})
	}
	{
		B, T, H, Hkv, D := 4, 2048, 32, 8, 128
		a := cuda.AttentionShape{B: B, T: T, Hq: H, Hkv: Hkv, D: D, Scale: float32(1 / math.Sqrt(float64(D)))}
		nq, nk := B*T*H*D, B*T*Hkv*D
		q, k, v, o := buf(2*nq, cuda.BF16), buf(2*nk, cuda.BF16), buf(2*nk, cuda.BF16), buf(2*nq, cuda.BF16)
		lse, delta := buf(4*B*H*T, cuda.F32), buf(4*B*H*T, cuda.F32)
		dq, dk, dv, do := buf(2*nq, cuda.BF16), buf(2*nk, cuda.BF16), buf(2*nk, cuda.BF16), buf(2*nq, cuda.BF16)
		fl := 2 * 2 * float64(B*H) * float64(T) * float64(T) / 2 * float64(D) // causal: half the T^2
		add("attention_fwd_bf16 (SIMT)", "4x2048x32/8x128", fl, 0, func() error { return d.AttentionFwd(s, cuda.BF16, o, lse, q, k, v, a) })
		add("attention_bwd_bf16 (SIMT)", "4x2048x32/8x128", 2.5*fl, 0, func() error {
			return d.AttentionBwd(s, cuda.BF16, dq, dk, dv, delta, do, o, lse, q, k, v, a)
		})
		// The same shape on the tensor-core flash kernels (FLOPs counted as
		// for the SIMT rows: the useful work, not the backward's recompute).
		fa := cuda.MaskedAttention{B: B, T: T, S: T, Hq: H, Hkv: Hkv, D: D, Scale: a.Scale, Causal: true}
		add("flash_attention fwd bf16", "4x2048x32/8x128", fl, 0, func() error { return d.FlashAttentionFwd(s, cuda.BF16, o, lse, q, k, v, fa) })
		add("flash_attention bwd bf16", "4x2048x32/8x128", 2.5*fl, 0, func() error {
			return d.FlashAttentionBwd(s, cuda.BF16, dq, dk, dv, delta, do, o, lse, q, k, v, fa)
		})
	}
	{
		const nt, per = 128, 1 << 20
		var ps, gs, ms, vs []cuda.Ptr
		var sz []int64
		for i := 0; i < nt; i++ {
			ps, gs, ms, vs = append(ps, buf(4*per, cuda.F32)), append(gs, buf(4*per, cuda.F32)), append(ms, buf(4*per, cuda.F32)), append(vs, buf(4*per, cuda.F32))
			sz = append(sz, per)
		}
		l, err := d.NewTensorList(ps, gs, ms, vs, sz)
		must(err)
		sum, norm, scale := buf(4, cuda.F32), buf(4, cuda.F32), buf(4, cuda.F32)
		add("gradnorm+clip f32", "128 x 1M", 0, 4*nt*per, func() error { return d.GradNorm(s, l, sum, norm, scale, 1) })
		step := 0
		add("adamw_fwd_f32", "128 x 1M", 0, 28*nt*per, func() error {
			step++
			return d.AdamW(s, l, scale, cuda.AdamWConfig{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: step})
		})
	}
	{
		n := int64(4096 * 11008)
		packed, absmax, o := buf(int(n/2), cuda.F32), buf(int(n/64*4), cuda.F32), buf(int(2*n), cuda.BF16)
		add("nf4_dequant_fwd_bf16", "4096x11008", 0, float64(n/2+n/16+2*n), func() error {
			return d.NF4Dequant(s, cuda.BF16, o, packed, absmax, n, 64)
		})
	}

	// Table.
	bw := *copyCeil
	bwSrc := "PyTorch DtoD copy"
	if bw == 0 {
		bw, bwSrc = ourCopy, "cuMemcpyDtoD"
	}
	fl := *gemmCeil
	flSrc := "PyTorch bf16 matmul"
	if fl == 0 {
		for _, r := range rows {
			if r.flops > 0 {
				fl = math.Max(fl, r.flops/(r.ms*1e9))
			}
		}
		flSrc = "best ftune GEMM (no PyTorch figure)"
	}
	var sb strings.Builder
	free, total, _ := d.MemInfo()
	st := d.Allocator().Stats()
	fmt.Fprintf(&sb, "Device: %s; ceilings: %.0f GB/s (%s), %.0f TFLOP/s (%s); cuMemcpyDtoD here: %.0f GB/s.\n",
		d, bw, bwSrc, fl, flSrc, ourCopy)
	fmt.Fprintf(&sb, "Allocator: peak %.2f GiB live, %d driver allocations; device free %.1f of %.1f GiB. Median of %d runs, CUDA events.\n\n",
		float64(st.Peak)/(1<<30), st.DriverAllocs, float64(free)/(1<<30), float64(total)/(1<<30), *reps)
	fmt.Fprintln(&sb, "| kernel | shape | ms | rate | of ceiling |")
	fmt.Fprintln(&sb, "| --- | --- | ---: | ---: | ---: |")
	for _, r := range rows {
		if r.flops > 0 {
			tf := r.flops / (r.ms * 1e9)
			fmt.Fprintf(&sb, "| %s | %s | %.3f | %.1f TFLOP/s | %.0f%% |\n", r.name, r.shape, r.ms, tf, 100*tf/fl)
		} else {
			gb := r.bytes / (r.ms * 1e6)
			fmt.Fprintf(&sb, "| %s | %s | %.3f | %.0f GB/s | %.0f%% |\n", r.name, r.shape, r.ms, gb, 100*gb/bw)
		}
	}
	fmt.Print(sb.String())
	if *out != "" {
		must(os.WriteFile(*out, []byte(sb.String()), 0o644))
	}
}
