"""The embedded moss-tiny-plugin, end to end: real tool calls, offline, greedy."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from moss_agent.cli import app
from moss_agent.models.embedded import embedded_corpus_path, embedded_model_path, resolve_model

EMBEDDED = embedded_model_path()
pytestmark = pytest.mark.skipif(EMBEDDED is None, reason="the embedded moss-tiny-plugin is not installed")
runner = CliRunner()


@pytest.fixture(scope="module")
def agent_factory():
    from moss_agent.agent import MossAgent
    from moss_agent.models.llm import MossLLM
    from moss_agent.tools.registry import default_registry
    from moss_agent.tools.search_backends import LocalCorpusBackend

    llm = MossLLM(model=resolve_model(None), do_sample=False, max_new_tokens=96)
    registry = default_registry(search_backend=LocalCorpusBackend(embedded_corpus_path()))

    def make(**kwargs):
        return MossAgent(llm, tools=registry, max_context_tokens=llm.context_length(), **kwargs)

    return make


def test_embedded_model_is_small_and_documented():
    from moss_agent.models.ensemble import ensemble_members

    checkpoints = ensemble_members(EMBEDDED) or [EMBEDDED]  # one model or an ensemble of them
    assert sum((c / "model.safetensors").stat().st_size for c in checkpoints) < 30_000_000
    card = (EMBEDDED / "README.md").read_text(encoding="utf-8")
    assert "What it is not:** a general assistant" in card and "Held-out" in card
    for checkpoint in checkpoints:
        assert json.loads((checkpoint / "config.json").read_text())["model_type"] == "moss"


CHICKENS = "鸡兔同笼，共有35个头，94只脚，鸡和兔各有几只？"
PRODUCT = "What is 1234 multiplied by 5678?"


def test_chickens_and_rabbits_calls_the_real_solver(agent_factory):
    record = agent_factory().run(CHICKENS)
    assert record.tools_used == ["Solve"]
    (call,) = record.tool_calls
    assert call.error is None and " = " in call.result.output  # the real solver's answer to the model's call
    assert "只" in record.reply and record.parse_errors == ()


def test_arithmetic_calls_the_real_calculator(agent_factory):
    record = agent_factory().run(PRODUCT)
    assert record.tools_used == ["Calculate"]
    assert record.tool_calls[0].result.output.isdigit()  # the real calculator's answer to the model's call
    assert record.reply


def test_chickens_and_rabbits_call_is_right(agent_factory):
    record = agent_factory().run(CHICKENS)
    assert record.tool_calls[0].result.output == "x = 23\ny = 12"


def test_chickens_and_rabbits_reply_is_right(agent_factory):
    reply = agent_factory().run(CHICKENS).reply
    assert "鸡有23只" in reply and "兔有12只" in reply


def test_arithmetic_answer_is_right(agent_factory):
    assert "7006652" in agent_factory().run(PRODUCT).reply


def test_no_tool_for_a_greeting(agent_factory):
    record = agent_factory().run("你好，你是谁？")
    assert record.tools_used == [] and record.reply


def test_readme_main_command_calls_the_tools():
    result = runner.invoke(app, ["ask", CHICKENS, PRODUCT])
    assert result.exit_code == 0, result.output
    assert "Solve(" in result.stderr and "Calculate(" in result.stderr
    assert (
        "鸡有23只，兔有12只。" in result.stdout and "1234 × 5678 = 7006652." in result.stdout
    )  # as the README says


def test_the_embedded_model_gets_compressed_results_unless_asked_to_keep_them(tmp_path):
    """MOSS's backend sent earlier Results as None; with them kept the model copied their numbers."""
    from moss_agent.cli import _build_agent

    agent = _build_agent(None, device="cpu", max_new_tokens=64, plugins="Calculate")
    assert agent.compress_history is True and agent.llm.do_sample is False
    kept = _build_agent(None, device="cpu", max_new_tokens=64, plugins="Calculate", keep_results=True)
    assert kept.compress_history is False


def test_small_eval_end_to_end(tmp_path):
    from pathlib import Path

    suite = Path(__file__).resolve().parents[2] / "evals" / "suites" / "smoke.jsonl"
    result = runner.invoke(
        app, ["eval", "--suite", str(suite), "--out", str(tmp_path / "run"), "--batch-size", "12"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["n"] == 12 and summary["trigger_accuracy"] >= 0.5
    assert (tmp_path / "run" / "report.md").is_file() and (tmp_path / "run" / "confusion.png").is_file()


def test_constrained_commands_call_a_made_up_tool_with_typed_arguments():
    """A tool with a made-up name: left free the model writes no valid call; constrained (names,
    keywords and values of the tool's JSON-schema types), it calls it with the question's numbers."""
    from langchain_core.tools import tool

    from moss_agent.models.chat import ChatMoss

    @tool
    def compute_chynslax(a: int, b: int) -> int:
        """Multiply two numbers."""
        return a * b

    question = "Use the tool to multiply 547 by 690."
    calls = {}
    for constrain in (False, True):
        model = ChatMoss(do_sample=False, max_new_tokens=64, constrain_calls=constrain)
        message = model.bind_tools([compute_chynslax]).invoke(question)
        calls[constrain] = [call["name"] for call in message.tool_calls + message.invalid_tool_calls]
        arguments = message.tool_calls[0]["args"] if message.tool_calls else None
    assert "compute_chynslax" not in calls[False]
    assert calls[True] == ["compute_chynslax"]
    assert arguments == {"a": 547, "b": 690}


#: Systems of equations whose Solve call the embedded model got wrong by one copied coefficient
#: before its copy bias (held-out cases of its recipe, with their enabled plugins; the call it
#: wrote then is in the comment).
ALL_PLUGINS = ["Calculate", "Search", "Solve", "Text2Image"]
SYSTEMS = [
    (
        "如果-3x+2y=-25，并且4x+3y=107，那么x和y分别等于多少？",
        ["Solve"],
        "-3x+2y=-25, 4x+3y=107",
    ),  # 4x+2y=-107
    ("Hey can u solve this system: 7x-3y=-46, -9x-7y=-158", ["Solve"], "7x-3y=-46, -9x-7y=-158"),  # -9x-3y
    ("Solve simultaneously: -4x+3y=-113 and 8x+2y=170.", ALL_PLUGINS, "-4x+3y=-113, 8x+2y=170"),  # 8x+3y=-170
    ("Solve the system 8x+7y=252, -7x+9y=203.", ALL_PLUGINS, "8x+7y=252, -7x+9y=203"),  # 8x+9y
]


def test_the_copy_bias_makes_the_solve_calls_copy_the_equations():
    """The model's default copy bias (its generation_config.json) against none, same prompts."""
    from moss_agent.agent import MossAgent
    from moss_agent.models.copy_bias import model_copy_bias
    from moss_agent.models.llm import MossLLM

    assert model_copy_bias(str(EMBEDDED)) > 0
    right = {}
    for bias in (None, 0.0):
        llm = MossLLM(model=resolve_model(None), do_sample=False, max_new_tokens=64, copy_bias=bias)
        calls = [
            MossAgent(llm, plugins=plugins).run(question).invocations for question, plugins, _ in SYSTEMS
        ]
        right[bias] = [
            len(c) == 1 and c[0].name == "Solve" and c[0].args == (equations,)
            for c, (_, _, equations) in zip(calls, SYSTEMS, strict=True)
        ]
    assert all(right[None]), right
    assert not any(right[0.0]), right  # without it, a coefficient comes from the other equation
