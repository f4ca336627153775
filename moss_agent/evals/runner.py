"""The resumable eval runner.

Each case runs through the real agent loop (a MOSS text model through
:class:`~moss_agent.agent.MossAgent`, batched with :func:`~moss_agent.agent.run_batch`) or a
small tool loop around a LangChain chat model. Calculate and Solve are the real tools;
Search reads the suite's local corpus or the case's recorded results; Text2Image is a stub
unless images are asked for.

Every finished case is appended to ``DIR/results.jsonl`` at once (flushed and synced), so
a killed run loses nothing; running the same command again skips the finished ids. The
run's config is kept in ``DIR/config.json`` and a resume under a different config is
refused.

Targets and per-case tools are in :mod:`moss_agent.evals.targets`, the running of cases
in :mod:`moss_agent.evals._execute`; the public names of both are re-exported here.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moss_agent.errors import UsageError
from moss_agent.evals._execute import MAX_TOOL_ROUNDS as MAX_TOOL_ROUNDS
from moss_agent.evals._execute import _run_agent_chunk, _run_chat_cases
from moss_agent.evals.scoring import CaseResult, Scorer, summarize
from moss_agent.evals.suite import EvalCase, Suite, load_suite

# Targets live in targets.py; re-exported so ``moss_agent.evals.runner.build_target`` (which
# run_eval_cli looks up here, and tests monkeypatch) keeps working.
from moss_agent.evals.targets import EvalTarget, as_target, build_target, registry_for_case

__all__ = [
    "CONFIG_FILE",
    "RESULTS_FILE",
    "EvalRun",
    "EvalTarget",
    "as_target",
    "build_target",
    "read_results",
    "registry_for_case",
    "run_config",
    "run_eval",
    "run_eval_cli",
]

RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "config.json"
#: Outputs of a run; ``--force`` removes them.
RUN_FILES = (RESULTS_FILE, CONFIG_FILE, "summary.json", "report.md", "confusion.png")
#: Config keys that may differ between a run and its resume.
_RESUMABLE_KEYS = frozenset({"suite.path", "suite.cases"})


# --- files ---------------------------------------------------------------------------------


def read_results(path: Path, *, repair: bool = False) -> tuple[list[CaseResult], list[str]]:
    """Read ``results.jsonl``; the last record of an id wins.

    Args:
        path: The file.
        repair: Cut a partly written last line (a crash mid-write) off the file.

    Returns:
        The records in file order (one per id) and warnings about dropped lines.
    """
    if not path.is_file():
        return [], []
    warnings: list[str] = []
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        cut = raw.rfind(b"\n") + 1
        warnings.append(f"{path}: dropped a partly written last line ({len(raw) - cut} bytes)")
        raw = raw[:cut]
        if repair:
            with path.open("r+b") as handle:
                handle.truncate(cut)
    records: dict[str, CaseResult] = {}
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            result = CaseResult.model_validate_json(line)
        except ValueError as exc:
            warnings.append(f"{path}:{number}: unreadable record dropped ({str(exc).splitlines()[0]})")
            continue
        records.pop(result.id, None)
        records[result.id] = result
    return list(records.values()), warnings


def _append(handle: Any, result: CaseResult) -> None:
    handle.write(result.model_dump_json() + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("moss-agent")
    except Exception:
        import moss_agent

        return str(moss_agent.__version__)


def run_config(target: EvalTarget, suite: Suite, *, execute_images: bool = False) -> dict[str, Any]:
    """The config stored in ``config.json``; a resume must match it."""
    return {
        "model": target.identity,
        "target": target.kind,
        "suite": {"path": str(suite.path), "sha256": suite.sha256, "cases": len(suite.cases)},
        "sampling": target.sampling,
        "max_new_tokens": target.max_new_tokens,
        "execute_images": execute_images,
        "moss_agent_version": _version(),
    }


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    a, b = _flatten(old), _flatten(new)
    keys = sorted((set(a) | set(b)) - _RESUMABLE_KEYS)
    return [k for k in keys if a.get(k) != b.get(k)]


def _prepare_out_dir(out_dir: Path, config: dict[str, Any], force: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if force:
        for name in RUN_FILES:
            target = out_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    config_path = out_dir / CONFIG_FILE
    if config_path.is_file():
        old = json.loads(config_path.read_text(encoding="utf-8"))
        differing = _config_differences(old, config)
        if differing:
            details = ", ".join(
                f"{k}: {_flatten(old).get(k)!r} → {_flatten(config).get(k)!r}" for k in differing[:6]
            )
            raise UsageError(
                f"{out_dir} holds a run with a different config ({details}); "
                "use another --out folder, or --force to start over"
            )
    elif (out_dir / RESULTS_FILE).is_file():
        raise UsageError(f"{out_dir} has {RESULTS_FILE} but no {CONFIG_FILE}; use --force to start over")
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --- the run -------------------------------------------------------------------------------


@dataclass
class EvalRun:
    """A finished (or resumed) eval run.

    Attributes:
        out_dir: Where its files are.
        config: The run's config.
        results: Every finished case of the suite, in suite order.
        summary: The aggregate metrics (``summary.json``).
        warnings: Skipped suite lines, dropped result lines.
        executed: Cases run by this call.
        reused: Cases found finished and skipped.
    """

    out_dir: Path
    config: dict[str, Any]
    results: list[CaseResult]
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    executed: int = 0
    reused: int = 0


def _chunks(items: Sequence[EvalCase], size: int) -> Iterator[Sequence[EvalCase]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _progress_text(results: dict[str, CaseResult]) -> str:
    scored = [r for r in results.values() if r.error_type != "harness_error"]
    if not scored:
        return "eval"
    trigger = sum(bool(r.scores.trigger) for r in scored) / len(scored)
    e2e = sum(bool(r.scores.end_to_end) for r in scored) / len(scored)
    return f"trigger {trigger:.1%} · e2e {e2e:.1%}"


def run_eval(
    suite_path: str | Path,
    out_dir: str | Path,
    *,
    target: Any,
    limit: int | None = None,
    concurrency: int = 1,
    batch_size: int = 8,
    force: bool = False,
    execute_images: bool = False,
    progress: bool = True,
    scorers: Sequence[Scorer] = (),
) -> EvalRun:
    """Run (or resume) an eval and write its results, summary, report and confusion plot.

    Args:
        suite_path: A JSONL suite, SFT conversation file(s), or a folder of them.
        out_dir: The run folder (``results.jsonl``, ``config.json``, ``summary.json``,
            ``report.md``, ``confusion.png``).
        target: An :class:`EvalTarget`, a MOSS text LLM (``MossLLM``, ``ScriptedMossLLM``)
            or a LangChain chat model.
        limit: Run only the suite's first ``limit`` cases.
        concurrency: Chat-model cases run at once (threads).
        batch_size: MOSS-agent cases whose generations are batched together.
        force: Delete the folder's earlier run and start over.
        execute_images: Run the real Text2Image tool instead of a stub.
        progress: Show a progress bar (only on a terminal).
        scorers: Extra per-case checks; their verdicts are stored in ``scores.extra``.

    Raises:
        UsageError: A bad option, a missing suite, or a resume under a different config.
    """
    if limit is not None and limit < 0:
        raise UsageError("--limit must be >= 0")
    if concurrency < 1 or batch_size < 1:
        raise UsageError("--concurrency and --batch-size must be >= 1")
    eval_target = as_target(target)
    suite = load_suite(suite_path)
    out = Path(out_dir)
    config = run_config(eval_target, suite, execute_images=execute_images)
    _prepare_out_dir(out, config, force)
    results_path = out / RESULTS_FILE
    previous, dropped = read_results(results_path, repair=True)
    warnings = [*suite.warnings, *dropped]
    suite_ids = {case.id for case in suite.cases}
    finished = {r.id: r for r in previous if r.id in suite_ids and r.error_type != "harness_error"}
    selected = suite.cases if limit is None else suite.cases[:limit]
    pending = [case for case in selected if case.id not in finished]
    reused = len(selected) - len(pending)
    corpora: dict[Path, Any] = {}

    def make_registry(case: EvalCase) -> Any:
        return registry_for_case(case, execute_images=execute_images, corpora=corpora)

    done = dict(finished)
    executed = 0
    with results_path.open("a", encoding="utf-8") as handle, _progress_bar(progress, len(pending)) as bar:
        by_id = {case.id: case for case in pending}

        def record(result: CaseResult) -> None:
            nonlocal executed
            for scorer in scorers:
                if result.error_type != "harness_error":
                    try:
                        result.scores.extra[scorer.name] = scorer(by_id[result.id], result)
                    except Exception:  # a broken extra scorer must not lose the case
                        result.scores.extra[scorer.name] = None
            _append(handle, result)
            done[result.id] = result
            executed += 1
            bar.advance(_progress_text(done))

        if eval_target.kind == "agent":
            for chunk in _chunks(pending, batch_size):
                for result in _run_agent_chunk(eval_target, chunk, make_registry):
                    record(result)
        else:
            _run_chat_cases(eval_target, pending, make_registry, concurrency, record)

    every, _ = read_results(results_path)
    finished_by_id = {r.id: r for r in every}
    ordered = [finished_by_id[case.id] for case in suite.cases if case.id in finished_by_id]
    summary = summarize(ordered, config)
    from moss_agent.evals.report import write_reports

    write_reports(out, ordered, summary)
    return EvalRun(out, config, ordered, summary, warnings, executed, reused)


class _Bar:
    """A rich progress bar, or nothing when disabled."""

    def __init__(self, enabled: bool, total: int) -> None:
        self._progress: Any = None
        self._task: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._progress.add_task("eval", total=total)

    def __enter__(self) -> _Bar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, description: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=description)


def _progress_bar(progress: bool, total: int) -> _Bar:
    return _Bar(progress and total > 0 and sys.stderr.isatty(), total)


def run_eval_cli(
    suite: Path,
    out: Path,
    *,
    model: str | None = None,
    chat: bool = False,
    limit: int | None = None,
    concurrency: int = 1,
    batch_size: int = 8,
    force: bool = False,
    execute_images: bool = False,
    sample: bool = False,
    max_new_tokens: int = 256,
    loading: dict[str, Any] | None = None,
) -> EvalRun:
    """``moss-agent eval --suite … --out …``: build the target, run, print warnings and the summary."""
    from rich.console import Console
    from rich.markup import escape

    from moss_agent.evals.report import print_summary

    err = Console(stderr=True, highlight=False)
    target = build_target(model, chat=chat, sample=sample, max_new_tokens=max_new_tokens, loading=loading)
    run = run_eval(
        suite,
        out,
        target=target,
        limit=limit,
        concurrency=concurrency,
        batch_size=batch_size,
        force=force,
        execute_images=execute_images,
    )
    for warning in run.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", markup=True)
    err.print(f"ran {run.executed} case(s), {run.reused} already finished; results in {run.out_dir}")
    print_summary(run.summary, Console())
    return run
