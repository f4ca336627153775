"""The recipe end to end at toy size: every stage runs, its minutes are logged, a re-run resumes."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("tokenizers")

from moss_agent.models.tiny import CIRCUIT_CONFIG_KEY  # noqa: E402
from moss_agent.train.recipe import RecipeConfig, run_recipe  # noqa: E402


def test_a_toy_recipe_runs_every_stage_and_resumes(tmp_path, capsys):
    config = RecipeConfig(
        out=str(tmp_path / "run"),
        n_train=40,
        n_valid=4,
        n_test=8,
        vocab_size=1500,
        n_layer=2,
        n_positions=1024,
        batch_size=4,
        max_steps=2,
        bigram_heads=2,
        max_length=1024,
    )
    final = run_recipe(config)
    assert (final / "model.safetensors").is_file()
    saved = json.loads((final / "config.json").read_text())
    assert saved["model_type"] == "moss" and saved[CIRCUIT_CONFIG_KEY]["bigram"] == [[1, 2], [1, 3]]
    log = json.loads((tmp_path / "run" / "recipe_log.json").read_text())
    assert list(log["stages"]) == ["data", "tokenizer", "init", "sft"]
    assert all(stage["runs"] == 1 and stage["minutes"] >= 0 for stage in log["stages"].values())
    assert log["minutes_total"] == round(sum(s["minutes"] for s in log["stages"].values()), 1)
    assert json.loads((tmp_path / "run" / "recipe_config.json").read_text())["bigram_heads"] == 2

    capsys.readouterr()
    assert run_recipe(config) == final  # everything already there: nothing is redone
    assert capsys.readouterr().out.count("already done") == 4
    assert json.loads((tmp_path / "run" / "recipe_log.json").read_text())["stages"] == log["stages"]
