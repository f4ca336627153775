from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from pytest_socket import SocketBlockedError

from moss_agent.errors import ToolError, UsageError
from moss_agent.tools import search as search_module
from moss_agent.tools import search_backends
from moss_agent.tools.search import (
    ELLIPSIS,
    MAX_QUERY_CHARS,
    DDGSBackend,
    Document,
    LocalCorpusBackend,
    RecordedBackend,
    SearchBackend,
    SearchInput,
    SearchUnavailable,
    clip_snippet,
    default_search_backend,
    search,
    search_tool,
)
from moss_agent.tools.search_backends import normalize_query, tokenize

# ----------------------------------------------------------------------------- helpers


class FakeDDGS:
    """Stands in for ``ddgs.DDGS``: answers from a script of results and exceptions."""

    def __init__(self, script: list[Any], calls: list[dict[str, Any]], timeout: float) -> None:
        self.script = script
        self.calls = calls
        self.timeout = timeout

    def text(self, query: str, **kwargs: Any) -> list[dict[str, str]]:
        self.calls.append({"query": query, "timeout": self.timeout, **kwargs})
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step


def fake_ddgs_backend(script: list[Any], **options: Any) -> tuple[DDGSBackend, list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []
    backend = DDGSBackend(
        backoff=0, client_factory=lambda timeout: FakeDDGS(script, calls, timeout), **options
    )
    return backend, calls


def ddgs_exception(name: str, message: str) -> Exception:
    from ddgs import exceptions

    return getattr(exceptions, name)(message)


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _fresh_default_backend(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv(search_module.CORPUS_ENV_VAR, raising=False)
    search_module._backend_for.cache_clear()
    yield
    search_module._backend_for.cache_clear()


# ----------------------------------------------------------------------------- clip_snippet


def test_clip_snippet_keeps_short_text_and_collapses_whitespace() -> None:
    assert clip_snippet("  Paris is\n the capital\tof  France. ", 400) == "Paris is the capital of France."


def test_clip_snippet_cuts_latin_text_on_a_word_boundary() -> None:
    text = "The quick brown fox jumps over the lazy dog near the riverbank"
    clipped = clip_snippet(text, 30)
    assert clipped == "The quick brown fox jumps" + ELLIPSIS
    assert len(clipped) <= 30


def test_clip_snippet_cuts_cjk_text_at_the_limit() -> None:
    text = "北京大学是中国最早的国立综合性大学之一，创办于1898年。"
    clipped = clip_snippet(text, 10)
    assert clipped == text[:9] + ELLIPSIS
    assert len(clipped) == 10


# ----------------------------------------------------------------------------- search(): validation


@pytest.mark.parametrize("query", ["", "   ", "\n\t", "x" * (MAX_QUERY_CHARS + 1)])
def test_bad_queries_are_tool_errors_with_no_result(query: str) -> None:
    backend = RecordedBackend({})
    with pytest.raises(ToolError) as caught:
        search(query, backend=backend)
    assert caught.value.results_text == "No result."
    assert backend.queries == []  # rejected before reaching the backend


def test_a_query_of_the_maximum_length_is_accepted() -> None:
    query = "q" * MAX_QUERY_CHARS
    assert search(query, backend=RecordedBackend({query: ["ok"]})) == ["ok"]


def test_query_whitespace_is_collapsed_before_the_backend() -> None:
    backend = RecordedBackend({"moss fudan": ["hit"]})
    assert search("  moss \n fudan ", backend=backend) == ["hit"]
    assert backend.queries == ["moss fudan"]


@pytest.mark.parametrize("options", [{"max_results": 0}, {"max_chars": 1}, {"timeout": 0}])
def test_bad_limits_are_usage_errors(options: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        search("q", backend=RecordedBackend({}), **options)


# ----------------------------------------------------------------------------- search(): results


def test_search_keeps_top_results_cleans_and_dedupes() -> None:
    backend = RecordedBackend(
        {"weather": ["Sunny\nand warm.", "Sunny and warm.", "", "Rain later.", "Windy.", "Cold."]}
    )
    # The backend is asked for max_results; duplicates and empty snippets are then dropped.
    assert search("weather", backend=backend, max_results=3) == ["Sunny and warm."]
    assert search("weather", backend=backend, max_results=5) == ["Sunny and warm.", "Rain later.", "Windy."]


def test_search_cuts_long_snippets() -> None:
    backend = RecordedBackend({"long": ["word " * 200]})
    (snippet,) = search("long", backend=backend, max_chars=50)
    assert len(snippet) <= 50 and snippet.endswith(ELLIPSIS)


def test_no_hits_is_a_tool_error_with_no_result() -> None:
    with pytest.raises(ToolError, match="no hits") as caught:
        search("unknown", backend=RecordedBackend({"known": ["x"]}))
    assert caught.value.results_text == "No result."


def test_a_crashing_backend_becomes_a_tool_error() -> None:
    class Broken:
        def search(self, query: str, max_results: int) -> list[str]:
            raise KeyError("boom")

    with pytest.raises(ToolError) as caught:
        search("q", backend=Broken())
    assert caught.value.results_text == "No result."
    assert "KeyError" in str(caught.value)


def test_a_slow_backend_is_cut_off_by_the_time_limit() -> None:
    class Slow:
        def search(self, query: str, max_results: int) -> list[str]:
            time.sleep(2)
            return ["late"]

    started = time.monotonic()
    with pytest.raises(SearchUnavailable, match="within"):
        search("q", backend=Slow(), timeout=0.2)
    assert time.monotonic() - started < 1.5


def test_usage_errors_from_the_backend_propagate(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    with pytest.raises(UsageError, match="bad.jsonl:1"):
        search("q", backend=LocalCorpusBackend(bad))


# ----------------------------------------------------------------------------- RecordedBackend


def test_recorded_backend_matches_normalised_queries() -> None:
    backend = RecordedBackend({"Fudan  University": ["a", "b", "c"]})
    assert backend.search("fudan university", 2) == ["a", "b"]
    assert backend.search("ＦＵＤＡＮ University", 5) == ["a", "b", "c"]  # full-width letters
    assert backend.search("fudan", 5) == []
    assert normalize_query("  A\tB ") == "a b"
    assert isinstance(backend, SearchBackend)


# ----------------------------------------------------------------------------- DDGSBackend (fake client)


def test_ddgs_backend_returns_bodies_and_passes_options() -> None:
    results = [
        {"title": "T1", "href": "https://a", "body": "Body one."},
        {"title": "Only a title", "href": "https://b", "body": ""},
        {"title": "", "href": "https://c", "body": ""},
        "not a dict",
    ]
    backend, calls = fake_ddgs_backend([results], timeout=3.0, region="cn-zh", backend="bing")
    assert search("moss", backend=backend, max_results=3) == ["Body one.", "Only a title"]
    assert calls == [
        {"query": "moss", "timeout": 3.0, "max_results": 3, "region": "cn-zh", "backend": "bing"}
    ]


def test_ddgs_backend_retries_a_transient_error_then_succeeds() -> None:
    script = [ddgs_exception("RatelimitException", "202 Ratelimit"), [{"title": "t", "body": "Second try."}]]
    backend, calls = fake_ddgs_backend(script, retries=1)
    assert backend.search("moss", 3) == ["Second try."]
    assert len(calls) == 2


def test_ddgs_backend_gives_up_after_retries_with_search_unavailable() -> None:
    script = [ddgs_exception("TimeoutException", "timed out")] * 3
    backend, calls = fake_ddgs_backend(script, retries=2)
    with pytest.raises(SearchUnavailable) as caught:
        search("moss", backend=backend)
    assert len(calls) == 3
    assert caught.value.results_text == "Search is unavailable right now (no network)."


@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")
def test_ddgs_backend_maps_blocked_sockets_to_search_unavailable_without_retrying() -> None:
    backend, calls = fake_ddgs_backend([SocketBlockedError()], retries=3)
    with pytest.raises(SearchUnavailable):
        backend.search("moss", 3)
    assert len(calls) == 1


def test_ddgs_no_results_found_is_an_empty_answer() -> None:
    backend, _ = fake_ddgs_backend([ddgs_exception("DDGSException", "No results found.")])
    assert backend.search("zzqxj", 3) == []
    backend, _ = fake_ddgs_backend([ddgs_exception("DDGSException", "No results found.")])
    with pytest.raises(ToolError) as caught:
        search("zzqxj", backend=backend)
    assert caught.value.results_text == "No result."


def test_ddgs_backend_uses_the_ddgs_class_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import ddgs

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        ddgs, "DDGS", lambda timeout: FakeDDGS([[{"body": "Real class path."}]], calls, timeout)
    )
    monkeypatch.setattr(search_backends, "_python_sockets_allowed", lambda: True)
    assert DDGSBackend(timeout=2.0).search("moss", 1) == ["Real class path."]
    assert calls[0]["timeout"] == 2.0 and calls[0]["region"] == "us-en"


@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")
def test_real_ddgs_backend_without_sockets_is_unavailable_and_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    # Belt and braces: ddgs talks HTTP from Rust, which pytest-socket cannot see, so also point
    # it at a closed local port in case the socket check ever stopped working.
    monkeypatch.setenv("DDGS_PROXY", "http://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(SearchUnavailable) as caught:
        search("what is MOSS", backend=DDGSBackend(timeout=1.0, retries=0), timeout=5.0)
    assert "blocked" in str(caught.value)
    assert time.monotonic() - started < 3.0


# ----------------------------------------------------------------------------- tokenize


def test_tokenize_english_and_chinese() -> None:
    assert tokenize("Hello, World! MOSS-003") == ["hello", "world", "moss", "003"]
    assert tokenize("北京大学") == ["北", "京", "大", "学", "北京", "京大", "大学"]
    assert tokenize("GPT4模型好") == ["gpt4", "模", "型", "好", "模型", "型好"]
    assert tokenize("ＡＢＣ１２３") == ["abc123"]  # full-width folds to ASCII
    assert tokenize("  ,.!? ") == []


# ----------------------------------------------------------------------------- LocalCorpusBackend

CORPUS = [
    {"id": "paris", "title": "Paris", "text": "Paris is the capital and largest city of France."},
    {"id": "moss", "title": "MOSS", "text": "MOSS is a conversational language model from Fudan University."},
    {"id": "fudan", "text": "复旦大学位于上海，是中国著名的综合性大学。"},
    {"id": "pku", "text": "北京大学位于北京，创办于1898年。"},
]


def test_local_corpus_ranks_english_and_chinese(tmp_path: Path) -> None:
    backend = LocalCorpusBackend(write_jsonl(tmp_path / "corpus.jsonl", CORPUS))
    assert backend.search("capital of France", 2) == [CORPUS[0]["text"]]
    assert backend.search("Fudan language model", 1) == [CORPUS[1]["text"]]
    assert backend.search("复旦大学在哪里", 1) == [CORPUS[2]["text"]]
    assert backend.search("北京大学", 1) == [CORPUS[3]["text"]]
    assert backend.search("zebra quantum", 3) == []
    assert [doc.id for doc in backend.documents] == ["paris", "moss", "fudan", "pku"]


def test_local_corpus_breaks_ties_by_document_order() -> None:
    backend = LocalCorpusBackend(["apple pie", "banana", "apple pie", Document("apple pie", id="x")])
    assert backend.search("apple", 10) == ["apple pie"] * 3
    # Through search(): identical snippets are merged.
    assert search("apple", backend=backend) == ["apple pie"]
    backend = LocalCorpusBackend([{"text": "cat one"}, {"text": "cat two"}, {"text": "cat three"}])
    assert backend.search("cat", 3) == ["cat one", "cat two", "cat three"]


def test_local_corpus_loads_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = LocalCorpusBackend(write_jsonl(tmp_path / "corpus.jsonl", CORPUS))
    builds = []
    original = backend._build
    monkeypatch.setattr(backend, "_build", lambda: builds.append(1) or original())
    backend.search("paris", 1)
    backend.search("moss", 1)
    assert builds == [1]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"title": "no text"}', "'text' must be a non-empty string"),
        ('{"text": ""}', "'text' must be a non-empty string"),
        ('["a list"]', "expected a JSON object"),
        ('{"text": "ok", "title": 3}', "'title' must be a string"),
    ],
)
def test_malformed_corpus_lines_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"text": "fine"}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(UsageError, match=f"corpus.jsonl:3: {message}"):
        LocalCorpusBackend(path).load()


def test_corpus_file_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        LocalCorpusBackend(tmp_path / "missing.jsonl").load()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(UsageError, match="no documents"):
        LocalCorpusBackend(empty).load()
    big = write_jsonl(tmp_path / "big.jsonl", CORPUS)
    monkeypatch.setattr(search_backends, "MAX_CORPUS_BYTES", 10)
    with pytest.raises(UsageError, match="limit is 10 bytes"):
        LocalCorpusBackend(big).load()


# ----------------------------------------------------------------------------- default backend


def test_default_backend_is_the_corpus_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(search_module.CORPUS_ENV_VAR, str(write_jsonl(tmp_path / "c.jsonl", CORPUS)))
    backend = default_search_backend()
    assert isinstance(backend, LocalCorpusBackend)
    assert default_search_backend() is backend  # indexed once per process
    assert search("capital of France") == [CORPUS[0]["text"]]


def test_default_backend_rejects_a_missing_corpus_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(search_module.CORPUS_ENV_VAR, str(tmp_path / "nope.jsonl"))
    with pytest.raises(UsageError, match="MOSS_AGENT_SEARCH_CORPUS"):
        default_search_backend()


def test_default_backend_is_ddgs_when_installed() -> None:
    assert isinstance(default_search_backend(), DDGSBackend)


def test_default_backend_without_ddgs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = search_module.importlib.util.find_spec
    monkeypatch.setattr(
        search_module.importlib.util,
        "find_spec",
        lambda name: None if name == "ddgs" else real_find_spec(name),
    )
    with pytest.raises(SearchUnavailable, match=r"moss-agent\[search\]") as caught:
        search("anything")
    assert caught.value.results_text == "Search is unavailable right now (no network)."


# ----------------------------------------------------------------------------- LangChain tool


def tool_call(query: str) -> dict[str, Any]:
    return {"name": "Search", "args": {"query": query}, "id": "call-1", "type": "tool_call"}


def test_search_tool_returns_content_and_artifact() -> None:
    tool = search_tool(RecordedBackend({"moss": ["First.", "Second."]}))
    assert tool.name == "Search"
    assert tool.args_schema is SearchInput
    assert tool.invoke({"query": "moss"}) == "1. First.\n2. Second."
    message = tool.invoke(tool_call("moss"))
    assert isinstance(message, ToolMessage)
    assert message.content == "1. First.\n2. Second."
    assert message.artifact == ["First.", "Second."]


@pytest.mark.parametrize("query", ["", "unknown"])
def test_search_tool_failure_is_no_result_not_an_exception(query: str) -> None:
    message = search_tool(RecordedBackend({})).invoke(tool_call(query))
    assert message.content == "No result."
    assert message.artifact == []


def test_search_tool_reports_unavailable_search() -> None:
    backend, _ = fake_ddgs_backend([ddgs_exception("DDGSException", "ConnectError")], retries=0)
    message = search_tool(backend).invoke(tool_call("moss"))
    assert message.content == "Search is unavailable right now (no network)."
    assert message.artifact == []


async def test_search_tool_async() -> None:
    message = await search_tool(RecordedBackend({"moss": ["Async."]})).ainvoke(tool_call("moss"))
    assert message.artifact == ["Async."]


# ----------------------------------------------------------------------------- import hygiene


def test_importing_search_loads_no_heavy_package() -> None:
    code = (
        "import sys, json, moss_agent.tools.search; "
        "print(json.dumps([m for m in ('ddgs', 'bm25s', 'torch') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_local_corpus_search_keeps_jax_from_starting(tmp_path: Path) -> None:
    # bm25s imports jax.lax (and runs it) when JAX is installed; JAX then grabs 75 % of a GPU.
    fake = tmp_path / "site" / "jax"
    fake.mkdir(parents=True)
    marker = tmp_path / "jax-imported"
    (fake / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write('jax ')\n")
    (fake / "lax.py").write_text("def top_k(x, k):\n    raise RuntimeError('JAX ran')\n")
    script = (
        "import sys\n"
        "from moss_agent.tools.search_backends import LocalCorpusBackend\n"
        "backend = LocalCorpusBackend([{'title': 'Paris', 'text': 'Paris is the capital of France.'},"
        " {'title': 'Rome', 'text': 'Rome is in Italy.'}])\n"
        "print(backend.search('capital of France', 1))\n"
        "assert 'jax' not in sys.modules, sys.modules.get('jax')\n"
        "import jax\n"  # the program's own JAX still imports afterwards
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Paris is the capital of France." in done.stdout
    assert marker.read_text() == "jax "  # imported once: by the program, not by bm25s
