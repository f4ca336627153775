"""Train recipe variants with several seeds at once and score each on its held-out split.

Made for a lent GPU, where the whole recipe takes about 2 minutes (1800 steps at ~31 steps/s on
an H200): a few variants x 2-3 seeds fit one 10-minute call. Seeds matter: the same recipe
trained on different hardware moved held-out tool choice by 4.5 points, so a difference
between variants means something only when it is larger than the spread across seeds.

Each run is ``moss-agent train recipe --out OUT/VARIANT-sSEED --seed SEED FLAGS``, then
``moss-agent eval`` of its model on its own held-out split (seeds differ in data, so variants
are compared within a seed and averaged over seeds; ``--suite`` scores every run on one given
suite per seed instead), and on the custom-tool cases of that split with every tool renamed to
made-up words (``novel_trigger``: tool choice when names cannot be recalled). Runs go
``--jobs`` at a time; a run whose folder already has scores is not redone. ``OUT/sweep.md`` gets
the table, ``OUT/sweep.json`` every number, both rewritten as each run finishes (a sweep stopped
at its time limit keeps what it finished).

Usage:
    python bench/recipe_sweep.py --out runs/sweep --seeds 0,1 \\
        --variant base= --variant restate=--restate-solutions --variant long="--steps 3600"
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from moss_agent.train.heldout import heldout_suite, novel_name_suite

METRICS = (
    "trigger_accuracy",
    "argument_accuracy",
    "answer_accuracy",
    "end_to_end_accuracy",
    "format_error_rate",
)


CLI = [sys.executable, "-m", "moss_agent.cli"]


def evaluate(folder: Path, suite: Path, name: str, eval_args: list[str], log: Any) -> int:
    """``moss-agent eval`` of the run's model on ``suite`` into ``folder/name``; its exit status."""
    command = [*CLI, "eval", "--suite", str(suite), "--out", str(folder / name)]
    command += ["--model", str(folder / "sft" / "final"), *eval_args]
    return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


def run_one(
    out: Path,
    name: str,
    flags: str,
    seed: int,
    eval_args: list[str],
    suite_pattern: str | None = None,
    probe: Path | None = None,
    novel: bool = True,
) -> dict[str, Any]:
    """Train one variant with one seed and score it; return its numbers (or its error)."""
    folder = out / f"{name}-s{seed}"
    summary = folder / "eval-heldout" / "summary.json"
    if not summary.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with (folder / "sweep.log").open("a") as log:
            train = [*CLI, "train", "recipe", "--out", str(folder), "--seed", str(seed), *shlex.split(flags)]
            if subprocess.run(train, stdout=log, stderr=subprocess.STDOUT, check=False).returncode:
                return {"variant": name, "seed": seed, "error": f"training failed, see {folder}/sweep.log"}
            data = folder / "data"
            if suite_pattern:
                suite = Path(suite_pattern.format(seed=seed))
            else:
                suite = heldout_suite(
                    data / "test.jsonl", data / "corpus.jsonl", folder / "heldout" / "heldout.jsonl"
                )
            if evaluate(folder, suite, "eval-heldout", eval_args, log):
                return {"variant": name, "seed": seed, "error": f"eval failed, see {folder}/sweep.log"}
        (folder / "sweep_minutes.txt").write_text(f"{(time.monotonic() - started) / 60:.2f}\n")
    probe_scores: dict[str, Any] = {}
    if probe is not None:
        probe_summary = folder / "eval-probe" / "summary.json"
        if not probe_summary.is_file():
            with (folder / "sweep.log").open("a") as log:
                evaluate(folder, probe, "eval-probe", eval_args, log)
        if probe_summary.is_file():
            rate = json.loads(probe_summary.read_text()).get("end_to_end_accuracy")
            probe_scores = {"probe_end_to_end": rate}
    novel_scores: dict[str, Any] = {}
    heldout = folder / "heldout" / "heldout.jsonl"
    novel_summary = folder / "eval-novel" / "summary.json"
    if novel and heldout.is_file() and not novel_summary.is_file():
        with (folder / "sweep.log").open("a") as log:
            novel = novel_name_suite(heldout, folder / "heldout" / "novel-names.jsonl")
            evaluate(folder, novel, "eval-novel", eval_args, log)
    if novel_summary.is_file():
        novel_scores = {"novel_trigger": json.loads(novel_summary.read_text()).get("trigger_accuracy")}
    scores = json.loads(summary.read_text())
    recipe = json.loads((folder / "recipe_log.json").read_text())
    return {
        "variant": name,
        "seed": seed,
        "recipe_minutes": recipe.get("minutes_total"),
        **{metric: scores.get(metric) for metric in METRICS},
        **probe_scores,
        **novel_scores,
    }


def table(results: list[dict[str, Any]], variants: dict[str, str]) -> str:
    """Mean and spread (min-max over seeds) of every metric, one row per variant."""
    extra = [c for c in ("probe_end_to_end", "novel_trigger") if any(c in r for r in results)]
    columns = [*METRICS, *extra]
    lines = [
        "| variant | flags | seeds | " + " | ".join(m.removesuffix("_accuracy") for m in columns) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in columns) + " |",
    ]
    for name, flags in variants.items():
        done = [r for r in results if r["variant"] == name and "error" not in r]
        cells = []
        for metric in columns:
            values = [100 * r[metric] for r in done if r.get(metric) is not None]
            cells.append(
                f"{statistics.mean(values):.1f} ({min(values):.1f}–{max(values):.1f})" if values else "–"
            )
        lines.append(f"| {name} | `{flags or '(defaults)'}` | {len(done)} | " + " | ".join(cells) + " |")
    failed = [r for r in results if "error" in r]
    lines += [f"\n{r['variant']} seed {r['seed']}: {r['error']}" for r in failed]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variant", action="append", required=True, help="NAME=FLAGS for train recipe")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--jobs", type=int, default=4, help="runs at the same time")
    parser.add_argument("--eval-args", default="--batch-size 64 --dtype float32", help="extra eval flags")
    parser.add_argument(
        "--suite",
        help="score every run on this suite instead of its own held-out split; '{seed}' is replaced by "
        "the run's seed (to compare data variants on the same cases: the base data's held-out suite of "
        "that seed, whose families --more-phrasings keeps held out)",
    )
    parser.add_argument(
        "--probe",
        type=Path,
        help="also score every run on this suite (e.g. evals/suites/readme-probe.jsonl: the README's "
        "questions with other numbers); its end-to-end rate is the last column",
    )
    parser.add_argument(
        "--no-novel", action="store_true", help="skip the made-up-names eval (novel_trigger) of every run"
    )
    args = parser.parse_args()
    variants = dict(v.split("=", 1) if "=" in v else (v, "") for v in args.variant)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(name, flags, seed) for seed in seeds for name, flags in variants.items()]
    eval_args = shlex.split(args.eval_args)
    results: list[dict[str, Any]] = []
    report = table(results, variants)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(run_one, args.out, *job, eval_args, args.suite, args.probe, not args.no_novel)
            for job in jobs
        ]
        for future in as_completed(futures):
            # Rewritten as each run finishes, so a sweep stopped at a time limit keeps its table.
            results.append(future.result())
            results.sort(key=lambda r: (list(variants).index(r["variant"]), r["seed"]))
            (args.out / "sweep.json").write_text(json.dumps(results, indent=2))
            report = table(results, variants)
            (args.out / "sweep.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
