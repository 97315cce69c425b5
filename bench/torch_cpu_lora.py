"""CPU anchor: a LoRA training step of a Llama-architecture model in PyTorch (what a user
would otherwise run on a CPU), for side-by-side tokens/s against ftune on the same machine.

Provenance: copied from the project's shared anchors (torch_cpu_lora.py, 2026-11-26); the
model, shapes, step and timing are unchanged. Changed here: the command line takes
--shape/--threads/--warmup/--steps (so bench/cpu_lora.sh runs one configuration per process
and the peak RSS belongs to that configuration), and each JSON line also carries
side, quant, peak_rss_mib (getrusage ru_maxrss) and cpu_s_per_step; --bf16 (2026-12-06) runs
the forward under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's mixed precision on
a CPU (its linear layers multiply bf16 operands), for ftune's precision bf16, and each JSON
line carries precision.

Needs Debian's PyTorch:  apt-get install python3-torch libopenblas0-pthread
Run with Debian's interpreter: /usr/bin/python3 torch_cpu_lora.py --shape tiny-base --threads 1
Random weights of the named shapes (speed does not depend on the values).
"""
import argparse, resource
import math, sys, time, json
import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {
    # name: (vocab, hidden, layers, heads, kv_heads, ffn, batch, seq)
    "tiny-base": (4096, 256, 6, 8, 4, 704, 8, 256),
    "smollm2-135m": (49152, 576, 30, 9, 3, 1536, 1, 512),
}

class LoRALinear(nn.Module):
    def __init__(self, i, o, r=16, alpha=32):
        super().__init__()
        self.w = nn.Parameter(torch.randn(o, i) * 0.02, requires_grad=False)
        self.a = nn.Parameter(torch.randn(r, i) * 0.01)
        self.b = nn.Parameter(torch.zeros(o, r))
        self.s = alpha / r
    def forward(self, x):
        return F.linear(x, self.w) + self.s * F.linear(F.linear(x, self.a), self.b)

class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__(); self.w = nn.Parameter(torch.ones(d), requires_grad=False)
    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.w

def rope(x, cos, sin):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return x * cos + torch.cat((-x2, x1), -1) * sin

class Block(nn.Module):
    def __init__(self, d, h, kv, ff):
        super().__init__()
        self.h, self.kv, self.hd = h, kv, d // h
        self.q = LoRALinear(d, d); self.k = LoRALinear(d, kv * self.hd); self.v = LoRALinear(d, kv * self.hd)
        self.o = LoRALinear(d, d); self.g = LoRALinear(d, ff); self.u = LoRALinear(d, ff); self.dn = LoRALinear(ff, d)
        self.n1 = RMSNorm(d); self.n2 = RMSNorm(d)
    def forward(self, x, cos, sin, mask):
        B, T, D = x.shape
        y = self.n1(x)
        q = self.q(y).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k(y).view(B, T, self.kv, self.hd).transpose(1, 2)
        v = self.v(y).view(B, T, self.kv, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = self.h // self.kv
        k = k.repeat_interleave(rep, 1); v = v.repeat_interleave(rep, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.o(y)
        y = self.n2(x)
        return x + self.dn(F.silu(self.g(y)) * self.u(y))

class Model(nn.Module):
    def __init__(self, V, d, L, h, kv, ff):
        super().__init__()
        self.emb = nn.Parameter(torch.randn(V, d) * 0.02, requires_grad=False)
        self.blocks = nn.ModuleList([Block(d, h, kv, ff) for _ in range(L)]); self.norm = RMSNorm(d)
        self.hd = d // h
    def forward(self, ids, labels):
        B, T = ids.shape
        x = F.embedding(ids, self.emb)
        inv = 1.0 / (10000 ** (torch.arange(0, self.hd, 2).float() / self.hd))
        f = torch.outer(torch.arange(T).float(), inv); f = torch.cat((f, f), -1)
        cos, sin = f.cos(), f.sin()
        mask = torch.full((T, T), float("-inf")).triu(1)
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        logits = F.linear(self.norm(x), self.emb)
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))

def run(name, threads, warmup=1, steps=0, bf16=False):
    V, d, L, h, kv, ff, B, T = SHAPES[name]
    torch.manual_seed(0); torch.set_num_threads(threads)
    m = Model(V, d, L, h, kv, ff)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, V, (B, T))
    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = m(ids, ids)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    for _ in range(warmup): step()
    n = steps or (5 if name == "tiny-base" else 2)
    c = time.process_time()
    t = time.perf_counter()
    for _ in range(n): step()
    dt = (time.perf_counter() - t) / n
    cpu = (time.process_time() - c) / n
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"side": "torch", "torch": torch.__version__, "shape": name, "quant": "f32", "precision": "bf16" if bf16 else "f32", "threads": threads, "batch": B, "seq": T,
            "step_s": round(dt, 4), "tokens_per_s": round(B * T / dt, 1), "peak_rss_mib": round(rss, 1),
            "cpu_s_per_step": round(cpu, 4)}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=list(SHAPES), action="append")
    ap.add_argument("--threads", type=int, action="append")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--bf16", action="store_true", help="forward under torch.autocast(cpu, bfloat16)")
    a = ap.parse_args()
    print("torch", torch.__version__, file=sys.stderr)
    for name in a.shape or list(SHAPES):
        for th in a.threads or [1, 2]:
            print(json.dumps(run(name, th, a.warmup, a.steps, a.bf16)), flush=True)
