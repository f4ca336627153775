"""Run the CUDA paths of the model runtime and print (and save) what they measure.

For each loading mode — float32 on the CPU (the reference), then on the GPU: float32,
``dtype="auto"`` (float16 for MOSS), bfloat16, 8-bit and 4-bit (bitsandbytes) and
``device_map="auto"`` — this loads

- the embedded model, and runs the README's two questions through ``MossAgent`` (greedy),
  recording the calls, their results and the replies, and whether they equal the CPU's;
- a random MOSS-architecture checkpoint of ~150M parameters (12 layers, 1024 dims), and
  times greedy generation (tokens/s, one prompt and a batch of 8).

It records load time, the model's memory footprint and the GPU's peak memory. A mode that
fails is recorded with its error, and the others still run (each mode runs in its own
process: a CUDA error is sticky, and one out-of-memory once spoiled every later mode).

Usage: python bench/cuda_check.py [--out cuda_check.json] [--modes cpu,fp16,...]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from moss_agent.agent import MossAgent
from moss_agent.models.embedded import embedded_model_path
from moss_agent.models.engine import GenerationEngine, SamplingParams
from moss_agent.models.llm import MossLLM
from moss_agent.models.loading import load_model
from moss_agent.models.tiny import build_tiny_moss_checkpoint

QUESTIONS = ["鸡兔同笼，共有35个头，94只脚，鸡和兔各有几只？", "What is 1234 multiplied by 5678?"]
MODES: dict[str, dict[str, Any]] = {
    "cpu": {"device": "cpu", "dtype": "float32"},
    "fp32": {"device": "cuda", "dtype": "float32"},
    "auto": {"device": "cuda"},
    "bf16": {"device": "cuda", "dtype": "bfloat16"},
    "int8": {"device": "cuda", "load_in_8bit": True},
    "nf4": {"device": "cuda", "load_in_4bit": True},
    "device_map": {"device_map": "auto"},
}
PROMPT = (
    "You are an AI assistant whose name is MOSS.\n- Inner thoughts: enabled.\n"
    "- Calculator: enabled. API: Calculate(expression)\n<|Human|>: What is the weather like today?<eoh>\n"
)


def _reset_gpu() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _gpu_peak_mb() -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None


def agent_run(mode: dict[str, Any]) -> dict[str, Any]:
    """The README's questions through MossAgent on the embedded model."""
    _reset_gpu()
    started = time.perf_counter()
    llm = MossLLM(model=str(embedded_model_path()), do_sample=False, max_new_tokens=256, **mode)
    loaded = llm.engine.loaded
    load_s = time.perf_counter() - started
    agent = MossAgent(llm)
    turns = []
    started = time.perf_counter()
    for question in QUESTIONS:
        record = agent.run(question)
        turns.append(
            {
                "calls": [c.invocation.text for c in record.tool_calls],
                "results": [str(c.result.output)[:200] for c in record.tool_calls],
                "reply": record.reply,
            }
        )
    return {
        "load_s": round(load_s, 2),
        "answer_s": round(time.perf_counter() - started, 2),
        "device": str(loaded.device),
        "dtype": str(next(loaded.model.parameters()).dtype),
        "footprint_mb": round(loaded.model.get_memory_footprint() / 2**20, 1),
        "gpu_peak_mb": _gpu_peak_mb(),
        "turns": turns,
    }


def throughput(folder: Path, mode: dict[str, Any], tokens: int) -> dict[str, Any]:
    """Greedy tokens/s of a random ~150M-parameter MOSS checkpoint."""
    _reset_gpu()
    started = time.perf_counter()
    engine = GenerationEngine(load_model(folder, **mode))
    load_s = time.perf_counter() - started
    params = SamplingParams(do_sample=False, max_new_tokens=tokens, repetition_penalty=1.0)
    engine.generate("<|Human|>: warm up<eoh>\n", params=params, reuse_cache=False)
    single = engine.generate(PROMPT, params=params, reuse_cache=False)
    prompts = [PROMPT + f"<|Human|>: question {i}{' why' * (4 * i)}?<eoh>\n" for i in range(8)]
    started = time.perf_counter()
    batch = engine.generate_batch(prompts, params=params)
    batch_s = time.perf_counter() - started
    model = engine.loaded.model
    return {
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "load_s": round(load_s, 2),
        "footprint_mb": round(model.get_memory_footprint() / 2**20, 1),
        "gpu_peak_mb": _gpu_peak_mb(),
        "one_prompt_tok_s": round(single.tokens_per_s, 1),
        "batch8_tok_s": round(sum(g.completion_tokens for g in batch) / batch_s, 1),
    }


def _attempt(function: Any, *args: Any) -> dict[str, Any]:
    try:
        return function(*args)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-2000:]}


def check_mode(name: str, folder: Path, tokens: int) -> dict[str, Any]:
    """One loading mode: the agent on the embedded model, then the random checkpoint's speed."""
    mode = MODES[name]
    return {
        "options": mode,
        "agent": _attempt(agent_run, mode),
        "throughput": _attempt(throughput, folder, mode, tokens),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("cuda_check.json"))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one mode, in this process
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        args.out.write_text(json.dumps(check_mode(args.one, args.folder, args.tokens), ensure_ascii=False))
        return
    modes = [m for m in args.modes.split(",") if m]
    report: dict[str, Any] = {
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "modes": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        tokenizer = load_model(str(embedded_model_path()), device="cpu").tokenizer
        build_tiny_moss_checkpoint(
            folder, tokenizer=tokenizer, n_layer=12, n_embd=1024, n_head=16, rotary_dim=32, n_positions=2048
        )
        for name in modes:
            # Each mode in its own process: one CUDA error (they are sticky) cannot spoil the next.
            part = Path(folder) / f"{name}.json"
            command = [sys.executable, __file__, "--one", name, "--folder", folder, "--out", str(part)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if part.is_file():
                entry = json.loads(part.read_text())
            else:
                entry = {"options": MODES[name], "error": f"exit {done.returncode}: {done.stderr[-2000:]}"}
            reference = report["modes"].get("cpu", {}).get("agent", {}).get("turns")
            turns = entry.get("agent", {}).get("turns")
            if reference is not None and turns is not None:
                entry["agent"]["same_as_cpu"] = turns == reference
            report["modes"][name] = entry
            print(json.dumps({name: entry}, ensure_ascii=False, indent=1), flush=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
