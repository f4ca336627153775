from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from moss_agent.cli import app
from moss_agent.evals import runner as eval_runner

cli = CliRunner()


@pytest.fixture
def scripted_target(monkeypatch, h):
    built = []

    def build_target(model=None, *, chat=False, sample=False, max_new_tokens=256, loading=None):
        built.append({"model": model, "chat": chat, "sample": sample, "max_new_tokens": max_new_tokens})
        if loading:
            built[-1]["loading"] = loading
        return eval_runner.as_target(h.smoke_llm(), max_new_tokens=max_new_tokens)

    monkeypatch.setattr(eval_runner, "build_target", build_target)
    return built


def test_eval_runs_resumes_and_reports(scripted_target, smoke_suite, tmp_path):
    out = tmp_path / "run"
    result = cli.invoke(app, ["eval", "--suite", str(smoke_suite), "--out", str(out), "--limit", "4"])
    assert result.exit_code == 0, result.output
    assert "ran 4 case(s), 0 already finished" in result.output
    assert "Trigger accuracy" in result.output
    assert scripted_target == [{"model": None, "chat": False, "sample": False, "max_new_tokens": 256}]
    result = cli.invoke(app, ["eval", "--suite", str(smoke_suite), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ran 8 case(s), 4 already finished" in result.output
    assert json.loads((out / "summary.json").read_text())["n"] == 12
    result = cli.invoke(
        app, ["eval", "--suite", str(smoke_suite), "--out", str(out), "--max-new-tokens", "64"]
    )
    assert result.exit_code == 2 and "max_new_tokens" in result.output
    (out / "report.md").unlink()
    result = cli.invoke(app, ["eval", "report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.md").is_file() and "End-to-end accuracy" in result.output


def test_eval_passes_loading_options(scripted_target, smoke_suite, tmp_path):
    args = ["eval", "--suite", str(smoke_suite), "--out", str(tmp_path / "r"), "--limit", "1"]
    result = cli.invoke(app, [*args, "--dtype", "bfloat16", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert scripted_target[-1]["loading"] == {"dtype": "bfloat16", "device": "cpu"}
    result = cli.invoke(app, [*args, "--load-in-4bit", "--device-map", "auto"])
    assert scripted_target[-1]["loading"] == {"device_map": "auto", "load_in_4bit": True}
    result = cli.invoke(app, [*args, "--free-calls"])
    assert result.exit_code == 0, result.output
    assert scripted_target[-1]["loading"] == {"constrain_calls": False}


def test_eval_shows_suite_warnings(scripted_target, tmp_path, smoke_suite):
    suite = tmp_path / "s.jsonl"
    suite.write_text(smoke_suite.read_text().splitlines()[0] + "\n{broken\n", encoding="utf-8")
    result = cli.invoke(app, ["eval", "--suite", str(suite), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "s.jsonl:2" in result.output


def test_eval_needs_suite_and_out():
    result = cli.invoke(app, ["eval", "--suite", "x.jsonl"])
    assert result.exit_code == 2 and "--out" in result.output


def test_eval_compare(scripted_target, smoke_suite, tmp_path, h, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli.invoke(app, ["eval", "--suite", str(smoke_suite), "--out", str(a)]).exit_code == 0
    better = dict(h.script)
    better["What is 15% of 240?"] = ('Calculate("240*0.15")', "It is 36.")
    better["长江全长多少公里？"] = ('Search("长江")', "长江全长约6300公里。")

    def build_better(model=None, **_):
        llm = h.smoke_llm()
        llm.respond = h.moss_responder(lambda q: better[q])
        return eval_runner.as_target(llm, max_new_tokens=256)

    monkeypatch.setattr(eval_runner, "build_target", build_better)
    assert cli.invoke(app, ["eval", "--suite", str(smoke_suite), "--out", str(b)]).exit_code == 0
    result = cli.invoke(app, ["eval", "compare", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    metrics = {m["metric"]: m for m in data["metrics"]}
    assert metrics["end_to_end"]["a"] == 0.5 and metrics["end_to_end"]["b"] == pytest.approx(8 / 12)
    assert metrics["end_to_end"]["b_only"] == 2 and metrics["end_to_end"]["p_value"] == 0.5
    assert metrics["trigger"]["b_only"] == 1
    assert {f["id"] for f in data["flipped"]} == {"calc-en-02", "search-zh-01"}
    assert data["paired"] == 12
    table = cli.invoke(app, ["eval", "compare", str(a), str(b)])
    assert table.exit_code == 0 and "McNemar" in table.output and "search-zh-01" in table.output
    missing = cli.invoke(app, ["eval", "compare", str(a), str(tmp_path / "nope")])
    assert missing.exit_code == 2
