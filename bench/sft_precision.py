"""Seconds per SFT step of a recipe run's model in float32, in bf16, and in bf16 with float32 attention.

The recipe's SFT (``moss-agent train recipe``, ``--mixed-precision auto``) trains in bf16 with
attention kept in float32 where the CPU computes bf16 natively. This measures why: the same
batches (the recipe's own, by length, with the shared prompt prefix) through the loss, its
backward pass and an AdamW step, each way, from the same start. It also prints each way's mean
loss over the timed steps, which should agree to about a percent.

Usage:
    python bench/sft_precision.py runs/tiny --steps 30
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from pathlib import Path

import torch

from moss_agent.models.loading import load_model
from moss_agent.models.number_slots import SlotScheme
from moss_agent.train import sft

WAYS = ("float32", "bf16", "bf16, float32 attention")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a recipe run folder (its init/ and data/train.jsonl)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per way (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--conversations", type=int, default=2000, help="first N training conversations")
    args = parser.parse_args()
    train = args.run / "data" / "train.jsonl"
    subset = Path("/tmp") / f"sft_precision_{args.conversations}.jsonl"
    with train.open(encoding="utf-8") as lines:
        subset.write_text("".join(itertools.islice(lines, args.conversations)), encoding="utf-8")
    print(f"| way | s/step ({args.steps} steps, batch 16) | mean loss |")
    print("| --- | --- | --- |")
    for way in WAYS:
        loaded = load_model(str(args.run / "init"), dtype="float32", device="cpu")
        model, tokenizer = loaded.model, loaded.tokenizer
        model.train()
        sft._fuse_activations(model)
        if way == WAYS[2]:
            sft._float32_attention(model)
        examples = sft.load_examples(
            [str(subset)],
            tokenizer,
            max_length=768,
            mask_human=False,
            number_slots=SlotScheme.of(model.config),
        )
        batches = sft._batches(examples, 16, random.Random(0))[: args.warmup + args.steps]
        optimizer = torch.optim.AdamW(model.parameters(), lr=1.5e-3, betas=(0.9, 0.95))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        losses: list[float] = []
        started = 0.0
        for index, batch_ids in enumerate(batches):
            if index == args.warmup:
                started = time.perf_counter()
            prefix, batch = sft._step_inputs([examples[i] for i in batch_ids], pad)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=way != "float32"):
                loss = sft._loss(model, batch, prefix)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if index >= args.warmup:
                losses.append(float(loss.detach()))
        seconds = (time.perf_counter() - started) / args.steps
        print(f"| {way} | {seconds:.3f} | {sum(losses) / len(losses):.4f} |")


if __name__ == "__main__":
    main()
