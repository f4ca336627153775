"""Teacher-forced loss of each turn section of checkpoints on a split, without generating.

A quick measure for comparing short training runs: the loss on the calls (``commands``) of a
held-out split tracks argument accuracy, and takes seconds instead of an eval's minutes.
The sections are the tokens SFT learns (MOSS's mask), each in the section it starts in;
``human`` is the user's own text, mostly unpredictable.

Usage:
    python bench/section_loss.py runs/a/sft/final runs/b/sft/final --data runs/a/data/test.jsonl --limit 300
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from moss_agent.models.loading import load_model
from moss_agent.train.sft import section_losses

ORDER = ("commands", "thoughts", "reply", "human", "results")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="checkpoint folders")
    parser.add_argument("--data", type=Path, required=True, help="MOSS-format JSONL conversations")
    parser.add_argument("--limit", type=int, default=300, help="first N conversations (default 300)")
    args = parser.parse_args()
    with args.data.open(encoding="utf-8") as lines:
        conversations = [json.loads(line) for line in itertools.islice(lines, args.limit) if line.strip()]
    print("| model | " + " | ".join(ORDER) + " |")
    print("| --- |" + " --- |" * len(ORDER))
    for folder in args.models:
        loaded = load_model(folder, dtype="float32", device="cpu")
        losses = section_losses(loaded.model, loaded.tokenizer, conversations)
        cells = [f"{losses[name].mean:.4f}" if name in losses else "-" for name in ORDER]
        print(f"| {folder} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
