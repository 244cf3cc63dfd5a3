"""PyTorch reference for `pnpm bench`: the same shapes, printed as JSON lines.

Run with Debian's PyTorch: /usr/bin/python3 bench/torch_reference.py [--runs N] [--only a,b]
(`pnpm bench --torch` runs it for you). PyTorch uses its default threads (OpenBLAS) on purpose:
see PERFORMANCE-NOTES.md.
"""
import argparse
import json
import math
import statistics
import time

import torch


def measure(runs, step):
    step()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def emit(name, timing, runs, tokens=None, **extra):
    med, low = timing
    row = {"name": name, "backend": "torch", "matmul": "torch", "threads": torch.get_num_threads(),
           "median_ms": round(med, 2), "min_ms": round(low, 2), "runs": runs, **extra}
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


BENCHMARKS = {"matmul": matmul, "encoder-layer": encoder_layer, "seed-base": seed_base}

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
