"""What constrained Commands decoding costs: the first (uncached) token sets, and whole generations.

For each request (a built-in plugin call, and a call of a declared tool with typed parameters,
as ``ChatMoss.bind_tools`` makes it), greedy on the embedded model or the one given:

- the generation time free, constrained with an empty token-set cache (every state computed),
  and constrained again with the cache warm (as every later generation of a process runs);
- how many states the constraint computed, and what the slowest one cost;

and what one state costs with a vocabulary as large as MOSS's (106000 tokens: the model's own
and pairs of them, as a stand-in), for a call's name, a built-in plugin's string, a declared
tool's first argument and a number in it, untyped and typed.

Usage: python bench/constraint_cost.py [MODEL] [--repeats 5] [--vocabulary 106000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from moss_agent.models.call_constraint import CallConstraint
from moss_agent.models.chat_prompt import call_types, messages_to_prompt, tools_to_plugins
from moss_agent.models.embedded import EMBEDDED_MODEL_NAME, resolve_model
from moss_agent.models.engine import GenerationEngine, SamplingParams
from moss_agent.models.loading import load_model
from moss_agent.protocol import FIRST_STOPS


def compute_chynslax(a: int, b: int) -> int:
    """Multiply two numbers."""
    return a * b


def _requests() -> list[tuple[str, str, dict[str, dict[str, str]] | None]]:
    from langchain_core.messages import HumanMessage

    tools = tools_to_plugins([compute_chynslax])
    builtin = messages_to_prompt([HumanMessage("1234乘以5678等于多少？")], [], enabled=["Calculate"]).text
    declared = messages_to_prompt([HumanMessage("Use the tool to multiply 547 by 690.")], tools).text
    return [
        ("Calculate (built in)", builtin, None),
        ("compute_chynslax(a: int, b: int)", declared, call_types(tools)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=EMBEDDED_MODEL_NAME)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vocabulary", type=int, default=106_000)
    args = parser.parse_args()
    engine = GenerationEngine(load_model(str(resolve_model(args.model))), reuse_cache=False)
    greedy = SamplingParams(do_sample=False, max_new_tokens=96)
    computed: list[float] = []
    original = CallConstraint._compute

    def timed(self, state, scanner):
        started = time.perf_counter()
        result = original(self, state, scanner)
        computed.append(time.perf_counter() - started)
        return result

    CallConstraint._compute = timed  # type: ignore[method-assign]
    print(
        f"model: {args.model}; vocabulary {len(engine.token_texts())} tokens; greedy, {args.repeats} repeats"
    )
    header = ("request", "free: tokens, s", "constrained: tokens", "cold cache s", "states computed")
    print("| " + " | ".join((*header, "slowest state ms", "warm cache s")) + " |")
    print("| --- " * 7 + "|")
    for label, prompt, types in _requests():

        def run(
            constrain: bool, prompt: str = prompt, types: dict[str, dict[str, str]] | None = types
        ) -> tuple[float, int, str]:
            started = time.perf_counter()
            out = engine.generate(
                prompt, stop=FIRST_STOPS, params=greedy, constrain_calls=constrain, call_types=types
            )
            return time.perf_counter() - started, out.completion_tokens, out.text

        run(False)  # warm up
        free_runs = [run(False) for _ in range(args.repeats)]
        free, free_tokens = statistics.median(r[0] for r in free_runs), free_runs[0][1]
        engine._constraint_cache.clear()
        computed.clear()
        cold, tokens, text = run(True)
        states, slowest = len(computed), max(computed, default=0.0)
        warm = statistics.median(run(True)[0] for _ in range(args.repeats))
        print(
            f"| {label} | {free_tokens}, {free:.3f} | {tokens} | {cold:.3f} | {states} | {1000 * slowest:.1f}"
            f" | {warm:.3f} |"
        )
        print(f"<!-- {text.strip()[-80:]!r} -->")

    _large_vocabulary(engine.token_texts(), args.vocabulary)


def _large_vocabulary(texts: list[str], size: int) -> None:
    from moss_agent.protocol import (
        COMMANDS_TAG,
        END_OF_HUMAN,
        HUMAN_TAG,
        PluginDeclaration,
        render_meta_instruction,
    )

    rng = random.Random(0)
    plain = [t for t in texts if not t.startswith("<")]
    vocabulary = [*texts, *(rng.choice(plain) + rng.choice(plain) for _ in range(size - len(texts)))]
    tool = PluginDeclaration("pair", "Two things", "pair(a, b)")
    prompt = (
        render_meta_instruction(["Calculate", "pair"], custom=[tool]) + f"{HUMAN_TAG}: hi{END_OF_HUMAN}\n"
    )
    warm_up = CallConstraint.for_prompt(prompt, vocabulary[:10], [0])
    assert warm_up is not None
    warm_up.allowed(f"{COMMANDS_TAG}: ")  # the first state of a process also imports torch
    print(f"\nOne state with {len(vocabulary)} tokens (ms):")
    print("| where | untyped | typed (a: int, b: str) |\n| --- | --- | --- |")
    for where in (": ", ': Calculate("1+', ": pair(", ": pair(a=12"):
        row = []
        for types in (None, {"pair": {"a": "int", "b": "str"}}):
            constraint = CallConstraint.for_prompt(prompt, vocabulary, [0], types=types)
            assert constraint is not None
            started = time.perf_counter()
            constraint.allowed(COMMANDS_TAG + where)
            row.append(f"{1000 * (time.perf_counter() - started):.0f}")
        print(f"| `{where[2:] or '(a call starts)'}` | {row[0]} | {row[1]} |")


if __name__ == "__main__":
    main()
