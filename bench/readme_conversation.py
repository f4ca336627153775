"""The README's main command as a rate: its two-question conversation with 40 sets of numbers.

``moss-agent ask "鸡兔同笼，共有35个头，94只脚，鸡和兔各有几只？" "What is 1234 multiplied by 5678?"``
asks both questions in one conversation, so the product is asked after a Chinese 鸡兔同笼 turn
with its Solve call and Results in the context. ``evals/suites/readme-probe.jsonl`` asks each
question on its own (an eval case's earlier turns are written as no-call turns), which misses
what that context does to the second answer. This script runs the conversation itself, greedy,
through the same agent as ``ask`` (plugins, tools, embedded search corpus), with the probe's
number sets paired in order (the README's own numbers first), and counts per turn:

- ``call``: the right tool with arguments whose result is right (Solve: the two solutions;
  Calculate: the product);
- ``answer``: the reply names the right numbers (``鸡有23只`` and ``兔有12只``; the product);
- ``product reply clean``: the product's reply names no number but the two factors and the product
  (``5678 × 5678 = 7006652`` is a right answer but not a clean reply);
- ``both turns``: conversations whose two answers are right.

``--full-history`` keeps the first turn's Results in the second prompt (the agent's
``compress_history=False``, ``ask --keep-results``); by default they are compressed to ``None``,
as ``ask`` does.

Usage: ``python bench/readme_conversation.py [MODEL ...] [--sets 40] [--full-history] [--one-by-one]``
(no model: the embedded one). Turns of all conversations are generated as one batch per turn, or
with ``--one-by-one`` each on its own as ``ask`` does (greedy results can differ where the model
finds two tokens almost equally likely).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evals" / "suites"))

from make_readme_probe import CAGE, PRODUCT, cases  # noqa: E402


def number_sets(count: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """``((chickens, rabbits), (a, b))`` of the probe's cases, paired in order."""
    probe = cases()
    cage = [tuple(int(v) for v in c["expect"]["solution_values"]) for c in probe if c["category"] == "solve"]
    products = [
        tuple(int(v) for v in c["reference"].split("*")) for c in probe if c["category"] == "calculate"
    ]
    return list(zip(cage, products))[:count]  # type: ignore[arg-type]


def _output(record: Any, tool: str) -> str | None:
    """The text output of the turn's first call of ``tool``."""
    for call in record.tool_calls:
        if call.invocation.name == tool and isinstance(call.result.output, str):
            return call.result.output
    return None


def score(
    model: str | None, sets: int, *, full_history: bool = False, one_by_one: bool = False
) -> dict[str, int]:
    """Counts of right calls and answers per turn over ``sets`` conversations."""
    from moss_agent.agent import run_batch
    from moss_agent.cli import _build_agent

    pairs = number_sets(sets)
    agents = [_build_agent(model, greedy=True, keep_results=full_history)]
    from moss_agent.agent import MossAgent

    base = agents[0]
    assert isinstance(base, MossAgent)
    agents += [  # one agent per conversation, all on one model
        MossAgent(
            base.llm,
            tools=base.tools,
            plugins=base.plugins,
            max_context_tokens=base.max_context_tokens,
            compress_history=base.compress_history,
        )
        for _ in pairs[1:]
    ]
    turn = (lambda batch: [agent.run(query) for agent, query in batch]) if one_by_one else run_batch
    first = turn(
        [(agent, CAGE.format(heads=c + r, legs=2 * c + 4 * r)) for agent, ((c, r), _) in zip(agents, pairs)]
    )
    second = turn([(agent, PRODUCT.format(a=a, b=b)) for agent, (_, (a, b)) in zip(agents, pairs)])
    counts = {
        "sets": len(pairs),
        "cage call": 0,
        "cage answer": 0,
        "product call": 0,
        "product answer": 0,
        "product reply clean": 0,
        "both turns": 0,
    }
    for one, two, ((c, r), (a, b)) in zip(first, second, pairs):
        solved = _output(one, "Solve") or ""
        values = sorted(line.split(" = ", 1)[1].strip() for line in solved.splitlines() if " = " in line)
        counts["cage call"] += values == sorted([str(c), str(r)])
        cage_right = f"鸡有{c}只" in one.reply and f"兔有{r}只" in one.reply
        counts["cage answer"] += cage_right
        counts["product call"] += (_output(two, "Calculate") or "").strip() == str(a * b)
        product_right = str(a * b) in two.reply
        counts["product answer"] += product_right
        # and every number of the reply is one of the question's or the product (no "5678 × 5678")
        counts["product reply clean"] += product_right and set(re.findall(r"\d+", two.reply)) <= {
            str(a),
            str(b),
            str(a * b),
        }
        counts["both turns"] += cage_right and product_right
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="checkpoint folders (default: the embedded model)")
    parser.add_argument("--sets", type=int, default=40, help="conversations (number sets), at most 40")
    parser.add_argument(
        "--full-history", action="store_true", help="keep the first turn's Results in the second prompt"
    )
    parser.add_argument(
        "--one-by-one",
        action="store_true",
        help="generate each conversation on its own, as `ask` does (default: one batch per turn; greedy "
        "results can differ where two tokens are almost tied)",
    )
    args = parser.parse_args()
    rows = [
        (
            model or "embedded",
            score(model, args.sets, full_history=args.full_history, one_by_one=args.one_by_one),
        )
        for model in (args.models or [None])
    ]
    keys = list(rows[0][1])
    print("| model | " + " | ".join(keys) + " |")  # noqa: T201
    print("|" + " --- |" * (len(keys) + 1))  # noqa: T201
    for name, counts in rows:
        print(f"| {name} | " + " | ".join(str(counts[k]) for k in keys) + " |")  # noqa: T201


if __name__ == "__main__":
    main()
