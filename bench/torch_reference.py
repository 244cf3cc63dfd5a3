"""PyTorch reference for `pnpm bench`: the same shapes, printed as JSON lines.

Run with Debian's PyTorch: /usr/bin/python3 bench/torch_reference.py [--runs N] [--only a,b]
(`pnpm bench --torch` runs it for you). PyTorch uses its default threads (OpenBLAS) on purpose:
see PERFORMANCE-NOTES.md.
"""
import argparse
import copy
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F


# Warm-up, the same as MIE's (bench/src/index.ts): at least 2 calls and 1 s of them, at most 5.
WARMUP_MIN_CALLS, WARMUP_MAX_CALLS, WARMUP_S = 2, 5, 1.0


def measure(runs, step):
    warmup_start = time.perf_counter()
    first = None
    for calls in range(WARMUP_MAX_CALLS):
        start = time.perf_counter()
        step()
        if first is None:
            first = (time.perf_counter() - start) * 1000
        if calls + 1 >= WARMUP_MIN_CALLS and time.perf_counter() - warmup_start >= WARMUP_S:
            break
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times), max(times), first


def emit(name, timing, runs, tokens=None, **extra):
    med, low, high, first = timing
    row = {"name": name, "backend": "torch", "matmul": "torch", "threads": torch.get_num_threads(),
           "median_ms": round(med, 2), "min_ms": round(low, 2), "max_ms": round(high, 2), "first_ms": round(first, 2), "runs": runs, **extra}
    if tokens:
        row["tokens_per_s"] = round(tokens * 1000 / med, 1)
    print(json.dumps(row), flush=True)


def encoder_layer(runs):
    layer = torch.nn.TransformerEncoderLayer(512, 8, 2048, 0.1, batch_first=True)
    x = torch.randn(8, 128, 512)
    with torch.no_grad():
        emit("encoder-layer-forward", measure(runs, lambda: layer(x)), runs, 8 * 128)

    def train():
        layer.zero_grad()
        layer(x).mean().backward()

    emit("encoder-layer-train", measure(runs, train), runs, 8 * 128)


class Seq2Seq(torch.nn.Module):
    """The design's example model: shared embeddings, sinusoidal positions, post-norm, tied output."""

    def __init__(self, vocab=10000, d=512, heads=8, layers=6, d_ff=2048, dropout=0.1, max_len=512):
        super().__init__()
        self.d = d
        self.embedding = torch.nn.Embedding(vocab, d)
        pe = torch.zeros(max_len, d)
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        self.register_buffer("pe", pe)
        self.dropout = torch.nn.Dropout(dropout)
        self.encoder = torch.nn.ModuleList([torch.nn.TransformerEncoderLayer(d, heads, d_ff, dropout, batch_first=True) for _ in range(layers)])
        self.decoder = torch.nn.ModuleList([torch.nn.TransformerDecoderLayer(d, heads, d_ff, dropout, batch_first=True) for _ in range(layers)])

    def embed(self, ids):
        return self.dropout(self.embedding(ids) * math.sqrt(self.d) + self.pe[: ids.shape[1]])

    def forward(self, src, tgt):
        memory = self.embed(src)
        for layer in self.encoder:
            memory = layer(memory)
        causal = torch.triu(torch.full((tgt.shape[1], tgt.shape[1]), float("-inf")), 1)
        x = self.embed(tgt)
        for layer in self.decoder:
            x = layer(x, memory, tgt_mask=causal)
        return x @ self.embedding.weight.T


def seed_base(runs):
    model = Seq2Seq()
    src, tgt, targets = (torch.randint(0, 10000, (8, 64)) for _ in range(3))
    model.eval()
    with torch.no_grad():
        emit("seed-base-forward", measure(runs, lambda: model(src, tgt)), runs, 8 * 64)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)

    def train():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(src, tgt).reshape(-1, 10000), targets.reshape(-1))
        loss.backward()
        optimizer.step()

    emit("seed-base-train", measure(runs, train), runs, 8 * 64)


BOS = 1


def heads_of(x, heads):
    return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)  # [b, t, h*d] -> [b, h, t, d]


def attend(attention, q, k, v):
    """Scaled dot-product attention of q [b, h, 1, d] over k, v [b, h, t, d], then `attention`'s output projection."""
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)
    out = (weights @ v).transpose(1, 2).flatten(2)  # [b, h, 1, d] -> [b, 1, h*d]
    return attention.out_proj(out)


def decoder_step(layer, x, t, cache, memory_kv):
    """Position t, x [1, 1, d], through a post-norm nn.TransformerDecoderLayer in eval mode (its own
    weights; dropout is the identity), appending its self-attention keys/values to `cache`."""
    self_attn, cross_attn, d = layer.self_attn, layer.multihead_attn, x.shape[-1]
    q, k, v = (heads_of(y, self_attn.num_heads) for y in F.linear(x, self_attn.in_proj_weight, self_attn.in_proj_bias).chunk(3, -1))
    cache[0][:, :, t : t + 1], cache[1][:, :, t : t + 1] = k, v
    x = layer.norm1(x + attend(self_attn, q, cache[0][:, :, : t + 1], cache[1][:, :, : t + 1]))
    q = heads_of(F.linear(x, cross_attn.in_proj_weight[:d], cross_attn.in_proj_bias[:d]), cross_attn.num_heads)
    x = layer.norm2(x + attend(cross_attn, q, *memory_kv))
    return layer.norm3(x + layer.linear2(layer.activation(layer.linear1(x))))


def start_decoding(model, src):
    """Encodes batch-1 `src` once and projects each decoder layer's cross-attention keys/values once;
    returns that state with empty self-attention caches for up to `model.pe`'s length."""
    d = model.d
    memory = model.embed(src)
    for layer in model.encoder:
        memory = layer(memory)
    memory_kv, caches = [], []
    for layer in model.decoder:
        w, b, heads = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias, layer.multihead_attn.num_heads
        memory_kv.append((heads_of(F.linear(memory, w[d : 2 * d], b[d : 2 * d]), heads), heads_of(F.linear(memory, w[2 * d :], b[2 * d :]), heads)))
        caches.append([torch.empty(1, heads, model.pe.shape[0], d // heads, dtype=memory.dtype) for _ in range(2)])
    return memory_kv, caches


def step_logits(model, state, token, t):
    """The logits [vocab] after feeding `token` at position t: only that token runs through the decoder."""
    memory_kv, caches = state
    x = model.dropout(model.embedding(torch.tensor([[token]])) * math.sqrt(model.d) + model.pe[t])
    for layer, cache, kv in zip(model.decoder, caches, memory_kv):
        x = decoder_step(layer, x, t, cache, kv)
    return x[0, -1] @ model.embedding.weight.T


def greedy_kv(model, src, new_tokens):
    """Greedy decoding with key/value caches; returns the new tokens (BOS excluded)."""
    state, token, tokens = start_decoding(model, src), BOS, []
    for t in range(new_tokens):
        token = int(step_logits(model, state, token, t).argmax())
        tokens.append(token)
    return tokens


def check_kv_step(model, src, length=32):
    """The cached steps' logits over a random prefix equal one uncached forward of that prefix, to
    1e-4. In float64: in float32 the two orders of summation already differ by up to about 1e-3
    on logits near 400 (the tied output of an untrained model)."""
    model = copy.deepcopy(model).double()
    prefix = [BOS] + torch.randint(0, model.embedding.num_embeddings, (length - 1,)).tolist()
    state = start_decoding(model, src)
    cached = torch.stack([step_logits(model, state, token, t) for t, token in enumerate(prefix)])
    diff = (cached - model(src, torch.tensor([prefix]))[0]).abs().max().item()
    if diff > 1e-4:
        raise RuntimeError(f"generate-kv: cached decoding's logits differ from a full forward by {diff:.3g} (tolerance 1e-4)")


def generate_kv(runs):
    """MIE's generate-kv: the example model untrained (no EOS, exactly N tokens), batch 1, source 64;
    the 256-token run is timed min(runs, 2) times, as MIE does."""
    model = Seq2Seq().eval()
    src = torch.randint(0, 10000, (1, 64))
    timings = {}
    with torch.no_grad():
        check_kv_step(model, src)
        for tokens in (32, 256):
            n = max(1, min(runs, 2 if tokens > 100 else runs))
            timings[tokens] = measure(n, lambda: greedy_kv(model, src, tokens))
            extra = {"ratio_to_32": round(timings[256][0] / timings[32][0], 2)} if tokens == 256 else {}
            emit(f"generate-kv-{tokens}", timings[tokens], n, tokens, **extra)


def matmul(runs):
    cases = [("matmul-dense-forward", (512, 512), (2048, 512), False, True),
             ("matmul-weight-grad", (512, 512), (512, 2048), True, False),
             ("matmul-vocab", (512, 512), (10000, 512), False, True),
             ("matmul-attention", (64, 64, 64), (64, 64, 64), False, True)]
    runs = max(runs, 10)
    for name, a_shape, b_shape, ta, tb in cases:
        a, b = torch.randn(*a_shape), torch.randn(*b_shape)
        op_a = a.transpose(-1, -2) if ta else a
        op_b = b.transpose(-1, -2) if tb else b
        flops = 2 * op_a.shape[-2] * op_a.shape[-1] * op_b.shape[-1] * (a_shape[0] if len(a_shape) == 3 else 1)
        timing = measure(runs, lambda: torch.matmul(op_a, op_b))
        emit(name, timing, runs, gflops=round(flops / timing[0] / 1e6, 1))


BENCHMARKS = {"matmul": matmul, "encoder-layer": encoder_layer, "seed-base": seed_base, "generate-kv": generate_kv}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    wanted = [w for w in args.only.split(",") if w]
    torch.manual_seed(0)
    for name, bench in BENCHMARKS.items():
        if not wanted or any(w.startswith(name) or name.startswith(w) for w in wanted):
            bench(args.runs)
