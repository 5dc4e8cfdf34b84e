"""Training smoke run: a tiny BERT learns from the stage-2 shards with MLM + NT-Xent (the paper's two losses).

    python bench/train_smoke.py [--shards OUT/shards] [--steps 150]

Needs torch and transformers (not dependencies of twhin-data: `pip install torch==2.13.0
transformers`). Without --shards it runs `twhin-data run` on the bundled sample first. The model is
a 2-layer BERT (hidden 64) over the shards' vocabulary; each step takes one MLM batch
(`twhin_data.training.loader.mlm_batches`, split stage2_train, dynamic masking) and one
contrastive pair batch (`pair_batches`: the shard's batches in order, no tweet twice), and
minimizes MLM cross-entropy + NT-Xent (each tweet's <s> vector, cosine / temperature 0.1, the
batch's other tweets as negatives, both directions). Prints the losses and whether both fell
(mean of the last 10 steps below the mean of the first 10); exit 1 if not. On CPU, 2 threads.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from twhin_data.training.loader import manifest, mlm_batches, pair_batches  # noqa: E402


def nt_xent(a, b, temperature: float = 0.1):
    import torch
    import torch.nn.functional as F

    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0])
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", default=None)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    tmp = None
    shards = args.shards
    if shards is None:
        tmp = tempfile.TemporaryDirectory(prefix="train-smoke-")
        subprocess.run([sys.executable, "-m", "twhin_data", "run", "--output", tmp.name], check=True, stdout=subprocess.DEVNULL)
        shards = os.path.join(tmp.name, "shards")
    info = manifest(shards)
    config = BertConfig(
        vocab_size=info["tokenizer"]["vocab_size"],
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=info["max_length"] + 2,
        pad_token_id=info["pad_id"],
    )
    model = BertForMaskedLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    mlm = itertools.cycle(list(mlm_batches(shards, "stage2_train", batch_size=16, seed=args.seed)))
    pairs = itertools.cycle([b for b in pair_batches(shards, "train") if len(b["tweet_id_a"]) > 1])
    losses = {"mlm": [], "nt_xent": []}
    start = time.perf_counter()
    model.train()
    for _ in range(args.steps):
        m = next(mlm)
        out = model(
            input_ids=torch.from_numpy(m["input_ids"]),
            attention_mask=torch.from_numpy(m["attention_mask"]),
            labels=torch.from_numpy(m["labels"]),
        )
        p = next(pairs)
        sides = []
        for side in ("a", "b"):
            hidden = model.bert(
                input_ids=torch.from_numpy(p[f"input_ids_{side}"]),
                attention_mask=torch.from_numpy(p[f"attention_mask_{side}"]),
            ).last_hidden_state
            sides.append(hidden[torch.arange(hidden.shape[0]), torch.from_numpy(p[f"cls_{side}"])])
        contrastive = nt_xent(*sides)
        loss = out.loss + contrastive
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses["mlm"].append(round(float(out.loss.detach()), 4))
        losses["nt_xent"].append(round(float(contrastive.detach()), 4))
    elapsed = time.perf_counter() - start
    fell = {k: sum(v[-10:]) / 10 < sum(v[:10]) / 10 for k, v in losses.items()}
    result = {
        "steps": args.steps,
        "elapsed_s": round(elapsed, 1),
        "first_10_mean": {k: round(sum(v[:10]) / 10, 4) for k, v in losses.items()},
        "last_10_mean": {k: round(sum(v[-10:]) / 10, 4) for k, v in losses.items()},
        "both_fell": all(fell.values()),
        "losses": losses,
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps(result, indent=1))
    if tmp is not None:
        tmp.cleanup()
    return 0 if result["both_fell"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
