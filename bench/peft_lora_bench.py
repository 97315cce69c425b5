# Copied from ../shared/anchors/peft_lora_bench.py (the anchor measurement
# script of this project; PyTorch 2.11 + transformers 5.17 + PEFT 0.21) so a
# device run can measure the anchor beside ftune. Two switches were added
# and nothing else changed: ANCHOR_SKIP_CEILINGS=1 skips the copy/GEMM
# ceilings, and ANCHOR_RUNS="smollm2-135m:8:2048:0,..." (name:B:T:ckpt)
# replaces the list of LoRA runs. The output folder is argv[1].
"""Anchor figures on the GPU: copy bandwidth, bf16 GEMM rate, and PyTorch+PEFT
LoRA training throughput for Llama-shaped models (random weights, bf16, SDPA)."""
import json, sys, time, traceback, os
import torch
out = {}
dev = torch.device("cuda")
p = torch.cuda.get_device_properties(0)
out["device"] = {"name": p.name, "sms": p.multi_processor_count, "mem_gib": p.total_memory / 2**30}
print(out["device"], flush=True)

def bench(fn, iters=20, warm=3):
    for _ in range(warm): fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(iters):
        s.record(); fn(); e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
    ts.sort(); return ts[len(ts)//2]

if os.environ.get("ANCHOR_SKIP_CEILINGS") != "1":
  # bandwidth
  x = torch.randn(1 << 30, device=dev, dtype=torch.float32)  # 4 GiB
  y = torch.empty_like(x)
  ms = bench(lambda: y.copy_(x), iters=10)
  out["copy_TBps"] = 2 * x.numel() * 4 / ms / 1e9
  del x, y
  print("copy TB/s", out["copy_TBps"], flush=True)
  # gemm
  g = {}
  for (M, K, N) in [(8192, 8192, 8192), (8192, 2048, 8192), (8192, 8192, 2048), (8192, 2048, 2048), (8192, 2048, 512), (4096, 4096, 14336)]:
      a = torch.randn(M, K, device=dev, dtype=torch.bfloat16); b = torch.randn(K, N, device=dev, dtype=torch.bfloat16)
      ms = bench(lambda: a @ b)
      g[f"{M}x{K}x{N}"] = 2 * M * K * N / ms / 1e9
      af = a.float(); bf = b.float()
      torch.backends.cuda.matmul.allow_tf32 = False
      ms = bench(lambda: af @ bf, iters=5)
      g[f"{M}x{K}x{N}_fp32"] = 2 * M * K * N / ms / 1e9
      torch.backends.cuda.matmul.allow_tf32 = True
      ms = bench(lambda: af @ bf, iters=5)
      g[f"{M}x{K}x{N}_tf32"] = 2 * M * K * N / ms / 1e9
  out["gemm_TFLOPs"] = g
  print("gemm", g, flush=True)
  torch.cuda.empty_cache()

from transformers import AutoConfig, AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
SHAPES = {
    "smollm2-135m": dict(model_type="llama", vocab_size=49152, hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, intermediate_size=1536, tie_word_embeddings=True),
    "llama3.2-1b": dict(model_type="llama", vocab_size=128256, hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, intermediate_size=8192, tie_word_embeddings=True, head_dim=64),
    "llama3-8b": dict(model_type="llama", vocab_size=128256, hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, intermediate_size=14336, tie_word_embeddings=False),
}
RUNS = [("smollm2-135m", 8, 2048, False), ("llama3.2-1b", 4, 2048, False), ("llama3.2-1b", 4, 2048, True), ("llama3-8b", 2, 2048, True)]
if os.environ.get("ANCHOR_RUNS"):
    RUNS = [(n, int(b), int(t), c == "1") for n, b, t, c in (r.split(":") for r in os.environ["ANCHOR_RUNS"].split(","))]
lr = {}
for name, B, T, ckpt in RUNS:
    key = f"{name}_b{B}_t{T}_ckpt{int(ckpt)}"
    try:
        torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
        d = dict(SHAPES[name]); mt = d.pop("model_type")
        cfg = AutoConfig.for_model(mt, max_position_embeddings=4096, **d)
        cfg._attn_implementation = "sdpa"
        t0 = time.time()
        torch.set_default_dtype(torch.bfloat16)
        with torch.device(dev):
            model = AutoModelForCausalLM.from_config(cfg)
        torch.set_default_dtype(torch.float32)
        model = model.to(torch.bfloat16)
        if ckpt:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        pm = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"], task_type="CAUSAL_LM"))
        opt = torch.optim.AdamW([q for q in pm.parameters() if q.requires_grad], lr=1e-4, fused=True)
        ids = torch.randint(0, cfg.vocab_size, (B, T), device=dev)
        def step():
            o = pm(input_ids=ids, labels=ids)
            o.loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        build_s = time.time() - t0
        for _ in range(3): step()
        torch.cuda.synchronize(); t1 = time.time(); n = 8
        for _ in range(n): step()
        torch.cuda.synchronize(); dt = (time.time() - t1) / n
        nparams = sum(q.numel() for q in pm.parameters())
        toks = B * T / dt
        # model flops: 6*N*tokens for full; LoRA: forward 2N + backward-input 2N (no weight grads) = 4N, plus attention
        lr[key] = {"step_s": dt, "tokens_per_s": toks, "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30, "params": nparams, "build_s": build_s,
                   "approx_TFLOPs_4N": 4 * nparams * toks / 1e12}
        print(key, lr[key], flush=True)
        del pm, model, opt
    except Exception:
        traceback.print_exc(); lr[key] = "failed"
    torch.cuda.empty_cache()
out["peft_lora_bf16_sdpa"] = lr
json.dump(out, open(os.path.join(sys.argv[1], "gpubench.json"), "w"), indent=1)
print(json.dumps(out), flush=True)
