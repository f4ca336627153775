from __future__ import annotations

import json

import pytest

from moss_agent.evals.runner import run_eval
from moss_agent.evals.suite import load_suite
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
