"""CPU anchor for a LoRA or DoRA training step as a user runs it today: Hugging Face
transformers + PEFT, timed on the same shapes and batch as ftune's `lorabench` with the same
-dora and -dropout.

The model is transformers' LlamaForCausalLM with random weights of the shape (SDPA attention,
float32), PEFT's LoRA r=16 alpha=32 on the seven projections, with use_dora and lora_dropout
from the command line. The step: the forward with labels (transformers' shifted
cross-entropy over the full logits), backward, AdamW (lr 1e-4, weight decay 0.01, as
ftune's side), zero_grad. Written for this project after bench/torch_cpu_dpo.py, which builds
the same model (each anchor script stands alone, so it can be copied to a machine and run).

Run: bash scripts/hf-root.sh run python3 bench/torch_cpu_peft.py --shape tiny-base --threads 2 --dora --dropout 0.05
(bench/cpu_dora.sh runs both sides.) One JSON line per configuration (the fields of
torch_cpu_lora.py's, with dora and dropout).
"""
import argparse, json, resource, sys, time

SHAPES = {
    # name: (vocab, hidden, layers, heads, kv_heads, ffn, batch, seq): bench.Shapes
    "tiny-base": (4096, 256, 6, 8, 4, 704, 8, 256),
    "smollm2-135m": (49152, 576, 30, 9, 3, 1536, 1, 512),
}

def run(name, threads, dora, dropout, warmup=1, steps=0):
    V, d, L, h, kv, ff, B, T = SHAPES[name]
    torch.manual_seed(0); torch.set_num_threads(threads)
    cfg = LlamaConfig(vocab_size=V, hidden_size=d, num_hidden_layers=L, num_attention_heads=h,
                      num_key_value_heads=kv, intermediate_size=ff, max_position_embeddings=max(T, 1024),
                      tie_word_embeddings=True)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa").float()
    pm = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=dropout, use_dora=dora, task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    pm.train()
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
    ids = torch.randint(0, V, (B, T))
    def step():
        loss = pm(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        return float(loss.detach())
    for _ in range(warmup): step()
    n = steps or (5 if name == "tiny-base" else 2)
    c = time.process_time(); t = time.perf_counter()
    for _ in range(n): loss = step()
    dt = (time.perf_counter() - t) / n
    cpu = (time.process_time() - c) / n
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"side": "torch", "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
           "shape": name, "quant": "f32", "precision": "f32", "threads": threads, "batch": B, "seq": T,
           "step_s": round(dt, 4), "tokens_per_s": round(B * T / dt, 1), "peak_rss_mib": round(rss, 1),
           "cpu_s_per_step": round(cpu, 4), "loss": round(loss, 4)}
    if dora:
        out["dora"] = True
    if dropout:
        out["dropout"] = dropout
    return out

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=list(SHAPES), action="append")
    ap.add_argument("--threads", type=int, action="append")
    ap.add_argument("--dora", action="store_true", help="use_dora=True")
    ap.add_argument("--dropout", type=float, default=0.0, help="lora_dropout")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=0)
    a = ap.parse_args()
    import torch
    import transformers, peft
    from transformers import AutoModelForCausalLM, LlamaConfig
    from peft import LoraConfig, get_peft_model
    print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__, file=sys.stderr)
    for name in a.shape or list(SHAPES):
        for th in a.threads or [1, 2]:
            print(json.dumps(run(name, th, a.dora, a.dropout, a.warmup, a.steps)), flush=True)
