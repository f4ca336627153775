"""Eval records: one tool call, one case's scores, one line of ``results.jsonl``.

Also the label sets these records use: the error taxonomy (:data:`ERROR_TYPES`) and the
classes of the confusion matrix (:data:`CONFUSION_LABELS`). The rules that fill them in
are in :mod:`moss_agent.evals.scoring`.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CONFUSION_LABELS",
    "ERROR_TYPES",
    "NO_TOOL",
    "OTHER",
    "CallRecord",
    "CaseResult",
    "CaseScore",
    "ErrorType",
]

ErrorType = Literal[
    "format_error",
    "missed_call",
    "spurious_call",
    "wrong_tool",
    "wrong_args",
    "tool_error",
    "wrong_answer",
    "ok",
    "harness_error",
]
#: Error types in the order they are tried (``harness_error`` last: it is not a model error).
ERROR_TYPES: tuple[str, ...] = get_args(ErrorType)
#: The label of "no tool was called".
NO_TOOL = "None"
#: The label of calls to several different tools (and of tools outside the confusion classes).
OTHER = "Other"
#: Classes of the confusion matrix: the four MOSS tools, no call, and anything else.
CONFUSION_LABELS: tuple[str, ...] = ("Search", "Calculate", "Solve", "Text2Image", NO_TOOL, OTHER)


class CallRecord(BaseModel):
    """One tool call as recorded in ``results.jsonl``."""

    model_config = ConfigDict(extra="allow")

    name: str
    """The called tool."""
    args: list[Any] = Field(default_factory=list)
    """Positional arguments."""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments."""
    text: str = ""
    """The call as written."""
    output: str | None = None
    """What the tool returned (search snippets joined by newlines)."""
    error: str | None = None
    """Why the call failed (``"no result"``, a timeout, a disabled tool)."""
    seconds: float = 0.0
    """Wall time of the call."""

    @property
    def argument(self) -> str | None:
        """The single text argument, when the call has one."""
        if self.args:
            return str(self.args[0])
        if len(self.kwargs) == 1:
            return str(next(iter(self.kwargs.values())))
        return None


class CaseScore(BaseModel):
    """The scores of one case."""

    trigger: bool | None
    """The right tool (or no tool) was chosen; ``None`` for harness errors."""
    arguments: bool | None = None
    """The argument checks passed; ``None`` when not checked."""
    answer: bool | None = None
    """The reply holds every answer string; ``None`` when the case has no answer."""
    end_to_end: bool | None = None
    """Everything was right (``error_type == "ok"``)."""
    error_type: ErrorType
    """The first error that applies."""
    expected_label: str
    """``expect.tool`` or ``"None"``."""
    chosen_label: str
    """The tool the model chose, ``"None"``, or ``"Other"`` for several tools."""
    details: list[str] = Field(default_factory=list)
    """Why a check failed."""
    extra: dict[str, bool | None] = Field(default_factory=dict)
    """Results of extra scorers, by name."""


class CaseResult(BaseModel):
    """One finished case: one line of ``results.jsonl``."""

    model_config = ConfigDict(extra="allow")

    id: str
    case: dict[str, Any]
    """The case's fields as given (unknown fields included)."""
    expected: dict[str, Any]
    """The case's expectation."""
    chosen_tools: list[str] = Field(default_factory=list)
    """Names of the tools called, in order."""
    calls: list[CallRecord] = Field(default_factory=list)
    """The calls, their arguments and outputs."""
    reply: str = ""
    """The final reply."""
    generations: list[str] = Field(default_factory=list)
    """The model's raw texts."""
    parse_errors: list[str] = Field(default_factory=list)
    """Everything the agent could not read."""
    format_errors: list[str] = Field(default_factory=list)
    """Why the Commands could not be read (these make a ``format_error``)."""
    scores: CaseScore
    error: str | None = None
    """The harness's exception, for ``harness_error`` cases."""
    error_type: ErrorType
    latency_s: float | None = None
    """Seconds from the first generation's start to the reply (a batched case shares its batch's time)."""
    tokens: int | None = None
    """Tokens the model generated."""
    lang: str | None = None
    category: str | None = None
