"""Rendering turns and Results exactly as MOSS was trained."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from moss_agent.protocol._objects import ResultLayout, Results, Snippet, ToolInvocation, ToolResult, Turn
from moss_agent.protocol._strings import END_OF_RESULTS, NO_CALL, NO_RESULT, RESULTS_TAG, SECTIONS


def render_section(name: str, content: str) -> str:
    r"""One section line as trained: ``<|Human|>: {content}<eoh>\\n``."""
    tag, end = SECTIONS[name]
    return f"{tag}: {content}{end}\n"


def _render_tool_result(item: ToolResult, first_hit: int) -> tuple[str, int]:
    if item.layout is ResultLayout.INLINE:
        return f"{item.call} => {item.text!r}\n", first_hit
    if item.layout is ResultLayout.HITS and not isinstance(item.output, str):
        lines = [f"{item.call} =>\n"]
        for offset, snippet in enumerate(item.output):
            lines.append(f"<|{first_hit + offset}|>: {snippet.render()}\n")
        return "".join(lines), first_hit + len(item.output)
    return f"{item.call} =>\n{item.text}\n", first_hit


def render_results(results: Results) -> str:
    """The Results section, numbering search hits across the searches of the turn."""
    if results.compact:
        body = "\n".join(item.text for item in results.items) if results.items else NO_CALL
        return f"{RESULTS_TAG}: {body}{END_OF_RESULTS}\n"
    if not results.items:
        return f"{RESULTS_TAG}:\n{NO_CALL}\n{END_OF_RESULTS}\n"
    parts = [f"{RESULTS_TAG}:\n"]
    next_hit = 1
    for item in results.items:
        text, next_hit = _render_tool_result(item, next_hit)
        parts.append(text)
    parts.append(f"{END_OF_RESULTS}\n")
    return "".join(parts)


def render_turn(turn: Turn) -> str:
    """Render the sections of a turn that are present, in protocol order."""
    parts = [render_section("Human", turn.human)]
    if turn.thoughts is not None:
        parts.append(render_section("Inner Thoughts", turn.thoughts))
    if turn.commands is not None:
        parts.append(render_section("Commands", turn.commands.render_text()))
    if turn.results is not None:
        parts.append(render_results(turn.results))
    if turn.reply is not None:
        parts.append(render_section("MOSS", turn.reply))
    return "".join(parts)


def render_conversation(meta_instruction: str, turns: Iterable[Turn]) -> str:
    """The full prompt text: meta instruction followed by every turn."""
    return meta_instruction + "".join(render_turn(t) for t in turns)


def result_for(invocation: ToolInvocation, output: str | Sequence[str], layout: ResultLayout) -> ToolResult:
    """Build the Results entry for a tool's output, in the layout MOSS data uses."""
    if layout is ResultLayout.HITS:
        if isinstance(output, str) or not output:
            return ToolResult(invocation.text, output if isinstance(output, str) else NO_RESULT)
        return ToolResult(invocation.text, tuple(Snippet(s) for s in output), ResultLayout.HITS)
    text = output if isinstance(output, str) else "\n".join(output)
    return ToolResult(invocation.text, text, layout)


def results_for(items: Sequence[ToolResult]) -> Results:
    """Wrap entries in a Results section; Text2Image-only turns use the compact form."""
    compact = bool(items) and all(i.call.startswith("Text2Image(") for i in items)
    return Results(tuple(items), compact=compact)
