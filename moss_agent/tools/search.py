"""The MOSS Web search plugin: ``Search(query)``.

:func:`search` is the model-facing function: it validates the model's query, asks a
:class:`~moss_agent.tools.search_backends.SearchBackend` under a time limit, and returns clean
single-line snippets, which the agent renders as numbered ``<|n|>: '…'`` Results lines.
:func:`search_tool` wraps it as a LangChain tool named ``Search``.

The default backend (:func:`default_search_backend`) is a local BM25 corpus when
``MOSS_AGENT_SEARCH_CORPUS`` names a JSONL file, else live web search through ``ddgs`` when it
is installed, else a backend that reports search as unavailable.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from moss_agent.errors import MissingDependencyError, ToolError, UsageError
from moss_agent.protocol import NO_RESULT
from moss_agent.tools.search_backends import (
    DDGSBackend,
    Document,
    LocalCorpusBackend,
    RecordedBackend,
    SearchBackend,
    SearchUnavailable,
)

__all__ = [
    "CORPUS_ENV_VAR",
    "ELLIPSIS",
    "MAX_QUERY_CHARS",
    "NO_RESULT",
    "DDGSBackend",
    "Document",
    "LocalCorpusBackend",
    "RecordedBackend",
    "SearchBackend",
    "SearchInput",
    "SearchUnavailable",
    "clip_snippet",
    "default_search_backend",
    "search",
    "search_tool",
]

CORPUS_ENV_VAR = "MOSS_AGENT_SEARCH_CORPUS"
"""Environment variable naming a JSONL corpus to search instead of the web."""
MAX_QUERY_CHARS = 500
"""Longest query accepted from the model, after stripping."""
ELLIPSIS = "…"
"""Appended (one character) to a snippet cut at ``max_chars``; the total stays within the limit."""


class SearchInput(BaseModel):
    """Arguments of the ``Search`` tool."""

    query: str = Field(description="What to search the web for.")


class _UnavailableBackend:
    """Stands in for web search when no backend can work; says why on every call."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def search(self, query: str, max_results: int) -> list[str]:
        raise SearchUnavailable(self.reason)


@functools.lru_cache(maxsize=4)
def _backend_for(corpus_path: str | None, ddgs_installed: bool) -> SearchBackend:
    # Cached so that a corpus is indexed once per process, not once per search.
    if corpus_path:
        if not os.path.isfile(corpus_path):
            raise UsageError(f"{CORPUS_ENV_VAR}={corpus_path!r} is not a file; point it at a JSONL corpus")
        return LocalCorpusBackend(corpus_path)
    if ddgs_installed:
        return DDGSBackend()
    return _UnavailableBackend(str(MissingDependencyError("ddgs", "search", "web search")))


def default_search_backend() -> SearchBackend:
    """Choose the search backend from the environment.

    Returns:
        A :class:`LocalCorpusBackend` over ``$MOSS_AGENT_SEARCH_CORPUS`` when it is set;
        else a :class:`DDGSBackend` when ``ddgs`` is installed; else a backend whose every
        search raises :class:`SearchUnavailable` naming the ``search`` extra. The same
        backend object is returned while the environment stays the same.

    Raises:
        UsageError: ``MOSS_AGENT_SEARCH_CORPUS`` is set but is not a file.
    """
    corpus = os.environ.get(CORPUS_ENV_VAR, "").strip() or None
    return _backend_for(corpus, importlib.util.find_spec("ddgs") is not None)


def clip_snippet(text: str, max_chars: int) -> str:
    """Make a snippet one line of at most ``max_chars`` characters.

    Whitespace runs (newlines included) become one space. A longer text is cut at the last
    space in the final 40% of the window when there is one (so Latin words stay whole; CJK
    text, which has no spaces, is cut at the limit) and ends with :data:`ELLIPSIS`.

    Args:
        text: A raw snippet.
        max_chars: The most characters in the result, ellipsis included (at least 2).

    Returns:
        The clipped snippet.
    """
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space >= 0.6 * len(cut):
        cut = cut[:space]
    return cut.rstrip(" ,;:.，；：、。") + ELLIPSIS


def _call_with_time_limit(backend: SearchBackend, query: str, max_results: int, timeout: float) -> list[str]:
    # A daemon thread, because a blocked network call cannot be interrupted; on time-out it
    # is abandoned and finishes (or fails) on its own without holding the process open.
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = backend.search(query, max_results)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=run, name="moss-agent-search", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise SearchUnavailable(f"search did not answer within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    value: list[str] = outcome["value"]
    return value


def search(
    query: str,
    *,
    backend: SearchBackend | None = None,
    max_results: int = 3,
    max_chars: int = 400,
    timeout: float = 20.0,
) -> list[str]:
    """Run the model's ``Search(query)`` call.

    Args:
        query: The model's query. Stripped, whitespace collapsed; 1–500 characters.
        backend: Where to search; :func:`default_search_backend` when omitted.
        max_results: The most snippets returned.
        max_chars: The most characters per snippet (see :func:`clip_snippet`).
        timeout: Seconds the whole search (retries included) may take.

    Returns:
        One to ``max_results`` single-line snippets, best first, duplicates removed.

    Raises:
        ToolError: The query is empty or too long, nothing was found (``results_text``
            ``"No result."``), or the backend failed; :class:`SearchUnavailable` when the
            service cannot be reached. Only :class:`ToolError` comes from model input or the
            backend's failures.
        UsageError: A caller mistake: bad limits, a malformed corpus, a missing package for an
            explicitly chosen backend.
    """
    if max_results < 1 or max_chars < 2 or timeout <= 0:
        raise UsageError("search needs max_results >= 1, max_chars >= 2 and timeout > 0")
    if not isinstance(query, str):
        raise ToolError(f"the query must be text, not {type(query).__name__}", results_text=NO_RESULT)
    query = " ".join(query.split())
    if not query:
        raise ToolError("empty search query", results_text=NO_RESULT)
    if len(query) > MAX_QUERY_CHARS:
        raise ToolError(f"search query longer than {MAX_QUERY_CHARS} characters", results_text=NO_RESULT)
    chosen = backend if backend is not None else default_search_backend()
    try:
        raw = _call_with_time_limit(chosen, query, max_results, timeout)
    except (ToolError, UsageError):
        raise
    except Exception as error:
        raise ToolError(f"search failed: {type(error).__name__}: {error}", results_text=NO_RESULT) from error
    snippets: list[str] = []
    for text in raw if isinstance(raw, list) else []:
        if not isinstance(text, str):
            continue
        snippet = clip_snippet(text, max_chars)
        if snippet and snippet not in snippets:
            snippets.append(snippet)
        if len(snippets) == max_results:
            break
    if not snippets:
        raise ToolError("no hits", results_text=NO_RESULT)
    return snippets


def _format_for_langchain(snippets: list[str]) -> str:
    return "\n".join(f"{number}. {snippet}" for number, snippet in enumerate(snippets, start=1))


def search_tool(backend: SearchBackend | None = None, **search_options: Any) -> BaseTool:
    """Build the LangChain tool ``Search``.

    The tool answers ``(content, artifact)``: content is the snippets as numbered lines for
    generic LangChain use, the artifact the list of snippets (the MOSS agent renders its own
    ``<|n|>: '…'`` lines from it). A failure never raises: content is the error's
    ``results_text`` and the artifact ``[]``.

    Args:
        backend: Where to search; :func:`default_search_backend` when omitted.
        **search_options: ``max_results``, ``max_chars``, ``timeout`` passed to :func:`search`.

    Returns:
        A :class:`~langchain_core.tools.StructuredTool` named ``"Search"``.
    """

    def run_search(query: str) -> tuple[str, list[str]]:
        try:
            snippets = search(query, backend=backend, **search_options)
        except ToolError as error:
            return error.results_text, []
        return _format_for_langchain(snippets), snippets

    return StructuredTool.from_function(
        func=run_search,
        name="Search",
        description="Search the web and return short text snippets of the best results.",
        args_schema=SearchInput,
        response_format="content_and_artifact",
    )
