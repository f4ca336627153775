"""Search backends for the MOSS ``Search(query)`` plugin.

A backend turns a query into a list of snippet texts, best first. Three ship here:

* :class:`DDGSBackend` — live web search through the ``ddgs`` metasearch package
  (``pip install 'moss-agent[search]'``).
* :class:`LocalCorpusBackend` — BM25 over a local JSONL corpus (offline, deterministic),
  for English and Chinese text.
* :class:`RecordedBackend` — fixed snippets for fixed queries, for evals and tests.

Any object with a matching ``search`` method is a :class:`SearchBackend`.
Heavy packages (``ddgs``, ``bm25s``, ``numpy``) are imported on first use only.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from moss_agent.errors import MissingDependencyError, ToolError, UsageError

if TYPE_CHECKING:
    import bm25s

__all__ = [
    "MAX_CORPUS_BYTES",
    "MAX_DOCUMENT_CHARS",
    "DDGSBackend",
    "Document",
    "LocalCorpusBackend",
    "RecordedBackend",
    "SearchBackend",
    "SearchUnavailable",
    "normalize_query",
    "read_corpus",
    "tokenize",
]

MAX_CORPUS_BYTES = 64 * 1024 * 1024
"""Largest JSONL corpus file :class:`LocalCorpusBackend` reads (64 MiB); BM25 is kept in memory."""
MAX_DOCUMENT_CHARS = 100_000
"""Largest ``text`` of one corpus document; longer documents are rejected as malformed."""

_UNAVAILABLE_TEXT = "Search is unavailable right now (no network)."


class SearchUnavailable(ToolError):
    """The search service cannot be reached (no network, rate limit, missing package).

    The model sees :attr:`results_text` (by default
    ``"Search is unavailable right now (no network)."``) and can answer without search.
    """

    def __init__(self, message: str, *, results_text: str = _UNAVAILABLE_TEXT) -> None:
        super().__init__(message, results_text=results_text)


@runtime_checkable
class SearchBackend(Protocol):
    """Something that answers a search query with snippet texts."""

    def search(self, query: str, max_results: int) -> list[str]:
        """Return up to ``max_results`` snippet texts for ``query``, best first.

        Args:
            query: The (already validated) query text.
            max_results: The most snippets wanted.

        Returns:
            Snippet texts; an empty list when nothing matches.

        Raises:
            SearchUnavailable: The service cannot be reached.
            ToolError: Any other failure the model should hear about.
        """
        ...


def normalize_query(query: str) -> str:
    """Normalise a query for exact matching: NFKC, case-folded, whitespace collapsed.

    Args:
        query: Any query text.

    Returns:
        The normalised text.
    """
    return " ".join(unicodedata.normalize("NFKC", query).casefold().split())


# --------------------------------------------------------------------------- DDGS (web)


def _python_sockets_allowed() -> bool:
    """Whether this process may open an internet socket through Python's ``socket`` module.

    ``ddgs`` does its HTTP in Rust (``primp``), which bypasses Python-level network policies
    such as pytest-socket; checking here keeps the backend inside such a policy.
    """
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    except (OSError, RuntimeError):  # pytest-socket raises SocketBlockedError(RuntimeError)
        return False
    probe.close()
    return True


def _default_ddgs_client(timeout: float) -> Any:
    try:
        from ddgs import DDGS
    except ImportError as error:
        raise MissingDependencyError("ddgs", "search", "web search") from error
    return DDGS(timeout=timeout)  # type: ignore[arg-type]  # ddgs types it int; floats work


def _is_no_results(error: Exception) -> bool:
    # ddgs raises DDGSException("No results found.") when every engine answered with nothing.
    return type(error).__name__ == "DDGSException" and "No results found" in str(error)


def _is_transient(error: Exception) -> bool:
    # ddgs wraps every HTTP failure in DDGSException (RatelimitException, TimeoutException are
    # subclasses); OSError covers connection errors raised by a client directly.
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"DDGSException", "OSError", "TimeoutError"})


class DDGSBackend:
    """Live web search through the ``ddgs`` metasearch package.

    Each result's ``body`` is the snippet (its ``title`` when the body is empty). Transient
    failures (time-outs, rate limits, connection errors) are retried ``retries`` times with a
    short exponential backoff; then :class:`SearchUnavailable` is raised. So is it at once when
    Python sockets are blocked in this process (sandbox, pytest-socket).

    Args:
        timeout: Seconds ``ddgs`` waits for the engines of one request.
        retries: Extra attempts after a transient failure.
        region: ``ddgs`` region code, ``country-language`` (``"us-en"``, ``"cn-zh"``).
        backend: ``ddgs`` engine list, e.g. ``"auto"`` or ``"duckduckgo,bing"``.
        backoff: Seconds before the first retry; doubled on each further retry.
        client_factory: Called as ``client_factory(timeout=...)`` to make the client, an object
            with ddgs' ``text(query, max_results=..., region=..., backend=...)`` method returning
            a list of dicts. Defaults to ``ddgs.DDGS``; tests inject a fake.
    """

    def __init__(
        self,
        timeout: float = 5.0,
        retries: int = 1,
        region: str = "us-en",
        backend: str = "auto",
        *,
        backoff: float = 0.5,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise UsageError("DDGSBackend needs timeout > 0, retries >= 0 and backoff >= 0")
        self.timeout = timeout
        self.retries = retries
        self.region = region
        self.backend = backend
        self.backoff = backoff
        self._client_factory = client_factory

    def search(self, query: str, max_results: int) -> list[str]:
        """Search the web; see :meth:`SearchBackend.search`."""
        if self._client_factory is None:
            if not _python_sockets_allowed():
                raise SearchUnavailable("network access is blocked in this process")
            client = _default_ddgs_client(self.timeout)
        else:
            client = self._client_factory(timeout=self.timeout)
        last_error: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                results = client.text(
                    query, max_results=max_results, region=self.region, backend=self.backend
                )
            except Exception as error:  # noqa: BLE001 - every client failure is classified below
                if _is_no_results(error):
                    return []
                last_error = error
                if not _is_transient(error):
                    break
                continue
            return _snippets_from_results(results)[:max_results]
        raise SearchUnavailable(f"web search failed: {type(last_error).__name__}: {last_error}")


def _snippets_from_results(results: Iterable[Any]) -> list[str]:
    snippets = []
    for result in results or ():
        if not isinstance(result, Mapping):
            continue
        text = result.get("body") or result.get("title") or ""
        if isinstance(text, str) and text.strip():
            snippets.append(text)
    return snippets


# --------------------------------------------------------------------------- local corpus (BM25)

_CJK_RANGES = (
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3100-\u312f"  # bopomofo
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
)
_TOKEN_RE = re.compile(f"(?P<cjk>[{_CJK_RANGES}]+)|(?P<word>[^\\W_{_CJK_RANGES}]+)")


def tokenize(text: str) -> list[str]:
    """Split text into BM25 terms for English and Chinese alike.

    Latin (and other space-delimited) text gives lower-cased words; each run of CJK characters
    gives its characters and its character bigrams (``"北京大学"`` → 北, 京, 大, 学, 北京, 京大,
    大学). Text is NFKC-normalised first, so full-width letters and digits match ASCII ones.

    Args:
        text: Any text.

    Returns:
        The terms, in order of appearance.
    """
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(unicodedata.normalize("NFKC", text).casefold()):
        run = match.group("cjk")
        if run is None:
            tokens.append(match.group("word"))
            continue
        tokens.extend(run)
        tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    return tokens


class Document(NamedTuple):
    """One document of a local corpus."""

    text: str
    """The snippet returned when the document matches."""
    id: str | None = None
    """Optional identifier, kept for the caller."""
    title: str | None = None
    """Optional title; indexed together with the text."""


def _document_from_record(record: Any, where: str) -> Document:
    if isinstance(record, str):
        record = {"text": record}
    if not isinstance(record, Mapping):
        raise UsageError(f"{where}: expected a JSON object with a 'text' field")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"{where}: 'text' must be a non-empty string")
    if len(text) > MAX_DOCUMENT_CHARS:
        raise UsageError(f"{where}: 'text' is longer than {MAX_DOCUMENT_CHARS} characters")
    title = record.get("title")
    if title is not None and not isinstance(title, str):
        raise UsageError(f"{where}: 'title' must be a string")
    doc_id = record.get("id")
    if doc_id is not None and not isinstance(doc_id, (str, int)):
        raise UsageError(f"{where}: 'id' must be a string or an integer")
    return Document(text=text, id=None if doc_id is None else str(doc_id), title=title)


def read_corpus(path: str | Path) -> list[Document]:
    """Read and validate a JSONL corpus: one JSON object a line with ``text``, ``id``, ``title``.

    Blank lines are skipped. The file may be at most :data:`MAX_CORPUS_BYTES` long.

    Args:
        path: The ``.jsonl`` file.

    Returns:
        The documents in file order.

    Raises:
        UsageError: The file is missing, too large, or a line is malformed (with its number).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise UsageError(f"cannot read the search corpus {str(path)!r}: {error}") from error
    if size > MAX_CORPUS_BYTES:
        raise UsageError(
            f"the search corpus {str(path)!r} is {size} bytes; the limit is {MAX_CORPUS_BYTES} bytes"
        )
    documents = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise UsageError(f"{where}: not valid JSON ({error.msg})") from error
            documents.append(_document_from_record(record, where))
    return documents


class LocalCorpusBackend:
    """BM25 search over local documents, offline and deterministic.

    The corpus is read and indexed (with ``bm25s``) on the first search, once. Documents with
    equal scores keep corpus order; documents scoring 0 (no shared term) are never returned.

    Args:
        path_or_documents: A JSONL file (see :func:`read_corpus`), or the documents themselves:
            :class:`Document` objects, mappings with ``text`` (and optional ``id``, ``title``),
            or plain strings.
    """

    def __init__(self, path_or_documents: str | Path | Iterable[Document | Mapping[str, Any] | str]) -> None:
        self._source = (
            path_or_documents if isinstance(path_or_documents, (str, Path)) else list(path_or_documents)
        )
        self._lock = threading.Lock()
        self._documents: list[Document] | None = None
        self._index: bm25s.BM25 | None = None

    @property
    def documents(self) -> list[Document]:
        """The corpus documents (loads the corpus if needed)."""
        return self.load()

    def load(self) -> list[Document]:
        """Read, validate and index the corpus now (otherwise done on the first search).

        Returns:
            The documents.

        Raises:
            UsageError: The corpus is malformed, too large, or empty.
        """
        return self._load()[0]

    def _load(self) -> tuple[list[Document], bm25s.BM25]:
        with self._lock:
            if self._documents is None or self._index is None:
                self._documents, self._index = self._build()
            return self._documents, self._index

    def _build(self) -> tuple[list[Document], bm25s.BM25]:
        if isinstance(self._source, (str, Path)):
            documents = read_corpus(self._source)
        else:
            documents = [
                item if isinstance(item, Document) else _document_from_record(item, f"document {i}")
                for i, item in enumerate(self._source, start=1)
            ]
        if not documents:
            raise UsageError("the search corpus has no documents")
        index = _import_bm25s().BM25()
        index.index([tokenize(f"{doc.title or ''}\n{doc.text}") for doc in documents], show_progress=False)
        return documents, index

    def search(self, query: str, max_results: int) -> list[str]:
        """Return the texts of the best-matching documents; see :meth:`SearchBackend.search`."""
        import numpy as np

        documents, index = self._load()
        terms = tokenize(query)
        if not terms or max_results < 1:
            return []
        scores = np.asarray(index.get_scores(terms))
        order = np.argsort(-scores, kind="stable")[:max_results]
        return [documents[i].text for i in order if scores[i] > 0]


def _import_bm25s() -> Any:
    """``import bm25s`` without letting it start JAX.

    When JAX is installed, importing bm25s imports ``jax.lax`` and runs a top-k with it, which
    initialises JAX's GPU backend, and JAX then preallocates 75 % of the GPU's memory for the
    rest of the process (measured on an H100: about 60 GB in every training and eval process,
    so a few of them at once ran out of memory). This backend only uses bm25s's NumPy scorer,
    so JAX is hidden while bm25s loads, unless the program has imported JAX itself.
    """
    with _BM25S_IMPORT_LOCK:
        hide_jax = "jax" not in sys.modules
        if hide_jax:
            sys.modules["jax"] = None  # type: ignore[assignment]  # makes "import jax…" fail
        try:
            import bm25s
        finally:
            if hide_jax and "jax" in sys.modules and sys.modules["jax"] is None:
                del sys.modules["jax"]
    return bm25s


_BM25S_IMPORT_LOCK = threading.Lock()


# --------------------------------------------------------------------------- recorded


class RecordedBackend:
    """Fixed snippets for fixed queries, for reproducible evals and tests.

    Queries match after :func:`normalize_query` (case, width and whitespace do not matter);
    an unknown query has no result. Every query asked is appended to :attr:`queries`.

    Args:
        mapping: Query → snippets.
    """

    def __init__(self, mapping: Mapping[str, list[str]]) -> None:
        self._mapping = {normalize_query(query): list(snippets) for query, snippets in mapping.items()}
        self.queries: list[str] = []
        """The queries asked, in order."""

    def search(self, query: str, max_results: int) -> list[str]:
        """Return the recorded snippets; see :meth:`SearchBackend.search`."""
        self.queries.append(query)
        return self._mapping.get(normalize_query(query), [])[:max_results]
