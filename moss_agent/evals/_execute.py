"""Running eval cases: the MOSS agent in batches, chat models in a tool loop.

Each case becomes a scored :class:`~moss_agent.evals.records.CaseResult`; a case the
harness cannot run becomes a ``harness_error`` result instead of an exception. Internal
to :mod:`moss_agent.evals.runner`.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from moss_agent.evals.scoring import (
    CallRecord,
    CaseResult,
    CaseScore,
    command_format_errors,
    expected_label,
    score_case,
)
from moss_agent.evals.suite import EvalCase
from moss_agent.evals.targets import EvalTarget
from moss_agent.protocol import NO_CALL, Commands, Results, Turn

__all__ = ["MAX_TOOL_ROUNDS", "_harness_result", "_run_agent_chunk", "_run_chat_case", "_run_chat_cases"]

#: Model turns of the chat-model tool loop that may call tools before the reply is taken.
MAX_TOOL_ROUNDS = 2


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
    from moss_agent.models.chat_prompt import call_thought

    agent = MossAgent(target.model, tools=registry, plugins=case.plugins, **kwargs)
    # Earlier turns are no-call turns, written as MOSS's data writes them, unless they record calls:
    # then their Commands are written and their Results compressed, as the agent sends earlier turns.
    # A turn without thoughts gets the thought a chat target's prompt gives it, so both see one text.
    agent.history = [
        Turn(
            human=user,
            thoughts=reply.thoughts
            if reply.thoughts is not None
            else (call_thought(i.name for i in reply.invocations) if reply.calls else NO_CALL),
            commands=Commands(reply.invocations),
            results=Results(),
            reply=reply.content,
        )
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


def _chat_history(case: EvalCase, tools: Sequence[Any]) -> list[Any]:
    """The case's messages for a chat model; an earlier turn's calls become tool calls."""
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

    from moss_agent.models.chat_prompt import invocations_to_tool_calls, tools_to_plugins

    bound = {b.name: b for b in tools_to_plugins(tools)}
    messages: list[BaseMessage] = []
    for message in case.messages:
        if message.role == "user":
            messages.append(HumanMessage(message.content))
            continue
        # the turn's thoughts travel as reasoning_content, which ChatMoss writes as Inner Thoughts
        thoughts = {"reasoning_content": message.thoughts} if message.thoughts else {}
        if message.calls:
            tool_calls, _ = invocations_to_tool_calls(message.invocations, bound)
            # no ToolMessages: ChatMoss then writes the turn's Results as `None`, as the agent
            # compresses an earlier turn's Results (a ToolMessage "None" would read as a result)
            messages.append(AIMessage("", tool_calls=tool_calls, additional_kwargs=thoughts))
            thoughts = {}
        messages.append(AIMessage(message.content, additional_kwargs=thoughts))
    return messages


def _run_chat_case(target: EvalTarget, case: EvalCase, registry: Any) -> CaseResult:
    from langchain_core.messages import ToolMessage

    from moss_agent.protocol import ToolInvocation

    started = time.perf_counter()
    tools = [registry.plugins[name].tool for name in case.plugins]
    model = target.model.bind_tools(tools) if tools else target.model
    messages = _chat_history(case, tools)
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
