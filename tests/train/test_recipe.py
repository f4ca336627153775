"""The recipe end to end at toy size: every stage runs, its minutes are logged, a re-run resumes."""

from __future__ import annotations

import json
import os

import pytest
import torch

pytest.importorskip("torch")
pytest.importorskip("tokenizers")

from moss_agent.models.engine import GenerationEngine  # noqa: E402
from moss_agent.models.tiny import CIRCUIT_CONFIG_KEY  # noqa: E402
from moss_agent.train.recipe import RecipeConfig, run_recipe  # noqa: E402
from moss_agent.train.sft import resolve_mixed_precision  # noqa: E402


def toy_recipe(out, **changes) -> RecipeConfig:
    """A recipe small enough to run every stage in seconds."""
    toy = {
        "n_train": 40,
        "n_valid": 4,
        "n_test": 8,
        "vocab_size": 1500,
        "n_layer": 2,
        "batch_size": 4,
        "max_steps": 2,
        "bigram_heads": 2,
        "number_slots": 8,
    }
    return RecipeConfig(out=str(out), **{**toy, **changes})


def test_a_toy_recipe_runs_every_stage_and_resumes(tmp_path, capsys):
    config = toy_recipe(tmp_path / "run", n_positions=1024, max_length=1024, name_spaces=True, members=1)
    final = run_recipe(config)
    assert (final / "model.safetensors").is_file()
    saved = json.loads((final / "config.json").read_text())
    assert saved["model_type"] == "moss" and saved[CIRCUIT_CONFIG_KEY]["bigram"] == [[1, 2], [1, 3]]
    assert saved["number_slots"] == 8  # the tokenizer carries them, or the engine refuses to load it
    assert saved["number_rounding"] is True  # the default; the tokenizer carries <round> as well
    engine = GenerationEngine.from_pretrained(str(final), device="cpu")
    pieces = engine.loaded.tokenizer.tokenize("the population of Cormouth")
    assert pieces[pieces.index("Ġ") + 1].startswith("C") and pieces.count("Ġ") == 1  # --name-spaces
    log = json.loads((tmp_path / "run" / "recipe_log.json").read_text())
    assert list(log["stages"]) == ["data", "tokenizer", "init", "sft"]
    assert all(stage["runs"] == 1 and stage["minutes"] >= 0 for stage in log["stages"].values())
    assert log["minutes_total"] == round(sum(s["minutes"] for s in log["stages"].values()), 1)
    assert json.loads((tmp_path / "run" / "recipe_config.json").read_text())["bigram_heads"] == 2
    sft = json.loads((tmp_path / "run" / "sft" / "sft_config.json").read_text())
    assert sft["mixed_precision"] == resolve_mixed_precision("auto")  # what it trained in, decided

    capsys.readouterr()
    assert run_recipe(config) == final  # everything already there: nothing is redone
    assert capsys.readouterr().out.count("already done") == 4
    assert json.loads((tmp_path / "run" / "recipe_log.json").read_text())["stages"] == log["stages"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_embd": 100}, "multiple of the 8 attention heads"),
        ({"n_embd": 128}, "use --width 160 or more"),
        ({"n_embd": 272, "n_layer": 2}, "hidden size of at most 256"),
        ({"n_layer": 1}, "at least 2"),
        ({"bigram_heads": 7}, "too many bigram_heads"),
    ],
)
def test_a_model_shape_that_cannot_be_built_is_refused_before_any_work(tmp_path, changes, message):
    from moss_agent.errors import UsageError
    from moss_agent.train.recipe import RecipeConfig, run_recipe

    with pytest.raises(UsageError, match=message):
        run_recipe(RecipeConfig(out=str(tmp_path / "run"), **changes))
    assert not (tmp_path / "run").exists()


def test_the_default_shape_and_a_wider_one_pass_the_check():
    from moss_agent.train.recipe import RecipeConfig, check_recipe

    check_recipe(RecipeConfig(out=""))
    check_recipe(RecipeConfig(out="", n_embd=160, n_layer=6))
    check_recipe(RecipeConfig(out="", n_embd=256, n_layer=2))


def test_install_scores_held_out_validation_and_made_up_names_and_writes_them(tmp_path):
    from moss_agent.models.tiny import build_tiny_moss_checkpoint, build_tiny_tokenizer
    from moss_agent.train.data import generate_dataset
    from moss_agent.train.recipe import RecipeConfig, evaluate_and_install

    run = tmp_path / "run"
    generate_dataset(run / "data", n_train=30, n_test=4, n_valid=3, seed=0)
    texts = (run / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    tokenizer = build_tiny_tokenizer(texts, vocab_size=600)
    build_tiny_moss_checkpoint(run / "sft" / "final", tokenizer=tokenizer, n_positions=1024)
    (run / "recipe_config.json").write_text(json.dumps(RecipeConfig(out=str(run)).__dict__))
    log = [{"step": 2, "loss": 5.0, "lr": 1e-3, "elapsed_s": 1.0}, {"step": 2, "eval_loss": 5.5}]
    (run / "sft" / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    installed = evaluate_and_install(run, tmp_path / "installed", batch_size=8)
    scores = json.loads((installed / "scores.json").read_text())
    valid_turns = sum(1 for line in (run / "heldout" / "valid.jsonl").read_text().splitlines() if line)
    assert scores["valid"]["n"] == valid_turns >= 3
    assert scores["heldout"]["n"] > 0 and scores["suite"] is None and "novel_names" in scores
    after_cases = sum(1 for line in (run / "heldout" / "after-call.jsonl").read_text().splitlines() if line)
    assert scores["after_call"]["n"] == after_cases > 0 and (run / "eval-after-call" / "report.md").is_file()
    card = (installed / "README.md").read_text()
    assert f"| cases | {valid_turns} |" in card.split("### Validation split")[1]
    assert f"| cases | {after_cases} |" in card.split("earlier turn that called a built-in tool")[1]
    assert (installed / "corpus.jsonl").is_file()
    # the shipped weights are the evaluated ones, unchanged (a float16 copy moved greedy near-ties)
    final = run / "sft" / "final"
    assert (installed / "model.safetensors").read_bytes() == (final / "model.safetensors").read_bytes()
    # safetensors writes its files owner-only; the installed copy takes the usual umask's mode
    (final / "model.safetensors").chmod(0o600)
    installed = evaluate_and_install(run, tmp_path / "installed-again", batch_size=8)
    umask = os.umask(0)
    os.umask(umask)
    assert (installed / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask
    config = json.loads((installed / "config.json").read_text())
    assert config.get("dtype", config.get("torch_dtype")) == "float32"
    assert "float32 safetensors, the weights the scores below were measured on" in card
    assert "Greedy decoding with constrained Commands" in card  # as the scores were measured
    # earlier scores made under other eval settings are not resumed silently; --force redoes them
    eval_config = run / "eval-heldout" / "config.json"
    stale = json.loads(eval_config.read_text())
    stale["model"]["constrain_calls"] = False
    eval_config.write_text(json.dumps(stale))
    from moss_agent.errors import UsageError

    with pytest.raises(UsageError, match="--force"):
        evaluate_and_install(run, tmp_path / "installed-stale", batch_size=8)
    evaluate_and_install(run, tmp_path / "installed-stale", batch_size=8, force=True)
    assert json.loads(eval_config.read_text())["model"]["constrain_calls"] is True


def test_rescore_rewrites_an_installed_models_scores_after_a_decoding_change(tmp_path):
    from moss_agent.errors import UsageError
    from moss_agent.models.copy_bias import set_copy_bias
    from moss_agent.models.tiny import build_tiny_moss_checkpoint, build_tiny_tokenizer
    from moss_agent.train.data import generate_dataset
    from moss_agent.train.recipe import evaluate_and_install, rescore_installed

    run = tmp_path / "run"
    generate_dataset(run / "data", n_train=30, n_test=4, n_valid=3, seed=0)
    texts = (run / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    build_tiny_moss_checkpoint(
        run / "sft" / "final", tokenizer=build_tiny_tokenizer(texts, vocab_size=600), n_positions=1024
    )
    (run / "recipe_config.json").write_text(json.dumps(RecipeConfig(out=str(run)).__dict__))
    installed = evaluate_and_install(run, tmp_path / "installed", batch_size=8)
    card = (installed / "README.md").read_text()
    assert "copy bias" not in card
    set_copy_bias(installed, 2.5)
    scores = rescore_installed(installed, run / "data", tmp_path / "rescore", batch_size=8)
    assert scores.copy_bias == 2.5
    assert (
        json.loads((tmp_path / "rescore" / "eval-heldout" / "config.json").read_text())["model"]["copy_bias"]
        == 2.5
    )
    rescored = (installed / "README.md").read_text()
    assert "copy bias 2.5 in Commands" in rescored
    assert rescored.split("## Scores")[0] == card.split("## Scores")[0]
    assert json.loads((installed / "scores.json").read_text())["heldout"]["n"] == scores.heldout["n"] > 0
    # another dataset than the model's is refused before any scoring
    generate_dataset(tmp_path / "other", n_train=31, n_test=4, n_valid=3, seed=1)
    with pytest.raises(UsageError, match="not the dataset"):
        rescore_installed(installed, tmp_path / "other", tmp_path / "rescore-other")
    assert not (tmp_path / "rescore-other").exists()
    with pytest.raises(UsageError, match="no model card"):
        rescore_installed(tmp_path / "nowhere", run / "data", tmp_path / "rescore-none")


def test_a_toy_recipe_of_two_members_trains_installs_and_loads_an_ensemble(tmp_path):
    from safetensors.torch import load_file

    from moss_agent.models.copy_bias import model_copy_bias
    from moss_agent.models.ensemble import EnsembleModel, ensemble_members
    from moss_agent.models.loading import load_model
    from moss_agent.train.model_card import render_model_card
    from moss_agent.train.recipe import ModelScores, install_model, recipe_model

    run = tmp_path / "run"
    ensemble = run_recipe(toy_recipe(run, members=2))  # stored in float16, the default
    assert ensemble == run / "ensemble" == recipe_model(run)
    members = ensemble_members(ensemble)
    assert [m.name for m in members] == ["member-0", "member-1"]
    first, second = (load_file(str(m / "model.safetensors")) for m in members)
    trained = load_file(str(run / "sft" / "final" / "model.safetensors"))
    # member 0 is the one-model recipe's model, stored in float16; member 1 started from seed 1
    assert all(first[k].dtype == torch.float16 and torch.equal(first[k], trained[k].half()) for k in trained)
    assert not torch.equal(first["lm_head.weight"], second["lm_head.weight"])
    log = json.loads((run / "recipe_log.json").read_text())
    assert list(log["stages"]) == ["data", "tokenizer", "init", "sft", "init-1", "sft-1", "ensemble"]

    card = render_model_card(run, ModelScores(), parameters=2, weights_mb=1.0)
    assert "An ensemble of 2 such models" in card and "seeds 0–1" in card
    assert "Member 1: final training loss" in card
    # the recipe's copy bias is every member's default, and the install keeps it
    assert all(model_copy_bias(str(m)) == RecipeConfig(out="").copy_bias > 0 for m in members)
    assert model_copy_bias(str(ensemble)) == RecipeConfig(out="").copy_bias
    installed = install_model(ensemble, run / "data", tmp_path / "installed", card)
    assert model_copy_bias(str(installed)) == RecipeConfig(out="").copy_bias
    loaded = load_model(installed, device="cpu")
    assert isinstance(loaded.model, EnsembleModel) and len(loaded.model.members) == 2
    assert next(loaded.model.parameters()).dtype == torch.float32  # computed in float32 on the CPU
    # a one-model install over it leaves no member behind
    install_model(run / "sft" / "final", run / "data", installed, card)
    assert ensemble_members(installed) is None and not list(installed.glob("member-*"))
    assert isinstance(load_model(installed, device="cpu").model, torch.nn.Module)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"members": 0}, "--members"),
        ({"ensemble_dtype": "int8"}, "--ensemble-dtype"),
        ({"mixed_precision": "fp8"}, "--mixed-precision"),
        ({"copy_bias": -1.0}, "--copy-bias"),
    ],
)
def test_a_recipe_of_no_members_or_an_unknown_precision_is_refused(tmp_path, changes, message):
    from moss_agent.errors import UsageError

    with pytest.raises(UsageError, match=message):
        run_recipe(RecipeConfig(out=str(tmp_path / "run"), **changes))
    assert not (tmp_path / "run").exists()
