from __future__ import annotations

import json
import re

import pytest

from moss_agent.evals.runner import run_eval
from moss_agent.evals.suite import detect_language, load_suite
from moss_agent.testing import ScriptedMossLLM
from moss_agent.train.data import generate_dataset
from moss_agent.train.heldout import heldout_suite


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    generate_dataset(out, n_train=60, n_test=60, n_valid=10, seed=3)
    return out


def test_heldout_suite_scores_the_generators_own_answers_perfectly(dataset, tmp_path):
    suite_file = heldout_suite(dataset / "test.jsonl", dataset / "corpus.jsonl", tmp_path / "heldout.jsonl")
    suite = load_suite(suite_file)
    assert not suite.warnings and len(suite.cases) >= 60
    assert (tmp_path / "heldout.corpus.jsonl").is_file()
    by_human: dict[str, tuple[str, str]] = {}
    for line in (dataset / "test.jsonl").read_text(encoding="utf-8").splitlines():
        for turn in json.loads(line)["chat"].values():
            human = turn["Human"][len("<|Human|>: ") : -len("<eoh>\n")]
            by_human[human] = (turn["Inner Thoughts"] + turn["Commands"], turn["MOSS"])

    def respond(prompt: str) -> str:
        last = prompt.rsplit("<|Human|>: ", 1)[1]
        human = last.split("<eoh>", 1)[0]
        first, reply = by_human[human]
        return reply if "<|Results|>" in last else first

    run = run_eval(suite_file, tmp_path / "run", target=ScriptedMossLLM(respond=respond), progress=False)
    summary = run.summary
    assert summary["trigger_accuracy"] == 1.0
    assert summary["argument_accuracy"] == 1.0
    assert summary["answer_accuracy"] is None or summary["answer_accuracy"] >= 0.95


def test_novel_name_suite_renames_every_declared_tool_consistently(dataset, tmp_path):
    from moss_agent.protocol import builtin_plugins
    from moss_agent.train.heldout import novel_name_suite

    suite_file = heldout_suite(dataset / "test.jsonl", dataset / "corpus.jsonl", tmp_path / "heldout.jsonl")
    novel_file = novel_name_suite(suite_file, tmp_path / "novel.jsonl", seed=0)
    assert (
        novel_name_suite(suite_file, tmp_path / "again.jsonl", seed=0).read_bytes() == novel_file.read_bytes()
    )
    assert (tmp_path / "novel.corpus.jsonl").is_file()
    original = {c["id"]: c for c in map(json.loads, suite_file.read_text(encoding="utf-8").splitlines())}
    novel = [json.loads(line) for line in novel_file.read_text(encoding="utf-8").splitlines()]
    assert len(novel) == sum(bool(c["tools"]) for c in original.values()) >= 5
    builtin = {p.name for p in builtin_plugins()}
    for case in novel:
        before = original[case["id"].removesuffix("-novel")]
        names = dict(zip((t["name"] for t in before["tools"]), (t["name"] for t in case["tools"])))
        assert all(old != new and new not in builtin for old, new in names.items())
        assert case["plugins"] == [names.get(p, p) for p in before["plugins"]]
        assert case["expect"]["tool"] == names.get(before["expect"]["tool"], before["expect"]["tool"])
        assert {k: v for k, v in case["expect"].items() if k != "tool"} == {
            k: v for k, v in before["expect"].items() if k != "tool"
        }
        text = json.dumps(case["messages"], ensure_ascii=False)
        assert not any(re.search(rf"(?<![A-Za-z0-9_]){old}(?![A-Za-z0-9_])", text) for old in names)
        if any(old in json.dumps(before["messages"], ensure_ascii=False) for old in names):
            assert any(new in text for new in names.values())
    assert load_suite(novel_file).cases and not load_suite(novel_file).warnings


def test_after_call_suite_puts_a_recorded_call_turn_before_every_one_turn_case(dataset, tmp_path):
    from moss_agent.train.heldout import after_call_suite

    suite_file = heldout_suite(dataset / "test.jsonl", dataset / "corpus.jsonl", tmp_path / "heldout.jsonl")
    after_file = after_call_suite(suite_file, dataset / "test.jsonl", tmp_path / "after.jsonl", seed=0)
    again = after_call_suite(suite_file, dataset / "test.jsonl", tmp_path / "again.jsonl", seed=0)
    assert again.read_bytes() == after_file.read_bytes() and (tmp_path / "after.corpus.jsonl").is_file()
    original = {c["id"]: c for c in map(json.loads, suite_file.read_text(encoding="utf-8").splitlines())}
    after = load_suite(after_file)
    assert not after.warnings
    one_turn = [c for c in original.values() if len(c["messages"]) == 1]
    assert 0.8 * len(one_turn) <= len(after.cases) <= len(one_turn)
    other_language, tools = 0, set()
    for case in after.cases:
        before = original[case.id.removesuffix("-after-call")]
        assert case.messages[2].content == before["messages"][0]["content"]
        assert (
            case.expect.model_dump(exclude_unset=True) == before["expect"] and case.answer == before["answer"]
        )
        earlier = case.messages[1]
        (call,) = earlier.invocations
        assert call.name == case.model_extra["earlier_tool"] and call.name in case.plugins
        assert earlier.thoughts and earlier.content
        tools.add(call.name)
        other_language += detect_language(case.messages[0].content) != case.lang
    assert tools >= {"Calculate", "Solve", "Search"}
    assert 0.25 * len(after.cases) <= other_language <= 0.75 * len(after.cases)
