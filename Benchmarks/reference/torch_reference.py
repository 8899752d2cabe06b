#!/usr/bin/env python3
"""PyTorch CPU reference for tovd's Swift surrogate (Sources/Surrogate).

Same architecture: learned positions, pre-LayerNorm blocks (causal multi-head attention, GELU-tanh MLP),
final LayerNorm, LM head tied to the token embedding. Modes:

  check DIR   DIR holds config.json, params.f32, grads.f32, batch.json written by
              `tovd bench export-reference DIR`. Compares per-example response losses (max abs diff
              must be <= 1e-4) and the gradients of the batch loss (mean over examples of each
              example's mean NLL), tensor by tensor.
  bench       Times scoring forward tokens/s and training-step tokens/s on the shapes tovd's
              benchmark uses, and prints one JSON line per config.
  score DIR   The ToV scoring workload of `tovd bench score`: DIR holds config.json, base_<l>.f32,
              val_<l>.f32 and rows.json (real rows, packed as tovd packs them). Scores every row under
              the L base and L val checkpoints in length-bucketed padded batches (inference_mode, SDPA
              causal, LM head at the target positions only) and prints one JSON line: rows/s for a
              first scoring (2L passes) and a rescoring (L passes, θ_val only), and each row's
              φ = mean_l (ℓ_bas^l − ℓ_val^l).
  train DIR   The daemon's training workloads of `tovd bench train`: DIR holds config.json, params.f32
              (the starting weights) and <workload>.json (each step's batch of real rows, packed as
              tovd packs them, its learning rate, weight decay and clipping). Per workload and repeat,
              trains from params.f32 with a fresh AdamW (β 0.9/0.95, ε 1e-8, decay on the tensors tovd
              decays, grad-norm clipping): each batch padded to its longest row, SDPA causal, LM head
              at the target positions only, loss = mean over rows of each row's mean NLL. Prints one
              JSON line per workload: seconds per repeat (one untimed warm-up step first) and the losses.

Install: pip install torch==2.13.0+cpu   (PyPI; CPU only)
"""
import argparse, json, math, os, sys, time

import torch
import torch.nn.functional as F


class Surrogate(torch.nn.Module):
    def __init__(self, layers, width, heads, context, vocab_size):
        super().__init__()
        C = width
        self.L, self.C, self.NH, self.T, self.V = layers, width, heads, context, vocab_size
        self.wte = torch.nn.Parameter(torch.randn(vocab_size, C) * 0.02)
        self.wpe = torch.nn.Parameter(torch.randn(context, C) * 0.02)
        def stack(*shape, fill=None):
            t = torch.randn(*shape) * 0.02 if fill is None else torch.full(shape, float(fill))
            return torch.nn.Parameter(t)
        self.ln1w, self.ln1b = stack(layers, C, fill=1), stack(layers, C, fill=0)
        self.qkvw, self.qkvb = stack(layers, 3 * C, C), stack(layers, 3 * C, fill=0)
        self.attprojw, self.attprojb = stack(layers, C, C), stack(layers, C, fill=0)
        self.ln2w, self.ln2b = stack(layers, C, fill=1), stack(layers, C, fill=0)
        self.fcw, self.fcb = stack(layers, 4 * C, C), stack(layers, 4 * C, fill=0)
        self.fcprojw, self.fcprojb = stack(layers, C, 4 * C), stack(layers, C, fill=0)
        self.lnfw, self.lnfb = stack(C, fill=1), stack(C, fill=0)

    ORDER = ["wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb", "ln2w", "ln2b",
             "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"]

    def hidden(self, tokens):
        """tokens: (B, T) -> final LayerNorm output (B, T, C)."""
        B, T = tokens.shape
        C, NH = self.C, self.NH
        x = self.wte[tokens] + self.wpe[:T]
        for l in range(self.L):
            h = F.layer_norm(x, (C,), self.ln1w[l], self.ln1b[l], 1e-5)
            qkv = h @ self.qkvw[l].T + self.qkvb[l]
            q, k, v = qkv.split(C, dim=2)
            q = q.view(B, T, NH, C // NH).transpose(1, 2)
            k = k.view(B, T, NH, C // NH).transpose(1, 2)
            v = v.view(B, T, NH, C // NH).transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            x = x + y @ self.attprojw[l].T + self.attprojb[l]
            h = F.layer_norm(x, (C,), self.ln2w[l], self.ln2b[l], 1e-5)
            h = F.gelu(h @ self.fcw[l].T + self.fcb[l], approximate="tanh")
            x = x + h @ self.fcprojw[l].T + self.fcprojb[l]
        return F.layer_norm(x, (C,), self.lnfw, self.lnfb, 1e-5)

    def example_losses(self, examples):
        """Per-example mean NLL over the target positions (one sequence at a time, no padding)."""
        out = []
        for ex in examples:
            tokens = torch.tensor([ex["input"]])
            h = self.hidden(tokens)[0, ex["target_positions"]]
            logits = h @ self.wte.T
            out.append(F.cross_entropy(logits, torch.tensor(ex["target_tokens"])))
        return torch.stack(out)


def load_params(directory, config, name):
    """A Surrogate with the arena in DIR/name (little-endian float32, tovd's ParameterLayout order)."""
    model = Surrogate(config["layers"], config["width"], config["heads"], config["context"], config["vocab_size"])
    flat = torch.frombuffer(bytearray(open(os.path.join(directory, name), "rb").read()), dtype=torch.float32)
    with torch.no_grad():
        for t in config["tensors"]:
            p = getattr(model, t["name"])
            n = p.numel()
            p.copy_(flat[t["offset"]:t["offset"] + n].view(p.shape))
    return model


def load(directory):
    config = json.load(open(os.path.join(directory, "config.json")))
    model = load_params(directory, config, "params.f32")
    grads = torch.frombuffer(bytearray(open(os.path.join(directory, "grads.f32"), "rb").read()), dtype=torch.float32)
    return model, config, grads


def score(directory, threads):
    torch.set_num_threads(threads)
    config = json.load(open(os.path.join(directory, "config.json")))
    L = config["epochs"]
    base = [load_params(directory, config, f"base_{l + 1}.f32") for l in range(L)]
    val = [load_params(directory, config, f"val_{l + 1}.f32") for l in range(L)]
    spec = json.load(open(os.path.join(directory, "rows.json")))
    rows, batch_size = spec["rows"], spec["batch_size"]
    # Length buckets: rows sorted by length, then batches of batch_size padded to their longest row.
    # Causal attention makes right padding harmless: no real position attends a later one.
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input"]))
    batches = []
    for start in range(0, len(order), batch_size):
        ids = order[start:start + batch_size]
        T = max(len(rows[i]["input"]) for i in ids)
        tokens = torch.zeros((len(ids), T), dtype=torch.long)
        b_idx, p_idx, targets, owner = [], [], [], []
        for b, i in enumerate(ids):
            r = rows[i]
            tokens[b, :len(r["input"])] = torch.tensor(r["input"])
            b_idx += [b] * len(r["target_positions"])
            p_idx += r["target_positions"]
            targets += r["target_tokens"]
            owner += [b] * len(r["target_tokens"])
        counts = torch.bincount(torch.tensor(owner), minlength=len(ids)).float()
        batches.append((ids, tokens, torch.tensor(b_idx), torch.tensor(p_idx), torch.tensor(targets), torch.tensor(owner), counts))

    def losses(model):
        out = torch.empty(len(rows))
        for ids, tokens, b_idx, p_idx, targets, owner, counts in batches:
            h = model.hidden(tokens)[b_idx, p_idx]
            nll = F.cross_entropy(h @ model.wte.T, targets, reduction="none")
            out[ids] = torch.zeros(len(ids)).index_add_(0, owner, nll) / counts
        return out

    with torch.inference_mode():
        losses(base[0])   # warm-up: allocator and thread pool
        start = time.perf_counter()
        base_losses = [losses(m) for m in base]
        val_losses = [losses(m) for m in val]
        first = time.perf_counter() - start
        start = time.perf_counter()
        for m in val:
            losses(m)
        rescore = time.perf_counter() - start
    phi = sum(b - v for b, v in zip(base_losses, val_losses)) / L
    print(json.dumps({"torch": torch.__version__, "threads": threads, "rows": len(rows),
                      "first_rows_per_s": len(rows) / first, "rescore_rows_per_s": len(rows) / rescore,
                      "phi": phi.tolist()}))


def check(directory):
    model, config, swift_grads = load(directory)
    batch = json.load(open(os.path.join(directory, "batch.json")))
    examples = batch["examples"]
    losses = model.example_losses(examples)
    ours = torch.tensor([e["loss"] for e in examples])
    loss_diff = (losses.detach() - ours).abs().max().item()
    print(f"per-example loss: max abs diff {loss_diff:.2e} over {len(examples)} examples")
    loss = losses.mean()
    loss.backward()
    worst = 0.0
    for t in config["tensors"]:
        p = getattr(model, t["name"])
        g = swift_grads[t["offset"]:t["offset"] + p.numel()].view(p.shape)
        diff = (p.grad - g).abs().max().item()
        scale = p.grad.abs().max().item()
        worst = max(worst, diff / max(scale, 1e-8))
        print(f"  grad {t['name']:9s} max abs diff {diff:.2e} (max |g| {scale:.2e})")
    ok = loss_diff <= 1e-4 and worst <= 1e-3
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


def bench(config_names, threads, seconds, sequences, prompt, response):
    torch.set_num_threads(threads)
    shapes = {"default": (4, 256, 4, 256, 4096), "large": (6, 320, 5, 256, 4096)}
    for name in config_names:
        L, C, NH, T, V = shapes[name]
        model = Surrogate(L, C, NH, T, V)
        g = torch.Generator().manual_seed(1)
        S = prompt + 1 + response
        tokens = torch.randint(0, V - 3, (sequences, S), generator=g)
        targets = torch.randint(0, V - 3, (sequences, response + 1), generator=g)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)

        def forward():
            with torch.no_grad():
                h = model.hidden(tokens)[:, prompt:]
                logits = h @ model.wte.T
                F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none")

        def train():
            opt.zero_grad(set_to_none=True)
            h = model.hidden(tokens)[:, prompt:]
            loss = F.cross_entropy((h @ model.wte.T).reshape(-1, V), targets.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

        def measure(fn):
            fn()
            runs, start = 0, time.perf_counter()
            while True:
                fn()
                runs += 1
                elapsed = time.perf_counter() - start
                if elapsed >= seconds:
                    return elapsed / runs

        n = sequences * S
        f, t = measure(forward), measure(train)
        print(json.dumps({"config": name, "threads": threads, "forward_tokens_per_s": n / f,
                          "train_tokens_per_s": n / t, "torch": torch.__version__}))


def train(directory, threads, workloads, repeats):
    torch.set_num_threads(threads)
    config = json.load(open(os.path.join(directory, "config.json")))

    def padded(batch):
        T = max(len(r["input"]) for r in batch)
        tokens = torch.zeros((len(batch), T), dtype=torch.long)
        b_idx, p_idx, targets, owner = [], [], [], []
        for b, r in enumerate(batch):
            tokens[b, :len(r["input"])] = torch.tensor(r["input"])
            b_idx += [b] * len(r["target_positions"])
            p_idx += r["target_positions"]
            targets += r["target_tokens"]
            owner += [b] * len(r["target_tokens"])
        counts = torch.bincount(torch.tensor(owner), minlength=len(batch)).float()
        return tokens, torch.tensor(b_idx), torch.tensor(p_idx), torch.tensor(targets), torch.tensor(owner), counts

    for name in workloads:
        spec = json.load(open(os.path.join(directory, f"{name}.json")))
        batches = [padded(b) for b in spec["batches"]]
        rates = spec["learning_rates"]

        def fresh():
            model = load_params(directory, config, "params.f32")
            decay = [getattr(model, t["name"]) for t in config["tensors"] if t["decays"]]
            rest = [getattr(model, t["name"]) for t in config["tensors"] if not t["decays"]]
            opt = torch.optim.AdamW([{"params": decay, "weight_decay": spec["weight_decay"]},
                                     {"params": rest, "weight_decay": 0.0}],
                                    lr=rates[0], betas=(0.9, 0.95), eps=1e-8)
            return model, opt

        def step(model, opt, batch, lr):
            tokens, b_idx, p_idx, targets, owner, counts = batch
            opt.zero_grad(set_to_none=True)
            h = model.hidden(tokens)[b_idx, p_idx]
            nll = F.cross_entropy(h @ model.wte.T, targets, reduction="none")
            loss = (torch.zeros(len(counts)).index_add_(0, owner, nll) / counts).mean()
            loss.backward()
            if spec["clip_norm"] > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), spec["clip_norm"])
            for group in opt.param_groups:
                group["lr"] = lr
            opt.step()
            return loss.item()

        seconds, losses = [], []
        for _ in range(repeats):
            model, opt = fresh()
            largest = max(batches, key=lambda b: b[0].numel())
            step(model, opt, largest, 0.0)   # warm-up: allocator and thread pool
            model, opt = fresh()
            start = time.perf_counter()
            losses = [step(model, opt, b, lr) for b, lr in zip(batches, rates)]
            seconds.append(time.perf_counter() - start)
        print(json.dumps({"torch": torch.__version__, "threads": threads, "workload": name,
                          "seconds": seconds, "losses": losses,
                          "padded_tokens": sum(b[0].numel() for b in batches)}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("check"); c.add_argument("directory")
    s = sub.add_parser("score"); s.add_argument("directory"); s.add_argument("--threads", type=int, default=2)
    t = sub.add_parser("train"); t.add_argument("directory"); t.add_argument("--threads", type=int, default=2)
    t.add_argument("--workloads", default="pretrain,base,val"); t.add_argument("--repeats", type=int, default=1)
    b = sub.add_parser("bench")
    b.add_argument("--config", action="append", default=None)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--seconds", type=float, default=3)
    b.add_argument("--sequences", type=int, default=16)
    b.add_argument("--prompt", type=int, default=127)
    b.add_argument("--response", type=int, default=127)
    args = parser.parse_args()
    if args.mode == "check":
        sys.exit(check(args.directory))
    if args.mode == "score":
        sys.exit(score(args.directory, args.threads))
    if args.mode == "train":
        sys.exit(train(args.directory, args.threads, args.workloads.split(","), args.repeats))
    bench(args.config or ["default", "large"], args.threads, args.seconds, args.sequences, args.prompt, args.response)
