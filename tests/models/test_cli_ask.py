"""The ask/chat commands end to end on a tiny MOSS-format checkpoint built in the session."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from moss_agent.cli import app
from moss_agent.protocol import render_meta_instruction

runner = CliRunner()


@pytest.fixture(scope="module")
def agent_checkpoint(tmp_path_factory, tiny_tokenizer, turns):
    """A tiny checkpoint that memorized two turns after the agent's real meta instruction."""
    from moss_agent.models.tiny import build_tiny_moss_checkpoint

    meta = render_meta_instruction()
    return build_tiny_moss_checkpoint(
        tmp_path_factory.mktemp("agent-moss"),
        tokenizer=tiny_tokenizer,
        n_positions=2048,
        memorize=[meta + turns.plugin, meta + turns.chat],
        memorize_steps=150,
    )


def test_ask_runs_the_calculator_through_a_real_checkpoint(agent_checkpoint):
    result = runner.invoke(
        app,
        [
            "ask",
            "What is 12 times 30?",
            "--model",
            str(agent_checkpoint),
            "--greedy",
            "--show-thoughts",
            "--max-new-tokens",
            "64",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "12 times 30 is 360" in result.stdout
    assert 'Calculate("12*30")' in result.stderr
    assert "=> '360'" in result.stderr  # the Results the model read, shown as plain text
    assert "[dim]" not in result.stderr and "[/" not in result.stderr  # no rich markup leaks


def test_chat_clear_and_stop(agent_checkpoint):
    result = runner.invoke(
        app,
        ["chat", "--model", str(agent_checkpoint), "--greedy", "--max-new-tokens", "48"],
        input="What is 12 times 30?\nclear\n你好\nstop\n",
    )
    assert result.exit_code == 0, result.output
    assert "360" in result.stdout and "你好！我是MOSS" in result.stdout
    assert "(conversation cleared)" in result.stderr


def test_ask_without_any_model_is_a_clear_error(monkeypatch):
    import moss_agent.models.embedded as embedded

    monkeypatch.delenv("MOSS_AGENT_MODEL", raising=False)
    monkeypatch.setattr(embedded, "embedded_model_path", lambda: None)
    result = runner.invoke(app, ["ask", "hi"])
    assert result.exit_code != 0
    assert "--model" in str(result.exception) or "--model" in result.output


def test_other_checkpoints_get_moss_compressed_histories_and_sampling(agent_checkpoint):
    from moss_agent.cli import _build_agent

    agent = _build_agent(str(agent_checkpoint), device="cpu", max_new_tokens=64, plugins="Calculate")
    assert agent.compress_history is True and agent.llm.do_sample is True
    assert agent.llm.constrain_calls is True  # Commands under the prompt's grammar unless --free-calls
    free = _build_agent(str(agent_checkpoint), device="cpu", plugins="Calculate", constrain_calls=False)
    assert free.llm.constrain_calls is False
