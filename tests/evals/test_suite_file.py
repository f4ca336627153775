"""The shipped plugin-accuracy suite (evals/suites/plugin-basic.jsonl) and its search corpus.

Fast, offline checks of the data itself: schema, ids, counts, and that every expected value,
solution and search answer is consistent with the tools and the corpus the runner uses.
"""

from __future__ import annotations

import collections
import json
import math
import re
from pathlib import Path

import pytest

SUITES = Path(__file__).resolve().parents[2] / "evals" / "suites"
SUITE = SUITES / "plugin-basic.jsonl"
CORPUS = SUITES / "plugin-basic.corpus.jsonl"

TOOLS = ("Search", "Calculate", "Solve", "Text2Image")
CATEGORIES = {
    "calc": "calculate",
    "solve": "solve",
    "search": "search",
    "image": "text2image",
    "nocall": "nocall",
    "disabled": "disabled",
    "multi": "multi",
}
ID_RE = re.compile(r"^(?P<prefix>[a-z]+)-(?P<lang>en|zh)-\d{3}$")


def _read_jsonl(path: Path) -> list[dict]:
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:  # pragma: no cover - a failure message
            pytest.fail(f"{path.name}:{number}: not valid JSON ({error.msg})")
        assert isinstance(record, dict), f"{path.name}:{number}: not a JSON object"
        records.append(record)
    return records


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    return _read_jsonl(SUITE)


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return _read_jsonl(CORPUS)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_required_fields_and_types(cases: list[dict]) -> None:
    for case in cases:
        cid = case.get("id")
        assert isinstance(cid, str) and cid, case
        for field in ("lang", "category", "messages", "plugins", "expect"):
            assert field in case, f"{cid}: missing {field!r}"
        assert case["lang"] in ("en", "zh"), cid
        assert isinstance(case["expect"], dict) and "tool" in case["expect"], cid
        if "answer" in case:
            answer = case["answer"]
            assert isinstance(answer, list) and answer, cid
            assert all(isinstance(a, str) and a.strip() for a in answer), cid
        if "keywords" in case["expect"]:
            keywords = case["expect"]["keywords"]
            assert isinstance(keywords, list) and keywords, cid
            assert all(isinstance(k, str) and k.strip() for k in keywords), cid


def test_ids_are_unique_and_name_category_and_language(cases: list[dict]) -> None:
    ids = [case["id"] for case in cases]
    duplicates = [cid for cid, n in collections.Counter(ids).items() if n > 1]
    assert not duplicates, duplicates
    for case in cases:
        match = ID_RE.match(case["id"])
        assert match, f"{case['id']}: expected CATEGORY-LANG-NNN"
        assert CATEGORIES.get(match["prefix"]) == case["category"], case["id"]
        assert match["lang"] == case["lang"], case["id"]


def test_messages_alternate_and_end_with_the_user(cases: list[dict]) -> None:
    for case in cases:
        messages = case["messages"]
        assert isinstance(messages, list) and messages, case["id"]
        for i, message in enumerate(messages):
            assert set(message) == {"role", "content"}, case["id"]
            assert isinstance(message["content"], str) and message["content"].strip(), case["id"]
            assert message["role"] == ("user" if i % 2 == 0 else "assistant"), case["id"]
        assert messages[-1]["role"] == "user", case["id"]


def test_plugins_and_expected_tool(cases: list[dict]) -> None:
    for case in cases:
        plugins = case["plugins"]
        assert isinstance(plugins, list) and plugins, case["id"]
        assert len(set(plugins)) == len(plugins), case["id"]
        assert set(plugins) <= set(TOOLS), case["id"]
        tool = case["expect"]["tool"]
        assert tool is None or tool in TOOLS, case["id"]
        # A tool that is switched off can never be the right call.
        assert tool is None or tool in plugins, f"{case['id']}: expects {tool} but it is disabled"
        if case["id"].startswith("disabled-"):
            assert tool is None, case["id"]
            assert case.get("needs") in TOOLS, case["id"]
            assert case["needs"] not in plugins, case["id"]


def test_counts(cases: list[dict]) -> None:
    assert len(cases) >= 300
    by_category = collections.defaultdict(set)
    for case in cases:
        by_category[case["category"]].add(case["lang"])
    assert set(by_category) == set(CATEGORIES.values())
    for category, langs in by_category.items():
        assert langs == {"en", "zh"}, category
    assert {case["expect"]["tool"] for case in cases} == {*TOOLS, None}
    assert sum(len(case["messages"]) > 1 for case in cases) >= 20
    assert sum(case["category"] == "multi" for case in cases) >= 20
    assert sum(case["category"] == "disabled" for case in cases) >= 20
    assert sum(case["category"] == "nocall" for case in cases) >= 20


def test_calculate_values_and_answers_agree(cases: list[dict]) -> None:
    calculated = [case for case in cases if "value" in case["expect"]]
    assert len(calculated) >= 80
    for case in calculated:
        assert case["expect"]["tool"] == "Calculate", case["id"]
        value = case["expect"]["value"]
        assert _is_number(value), case["id"]
        if "answer" in case:
            shown = float(case["answer"][0])
            # Integral results are given exactly; others rounded to at most 2 decimals.
            assert abs(shown - value) <= 0.005 + 1e-9 * abs(value), case["id"]


def test_calculate_references_evaluate_to_the_expected_value(cases: list[dict]) -> None:
    from moss_agent.tools.calculator import evaluate_expression

    for case in cases:
        if "value" in case["expect"] and "reference" in case:
            got = evaluate_expression(case["reference"])
            assert math.isclose(got, case["expect"]["value"], rel_tol=1e-9), case["id"]


def test_solve_values_and_answers_agree(cases: list[dict]) -> None:
    solved = [case for case in cases if "solution_values" in case["expect"]]
    assert len(solved) >= 70
    for case in solved:
        assert case["expect"]["tool"] == "Solve", case["id"]
        values = case["expect"]["solution_values"]
        assert isinstance(values, list) and values and all(map(_is_number, values)), case["id"]
        shown = {str(v) for v in values}
        assert set(case.get("answer", [])) <= shown, case["id"]


def test_solve_references_give_the_expected_solution(cases: list[dict]) -> None:
    sympy = pytest.importorskip("sympy")
    from moss_agent.tools.solver import solve_equations

    for case in cases:
        if "solution_values" in case["expect"] and "reference" in case:
            solutions = solve_equations(case["reference"])
            assert len(solutions) == 1, case["id"]
            got = sorted(float(sympy.Rational(v)) for v in solutions[0].values())
            assert got == pytest.approx(sorted(case["expect"]["solution_values"])), case["id"]


def test_corpus_documents(corpus: list[dict]) -> None:
    assert len(corpus) >= 100
    ids = [doc["id"] for doc in corpus]
    assert len(set(ids)) == len(ids)
    for doc in corpus:
        assert isinstance(doc.get("title"), str) and doc["title"].strip(), doc["id"]
        assert isinstance(doc.get("text"), str) and 40 <= len(doc["text"]) <= 300, doc["id"]


def test_search_answers_are_in_the_corpus(cases: list[dict], corpus: list[dict]) -> None:
    texts = {doc["id"]: f"{doc['title']}\n{doc['text']}".casefold() for doc in corpus}
    searched = [case for case in cases if case["expect"]["tool"] == "Search"]
    assert sum(case["category"] == "search" for case in searched) >= 50
    for case in searched:
        for answer in case.get("answer", []):
            holders = {doc_id for doc_id, text in texts.items() if answer.casefold() in text}
            assert holders, f"{case['id']}: {answer!r} is in no corpus document"
            if "docs" in case:
                # The answer is in the documents about the entity, and in no distractor.
                assert holders == set(case["docs"]), case["id"]


def test_the_corpus_loads_in_the_search_backend(corpus: list[dict]) -> None:
    from moss_agent.tools.search_backends import read_corpus

    assert len(read_corpus(CORPUS)) == len(corpus)
