"""CPU anchor for a DPO step: what a user runs today, Hugging Face transformers + PEFT with
TRL's DPO loss, timed on the same shapes and batch as ftune's `lorabench -dpo`.

The step is TRL's DPOTrainer._compute_loss (huggingface/trl f2cd577,
trl/trainer/dpo_trainer.py) for loss_type "sigmoid" without precomputed reference
log-probabilities, re-typed here because TRL's trainer needs the datasets library, which the
machine this runs on (Debian sid's transformers, scripts/hf-root.sh) lacks: the policy's
forward (full logits), TRL's selective_log_softmax (a logsumexp per row, to bound memory),
the completion-masked sums, the reference's forward under torch.no_grad() and PEFT's
disable_adapter(), -logsigmoid(beta * margin) averaged over pairs, backward, AdamW (lr 1e-4,
weight decay 0.01, as ftune's side), zero_grad. The model is transformers' LlamaForCausalLM
with random weights of the shape (SDPA attention, float32), LoRA r=16 alpha=32 on the seven
projections (PEFT). Batch: max(1, batch/2) pairs, each row `seq` tokens, a prompt of seq/2
and completions of the rest, as bench.LoRARun.DPO.

Run: bash scripts/hf-root.sh run python3 bench/torch_cpu_dpo.py --shape tiny-base --threads 2
(bench/cpu_dpo.sh runs both sides.) One JSON line per configuration (the fields of
torch_cpu_lora.py's, objective "dpo").
"""
import argparse, json, resource, sys, time

SHAPES = {
    # name: (vocab, hidden, layers, heads, kv_heads, ffn, batch, seq): bench.Shapes
    "tiny-base": (4096, 256, 6, 8, 4, 704, 8, 256),
    "smollm2-135m": (49152, 576, 30, 9, 3, 1536, 1, 512),
}
BETA = 0.1

def selective_log_softmax(logits, index):
    selected = torch.gather(logits, dim=-1, index=index.unsqueeze(-1)).squeeze(-1)
    lse = torch.stack([torch.logsumexp(lg, dim=-1) for lg in logits])
    return selected - lse

def sequence_logps(model, ids, completion):
    logits = model(input_ids=ids, use_cache=False).logits
    per_token = selective_log_softmax(logits[..., :-1, :], ids[..., 1:])
    per_token = per_token.masked_fill(completion[..., 1:] == 0, 0.0)
    return per_token.sum(dim=1)

def run(name, threads, warmup=1, steps=0):
    V, d, L, h, kv, ff, B, T = SHAPES[name]
    torch.manual_seed(0); torch.set_num_threads(threads)
    cfg = LlamaConfig(vocab_size=V, hidden_size=d, num_hidden_layers=L, num_attention_heads=h,
                      num_key_value_heads=kv, intermediate_size=ff, max_position_embeddings=max(T, 1024),
                      tie_word_embeddings=True)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa").float()
    pm = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    pm.train()
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
    P = max(1, B // 2)
    ids = torch.randint(0, V, (2 * P, T))
    ids[P:, : T // 2] = ids[:P, : T // 2]  # each pair's rows share their prompt
    completion = torch.zeros(2 * P, T, dtype=torch.long); completion[:, T // 2:] = 1
    def step():
        logps = sequence_logps(pm, ids, completion)
        with torch.no_grad(), pm.disable_adapter():
            ref = sequence_logps(pm, ids, completion)
        c, r = logps.chunk(2); rc, rr = ref.chunk(2)
        loss = (-F.logsigmoid(BETA * ((c - rc) - (r - rr)))).mean()
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        return float(loss.detach())
    for _ in range(warmup): step()
    n = steps or (5 if name == "tiny-base" else 2)
    c = time.process_time(); t = time.perf_counter()
    for _ in range(n): loss = step()
    dt = (time.perf_counter() - t) / n
    cpu = (time.process_time() - c) / n
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"side": "torch", "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "shape": name, "quant": "f32", "precision": "f32", "objective": "dpo", "threads": threads, "batch": 2 * P, "seq": T,
            "step_s": round(dt, 4), "tokens_per_s": round(2 * P * T / dt, 1), "peak_rss_mib": round(rss, 1),
            "cpu_s_per_step": round(cpu, 4), "loss": round(loss, 4)}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=list(SHAPES), action="append")
    ap.add_argument("--threads", type=int, action="append")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=0)
    a = ap.parse_args()
    import torch
    import torch.nn.functional as F
    import transformers, peft
    from transformers import AutoModelForCausalLM, LlamaConfig
    from peft import LoraConfig, get_peft_model
    print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__, file=sys.stderr)
    for name in a.shape or list(SHAPES):
        for th in a.threads or [1, 2]:
            print(json.dumps(run(name, th, a.warmup, a.steps)), flush=True)
