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
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from moss_agent.errors import UsageError
from moss_agent.evals.scoring import (
    CallRecord,
    CaseResult,
    CaseScore,
    Scorer,
    command_format_errors,
    expected_label,
    score_case,
    summarize,
)
from moss_agent.evals.suite import EvalCase, Suite, load_suite
from moss_agent.protocol import NO_CALL, Commands, ResultLayout, Results, Turn

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
#: Model turns of the chat-model tool loop that may call tools before the reply is taken.
MAX_TOOL_ROUNDS = 2
#: Config keys that may differ between a run and its resume.
_RESUMABLE_KEYS = frozenset({"suite.path", "suite.cases"})
_SAMPLING_FIELDS = ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "seed")


# --- targets -------------------------------------------------------------------------------


@dataclass
class EvalTarget:
    """What is evaluated.

    Attributes:
        model: A LangChain LLM that speaks MOSS text (``kind="agent"``) or a chat model
            (``kind="chat"``).
        kind: ``"agent"`` runs :class:`~moss_agent.agent.MossAgent`; ``"chat"`` binds tools.
        identity: Name, class and fingerprint of the model, for the run's config.
        sampling: Sampling settings, for the run's config.
        max_new_tokens: Most tokens per generation, for the run's config.
        llm_kwargs: Passed to every model call.
    """

    model: Any
    kind: Literal["agent", "chat"]
    identity: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    max_new_tokens: int | None = None
    llm_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A short model name for titles."""
        return str(self.identity.get("name") or self.identity.get("class") or "model")


def _fingerprint(model_path: str) -> str | None:
    """Hash of a checkpoint folder's file names and sizes (cheap; catches swapped weights)."""
    folder = Path(model_path)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(f"{file.relative_to(folder)}:{file.stat().st_size}\n".encode())
    return digest.hexdigest()


def _identity(model: Any) -> dict[str, Any]:
    inner = getattr(model, "llm", None)
    candidates = (
        getattr(model, "model", None),
        getattr(model, "model_name", None),
        getattr(inner, "model", None),
    )
    name = next((c for c in candidates if isinstance(c, str) and c), None)
    if name is None:
        name = str(getattr(model, "_llm_type", type(model).__name__))
    identity: dict[str, Any] = {"name": Path(name).name if Path(name).is_dir() else name, "path": name}
    identity["class"] = type(model).__name__
    if inner is not None:
        identity["llm_class"] = type(inner).__name__
    identity["fingerprint"] = _fingerprint(name)
    return identity


def as_target(model: Any, *, max_new_tokens: int | None = None) -> EvalTarget:
    """Wrap a LangChain model: chat models run the tool loop, other models the MOSS agent.

    Args:
        model: An :class:`EvalTarget` (returned as is), a chat model, or a LangChain LLM.
        max_new_tokens: Recorded in the config; read from the model when not given.

    Raises:
        UsageError: ``model`` is not a LangChain language model.
    """
    if isinstance(model, EvalTarget):
        return model
    from langchain_core.language_models import BaseChatModel, BaseLanguageModel

    if not isinstance(model, BaseLanguageModel):
        raise UsageError(f"the eval target must be a LangChain LLM or chat model, not {type(model).__name__}")
    kind: Literal["agent", "chat"] = "chat" if isinstance(model, BaseChatModel) else "agent"
    sampling = {f: getattr(model, f) for f in _SAMPLING_FIELDS if hasattr(model, f)}
    if max_new_tokens is None:
        value = getattr(model, "max_new_tokens", None)
        max_new_tokens = value if isinstance(value, int) else None
    return EvalTarget(model, kind, _identity(model), sampling, max_new_tokens)


def build_target(
    model: str | None = None, *, chat: bool = False, sample: bool = False, max_new_tokens: int = 256
) -> EvalTarget:
    """The target of ``moss-agent eval``: a local MOSS checkpoint, greedy unless ``sample``.

    Args:
        model: Checkpoint folder or hub id; ``$MOSS_AGENT_MODEL`` or the embedded model by default.
        chat: Evaluate through :class:`~moss_agent.models.chat.ChatMoss` instead of ``MossAgent``.
        sample: Sample with MOSS's defaults instead of greedy decoding.
        max_new_tokens: Most tokens per generation.
    """
    from moss_agent.models.embedded import resolve_model
    from moss_agent.models.llm import MossLLM

    path = resolve_model(model)
    llm = MossLLM(model=path, do_sample=sample, max_new_tokens=max_new_tokens)
    if not chat:
        return as_target(llm, max_new_tokens=max_new_tokens)
    from moss_agent.models.chat import ChatMoss

    chat_model = ChatMoss(model_name=path, llm=llm, do_sample=sample, max_new_tokens=max_new_tokens)
    return as_target(chat_model, max_new_tokens=max_new_tokens)


# --- tools per case ------------------------------------------------------------------------


class _NoSearch:
    """Search when a case has neither a corpus nor recorded results."""

    def search(self, query: str, max_results: int) -> list[str]:
        from moss_agent.tools.search_backends import SearchUnavailable

        raise SearchUnavailable("this eval case has no search corpus or recorded results")


def _search_backend(case: EvalCase, corpora: dict[Path, Any]) -> Any:
    from moss_agent.tools.search_backends import LocalCorpusBackend, RecordedBackend

    if case.corpus is not None:
        if case.corpus not in corpora:
            corpora[case.corpus] = LocalCorpusBackend(case.corpus)
        return corpora[case.corpus]
    if case.search_results is not None:
        return RecordedBackend(case.search_results)
    return _NoSearch()


def _image_stub() -> Any:
    from langchain_core.tools import StructuredTool

    from moss_agent.protocol import IMAGE_GENERATED
    from moss_agent.tools.text2image import Text2ImageInput

    def generate(description: str) -> str:
        return IMAGE_GENERATED

    return StructuredTool.from_function(
        func=generate,
        name="Text2Image",
        description="Generate an image from a text description (not executed in evals).",
        args_schema=Text2ImageInput,
    )


def _custom_stub(name: str, description: str, parameters: dict[str, Any], result: str) -> Any:
    from langchain_core.tools import StructuredTool

    def run(**kwargs: Any) -> str:
        return result

    return StructuredTool.from_function(
        func=run, name=name, description=description or name, args_schema=parameters
    )


def registry_for_case(
    case: EvalCase, *, execute_images: bool = False, corpora: dict[Path, Any] | None = None
) -> Any:
    """The tools of one case: real Calculate and Solve, deterministic Search, stubbed images.

    Args:
        case: The case.
        execute_images: Run the real Text2Image tool instead of the stub.
        corpora: Cache of corpus backends by path (a corpus is indexed once per run).

    Returns:
        A :class:`~moss_agent.tools.registry.ToolRegistry`.
    """
    from moss_agent.tools.registry import default_registry

    registry = default_registry(search_backend=_search_backend(case, corpora if corpora is not None else {}))
    if not execute_images:
        registry.register(_image_stub(), name="Text2Image", layout=ResultLayout.BLOCK)
    for spec in case.tools:
        registry.register(_custom_stub(spec.name, spec.description, spec.parameters, spec.result))
    return registry


# --- running one case ----------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=repr))


def _call_record(record: Any) -> CallRecord:
    invocation = record.invocation
    return CallRecord(
        name=invocation.name,
        args=_jsonable(list(invocation.args)),
        kwargs=_jsonable(dict(invocation.kwargs)),
        text=invocation.text,
        output=record.result.text,
        error=record.error,
        seconds=record.seconds,
    )


def _count_tokens(model: Any, texts: Sequence[str]) -> int | None:
    try:
        return sum(int(model.get_num_tokens(t)) for t in texts)
    except Exception:  # a model without a usable tokenizer: leave tokens unknown
        return None


def _result(
    case: EvalCase,
    calls: list[CallRecord],
    reply: str,
    *,
    generations: list[str],
    parse_errors: list[str],
    format_errors: list[str],
    latency_s: float | None,
    tokens: int | None,
) -> CaseResult:
    scores = score_case(case, calls, reply, format_errors=format_errors)
    return CaseResult(
        id=case.id,
        case=case.record_fields(),
        expected=case.expect.model_dump(mode="json"),
        chosen_tools=[c.name for c in calls],
        calls=calls,
        reply=reply,
        generations=generations,
        parse_errors=parse_errors,
        format_errors=format_errors,
        scores=scores,
        error_type=scores.error_type,
        latency_s=latency_s,
        tokens=tokens,
        lang=case.lang,
        category=case.category,
    )


def _harness_result(case: EvalCase, error: BaseException) -> CaseResult:
    return CaseResult(
        id=case.id,
        case=case.record_fields(),
        expected=case.expect.model_dump(mode="json"),
        scores=CaseScore(
            trigger=None, error_type="harness_error", expected_label=expected_label(case), chosen_label="None"
        ),
        error=f"{type(error).__name__}: {error}",
        error_type="harness_error",
        lang=case.lang,
        category=case.category,
    )


def _make_agent(target: EvalTarget, case: EvalCase, registry: Any) -> Any:
    from moss_agent.agent import MossAgent

    context = getattr(target.model, "context_length", None)
    kwargs: dict[str, Any] = {}
    if callable(context):
        try:
            kwargs["max_context_tokens"] = int(context())
        except Exception:  # not loaded / not known: keep the agent's default
            pass
    agent = MossAgent(target.model, tools=registry, plugins=case.plugins, **kwargs)
    # Earlier turns are no-call turns, written as MOSS's data writes them.
    agent.history = [
        Turn(human=user, thoughts=NO_CALL, commands=Commands(), results=Results(), reply=reply)
        for user, reply in case.history
    ]
    return agent


def _agent_result(target: EvalTarget, case: EvalCase, record: Any) -> CaseResult:
    calls = [_call_record(r) for r in record.tool_calls]
    for invocation in record.invocations[len(calls) :]:
        calls.append(
            CallRecord(
                name=invocation.name,
                args=_jsonable(list(invocation.args)),
                kwargs=_jsonable(dict(invocation.kwargs)),
                text=invocation.text,
                error="not run: more calls than the agent runs",
            )
        )
    generations = list(record.generations)
    return _result(
        case,
        calls,
        record.reply,
        generations=generations,
        parse_errors=list(record.parse_errors),
        format_errors=command_format_errors(generations[0]) if generations else ["no generation"],
        latency_s=record.timings.get("total"),
        tokens=_count_tokens(target.model, generations),
    )


def _run_agent_chunk(
    target: EvalTarget, cases: Sequence[EvalCase], make_registry: Callable[[EvalCase], Any]
) -> list[CaseResult]:
    """Run cases as one batch; on a batch failure, run them one by one to isolate it."""
    from moss_agent.agent import run_batch

    results: dict[str, CaseResult] = {}
    prepared = []
    for case in cases:
        try:
            prepared.append((case, _make_agent(target, case, make_registry(case))))
        except Exception as exc:
            results[case.id] = _harness_result(case, exc)
    try:
        records = run_batch([(agent, case.query) for case, agent in prepared], **target.llm_kwargs)
    except Exception as exc:
        if len(prepared) == 1:
            results[prepared[0][0].id] = _harness_result(prepared[0][0], exc)
        else:
            for case, _ in prepared:
                results.update((r.id, r) for r in _run_agent_chunk(target, [case], make_registry))
    else:
        for (case, _), record in zip(prepared, records):
            try:
                results[case.id] = _agent_result(target, case, record)
            except Exception as exc:
                results[case.id] = _harness_result(case, exc)
    return [results[case.id] for case in cases]


def _describe_ai(message: Any) -> str:
    text = message.content if isinstance(message.content, str) else json.dumps(message.content)
    calls = [f"{c['name']}({json.dumps(c.get('args', {}), ensure_ascii=False)})" for c in message.tool_calls]
    calls += [f"invalid: {c.get('name')}({c.get('args')})" for c in message.invalid_tool_calls]
    return text + ("\n[tool calls] " + "; ".join(calls) if calls else "")


def _run_chat_case(target: EvalTarget, case: EvalCase, registry: Any) -> CaseResult:
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

    from moss_agent.protocol import ToolInvocation

    started = time.perf_counter()
    tools = [registry.plugins[name].tool for name in case.plugins]
    model = target.model.bind_tools(tools) if tools else target.model
    messages: list[BaseMessage] = [
        HumanMessage(m.content) if m.role == "user" else AIMessage(m.content) for m in case.messages
    ]
    calls: list[CallRecord] = []
    generations: list[str] = []
    parse_errors: list[str] = []
    format_errors: list[str] = []
    tokens = 0
    reply = ""
    for round_number in range(MAX_TOOL_ROUNDS + 1):
        message = model.invoke(messages, **target.llm_kwargs)
        generations.append(_describe_ai(message))
        usage = getattr(message, "usage_metadata", None) or {}
        tokens += int(usage.get("output_tokens", 0))
        parse_errors.extend(str(e) for e in message.response_metadata.get("parse_errors", []))
        for invalid in message.invalid_tool_calls:
            name = invalid.get("name")
            if name and name not in case.plugins:  # a call to a disabled tool is still a call
                calls.append(
                    CallRecord(name=name, text=str(invalid.get("args") or name), error="not enabled")
                )
            else:
                format_errors.append(f"unreadable call {name!r}: {invalid.get('error')}")
        reply = message.text if isinstance(message.text, str) else str(message.content)
        if not message.tool_calls or round_number == MAX_TOOL_ROUNDS:
            break
        invocations = [
            ToolInvocation.call(c["name"], **dict(c.get("args") or {})) for c in message.tool_calls
        ]
        records = registry.run_all(invocations, case.plugins)
        messages.append(message)
        for tool_call, record in zip(message.tool_calls, records):
            calls.append(_call_record(record))
            messages.append(
                ToolMessage(
                    content=record.result.text,
                    artifact=record.artifact,
                    tool_call_id=tool_call.get("id") or "",
                    name=tool_call["name"],
                )
            )
    return _result(
        case,
        calls,
        reply,
        generations=generations,
        parse_errors=parse_errors,
        format_errors=format_errors,
        latency_s=time.perf_counter() - started,
        tokens=tokens or None,
    )


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


def _run_chat_cases(
    target: EvalTarget,
    cases: Sequence[EvalCase],
    make_registry: Callable[[EvalCase], Any],
    concurrency: int,
    record: Callable[[CaseResult], None],
) -> None:
    def run_one(case: EvalCase) -> CaseResult:
        try:
            return _run_chat_case(target, case, make_registry(case))
        except Exception as exc:
            return _harness_result(case, exc)

    if concurrency == 1:
        for case in cases:
            record(run_one(case))
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(run_one, case) for case in cases]
        try:
            for future in concurrent.futures.as_completed(futures):
                record(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise


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
) -> EvalRun:
    """``moss-agent eval --suite … --out …``: build the target, run, print warnings and the summary."""
    from rich.console import Console

    from moss_agent.evals.report import print_summary

    err = Console(stderr=True, highlight=False)
    target = build_target(model, chat=chat, sample=sample, max_new_tokens=max_new_tokens)
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
        err.print(f"[yellow]warning:[/yellow] {warning}", markup=True)
    err.print(f"ran {run.executed} case(s), {run.reused} already finished; results in {run.out_dir}")
    print_summary(run.summary, Console())
    return run
