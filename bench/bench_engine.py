"""Throughput of the generation engine on tiny MOSS-format checkpoints (CPU is fine).

Measures, per model size:
- tokens/s of a plugin conversation (4 calls: Commands, reply, next turn's Commands and
  reply) with and without KV-cache reuse, greedy;
- tokens/s of 8 prompts as one batch vs one by one, greedy.

Usage: python bench/bench_engine.py [--threads N] [--tokens 64] [--device cuda --dtype float16]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from moss_agent.models.engine import GenerationEngine, SamplingParams
from moss_agent.models.loading import load_model
from moss_agent.models.tiny import build_tiny_moss_checkpoint, build_tiny_tokenizer

META = (
    "You are an AI assistant whose name is MOSS.\n- MOSS is a conversational language model.\n"
    * 6
    + "Capabilities and tools that MOSS can possess.\n- Inner thoughts: enabled.\n"
    "- Web search: enabled. API: Search(query)\n- Calculator: enabled. API: Calculate(expression)\n"
)
RESULTS = (
    "<|Results|>:\nSearch(\"weather\") =>\n<|1|>: 'Sunny, 25 degrees, light wind from the east.'\n"
    "<|2|>: 'Tomorrow: rain in the afternoon.'\n<eor>\n<|MOSS|>:"
)
TEXTS = [META, RESULTS] + [
    f"<|Human|>: What is {i} plus {2 * i}? And the weather in city {i}?<eoh>\n"
    f"<|Inner Thoughts|>: search<eot>\n"
    f'<|Commands|>: Search("weather {i}"), Calculate("{i}+{2 * i}")<eoc>\n<|MOSS|>: It is {3 * i}.<eom>'
    for i in range(200)
]
SIZES = {"tiny (2 layers, 64 dims)": (2, 64, 4), "small (4 layers, 256 dims)": (4, 256, 8)}
#: Only worth timing on a GPU (``--device cuda``).
GPU_SIZES = {"medium (12 layers, 1024 dims)": (12, 1024, 16)}


def conversation(
    engine: GenerationEngine, params: SamplingParams, reuse: bool
) -> tuple[int, float, int, float]:
    """A two-turn plugin conversation: (generated tokens, seconds, reused prompt tokens, prefill seconds)."""
    prompt = META + "<|Human|>: What is the weather like today?<eoh>\n"
    tokens, reused, prefill, started = 0, 0, 0.0, time.perf_counter()
    for _ in range(2):
        for stop, suffix in (
            ("<eoc>", "<eoc>\n" + RESULTS),
            ("<eom>", "<eom>\n<|Human|>: And tomorrow?<eoh>\n"),
        ):
            generation = engine.generate(prompt, stop=[stop], params=params, reuse_cache=reuse)
            tokens += generation.completion_tokens
            reused += generation.cached_tokens
            prefill += generation.timings.prefill_s
            prompt += generation.text + suffix
    return tokens, time.perf_counter() - started, reused, prefill


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--tokens", type=int, default=64, help="max new tokens per call")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="auto", help="auto, float16, bfloat16 or float32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = SamplingParams(do_sample=False, max_new_tokens=args.tokens, repetition_penalty=1.0)
    tokenizer = build_tiny_tokenizer(TEXTS, vocab_size=1000)
    print(
        f"torch threads: {args.threads}, max_new_tokens: {args.tokens}, device: {args.device}, "
        f"dtype: {args.dtype}, greedy"
    )
    sizes = {**SIZES, **(GPU_SIZES if args.device.startswith("cuda") else {})}
    for label, (n_layer, n_embd, n_head) in sizes.items():
        with tempfile.TemporaryDirectory() as folder:
            build_tiny_moss_checkpoint(
                folder, tokenizer=tokenizer, n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_positions=2048
            )
            engine = GenerationEngine(load_model(folder, device=args.device, dtype=args.dtype))
        engine.generate("<|Human|>: warm up", params=params)
        print(f"\n{label}")
        for reuse in (False, True):
            tokens, seconds, reused, prefill = conversation(engine, params, reuse)
            print(
                f"  conversation, reuse_cache={reuse!s:5}: {tokens:4d} tokens in {seconds:6.2f}s"
                f" = {tokens / seconds:7.1f} tok/s; prefill {prefill:5.2f}s"
                f" (prompt tokens from cache: {reused})"
            )
        prompts = [f"{META}<|Human|>: Question number {i}: {'why ' * (3 * i)}?<eoh>\n" for i in range(8)]
        started = time.perf_counter()
        singles = [engine.generate(p, params=params, reuse_cache=False) for p in prompts]
        one_by_one = time.perf_counter() - started
        started = time.perf_counter()
        batch = engine.generate_batch(prompts, params=params)
        batched = time.perf_counter() - started
        same = sum(b.text == s.text for b, s in zip(batch, singles))
        if same < len(batch):  # float16/bfloat16 padding can flip a near-tie; float32 must not
            print(f"  WARNING: {len(batch) - same} of {len(batch)} batched texts differ from one by one")
        tokens = sum(g.completion_tokens for g in batch)
        rate = tokens / one_by_one
        print(f"  8 prompts one by one: {tokens:4d} tokens in {one_by_one:6.2f}s = {rate:7.1f} tok/s")
        rate = tokens / batched
        print(f"  8 prompts as a batch: {tokens:4d} tokens in {batched:6.2f}s = {rate:7.1f} tok/s")


if __name__ == "__main__":
    main()
