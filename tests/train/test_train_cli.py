from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from moss_agent.cli import app

runner = CliRunner()


def test_train_recipe_passes_every_option(monkeypatch, tmp_path: Path) -> None:
    import moss_agent.train.recipe as recipe
    from moss_agent.models.number_slots import SlotScheme

    seen = []
    monkeypatch.setattr(recipe, "run_recipe", lambda config: seen.append(config) or tmp_path)
    flags = ["--more-phrasings", "--wrap-requests", "--mix-clauses", "--cjk-chars", "--restate-solutions"]
    flags += ["--quote-counts", "--pair-solutions", "--shared-phrasings", "--layers", "6"]
    flags += ["--quote-api", "--novel-names", "--batch-size", "8", "--number-slots", "16", "--name-spaces"]
    flags += ["--name-min-count", "50", "--custom-decoys"]
    result = runner.invoke(app, ["train", "recipe", "--out", str(tmp_path), *flags, "--width", "320"])
    assert result.exit_code == 0, result.output
    (config,) = seen
    assert (config.more_phrasings, config.wrap_requests, config.cjk_chars, config.restate_solutions) == (
        True,
        True,
        True,
        True,
    )
    assert config.mix_clauses is True and config.quote_counts is True and config.pair_solutions is True
    assert config.shared_phrasings is True and config.quote_api is True and config.novel_names is True
    assert config.data_options().novel_names is True
    assert (config.n_layer, config.n_embd, config.out, config.batch_size) == (6, 320, str(tmp_path), 8)
    assert config.number_slots == 16 and config.number_rounding is True and config.name_spaces is True
    assert config.name_min_count == 50 and config.data_options().custom_decoys is True
    result = runner.invoke(app, ["train", "recipe", "--out", str(tmp_path)])
    defaults = seen[-1]
    shipped = (
        "more_phrasings",
        "wrap_requests",
        "mix_clauses",
        "quote_counts",
        "shared_phrasings",
        "wide_phrasings",
        "context_turns",
        "cjk_chars",
    )
    assert all(getattr(defaults, name) for name in shipped)  # the embedded model's recipe
    assert not (defaults.pair_solutions or defaults.restate_solutions or defaults.mask_human)
    assert not (defaults.quote_api or defaults.novel_names)  # measured, not better (README)
    assert not defaults.custom_decoys
    assert (defaults.n_layer, defaults.n_embd, defaults.max_steps, defaults.n_train) == (3, 224, 3200, 34000)
    assert defaults.number_slots == 32 and defaults.number_rounding is True
    assert defaults.digit_slots is False and defaults.name_spaces is False and defaults.name_min_count == 100
    result = runner.invoke(
        app, ["train", "recipe", "--out", str(tmp_path), "--no-number-rounding", "--digit-slots"]
    )
    assert result.exit_code == 0, result.output
    assert seen[-1].number_rounding is False and seen[-1].digit_slots is True
    assert seen[-1].slot_scheme() == SlotScheme(32, digits=True)
    off = [f"--no-{name.replace('_', '-')}" for name in shipped]
    result = runner.invoke(app, ["train", "recipe", "--out", str(tmp_path), *off])
    assert result.exit_code == 0, result.output
    assert not any(getattr(seen[-1], name) for name in shipped)


def test_train_data_passes_the_data_options(monkeypatch, tmp_path: Path) -> None:
    import moss_agent.train.data as data

    seen = []
    monkeypatch.setattr(data, "generate_dataset", lambda out, **kwargs: seen.append(kwargs) or {"ok": True})
    result = runner.invoke(
        app,
        ["train", "data", "--out", str(tmp_path), "--more-phrasings", "--wrap-requests", "--mix-clauses"]
        + ["--pair-solutions", "--no-shared-phrasings", "--quote-api", "--novel-names"],
    )
    assert result.exit_code == 0, result.output
    options = seen[0]["options"]
    assert options.more_phrasings is True and options.wrap_requests is True
    assert options.mix_clauses is True and options.pair_solutions is True
    assert options.shared_phrasings is False
    assert options.quote_api is True and options.novel_names is True


def test_train_recipe_refuses_two_cage_reply_formats_before_any_work(tmp_path: Path) -> None:
    args = ["train", "recipe", "--out", str(tmp_path / "run"), "--pair-solutions", "--restate-solutions"]
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and not (tmp_path / "run").exists()
    assert "choose one" in str(result.exception)


def test_train_recipe_refuses_a_width_the_circuit_cannot_use(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "recipe", "--out", str(tmp_path / "run"), "--width", "128"])
    assert result.exit_code != 0 and not (tmp_path / "run").exists()
    assert "use --width 160 or more" in str(result.exception)


def test_loss_weights_reach_the_recipe_and_finetune(monkeypatch, tmp_path: Path) -> None:
    import moss_agent.train.recipe as recipe
    import moss_agent.train.sft as sft

    seen: list = []
    monkeypatch.setattr(recipe, "run_recipe", lambda config: seen.append(config) or tmp_path)
    monkeypatch.setattr(sft, "finetune", lambda config: seen.append(config) or tmp_path)
    weights = ["--loss-weight", "commands=4", "--loss-weight", "reply=2"]
    result = runner.invoke(app, ["train", "recipe", "--out", str(tmp_path), *weights])
    assert result.exit_code == 0, result.output
    data = tmp_path / "train.jsonl"
    data.write_text("{}\n")
    args = ["finetune", "--model", "m", "--data", str(data), "--out", str(tmp_path / "ft"), *weights]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert [config.loss_weights for config in seen] == [{"Commands": 4.0, "MOSS": 2.0}] * 2
    result = runner.invoke(
        app, ["train", "recipe", "--out", str(tmp_path / "bad"), "--loss-weight", "answer=2"]
    )
    assert result.exit_code != 0 and not seen[2:]
    assert "SECTION=WEIGHT" in str(result.exception)


def test_every_data_option_is_a_flag_of_train_data_and_train_recipe(monkeypatch, tmp_path: Path) -> None:
    import dataclasses

    import moss_agent.train.data as data
    import moss_agent.train.recipe as recipe
    from moss_agent.train.options import DataOptions

    seen: list = []
    monkeypatch.setattr(data, "generate_dataset", lambda out, **kwargs: seen.append(kwargs["options"]) or {})
    monkeypatch.setattr(recipe, "run_recipe", lambda config: seen.append(config.data_options()) or tmp_path)
    for field in dataclasses.fields(DataOptions):
        flipped = dataclasses.replace(DataOptions(), **{field.name: not getattr(DataOptions(), field.name)})
        flag = ("--no-" if field.default else "--") + field.name.replace("_", "-")
        for command in ("data", "recipe"):
            result = runner.invoke(app, ["train", command, "--out", str(tmp_path), flag])
            assert result.exit_code == 0, (command, flag, result.output)
            assert seen[-1] == flipped, (command, flag)


def test_train_suite_writes_the_held_out_suite_and_its_made_up_names_twin(tmp_path: Path) -> None:
    from moss_agent.evals.suite import load_suite
    from moss_agent.train.data import generate_dataset

    generate_dataset(tmp_path / "data", n_train=20, n_test=40, n_valid=5, seed=4)
    out = tmp_path / "suites" / "heldout.jsonl"
    result = runner.invoke(
        app,
        [
            "train",
            "suite",
            "--data",
            str(tmp_path / "data"),
            "--out",
            str(out),
            "--made-up-names",
            "--after-call",
        ],
    )
    assert result.exit_code == 0, result.output
    suite = load_suite(out)
    twin = load_suite(tmp_path / "suites" / "heldout.made-up-names.jsonl")
    assert len(suite.cases) >= 40 and 0 < len(twin.cases) < len(suite.cases)
    after = load_suite(tmp_path / "suites" / "heldout.after-call.jsonl")
    assert 0 < len(after.cases) < len(suite.cases) and all(c.messages[1].calls for c in after.cases)
    assert (tmp_path / "suites" / "heldout.corpus.jsonl").is_file()
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["train", "suite", "--data", str(tmp_path / "empty"), "--out", str(out)])
    assert result.exit_code != 0 and "has no test.jsonl" in str(result.exception)
