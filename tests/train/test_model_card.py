"""The model card states what the recipe did: its initialisation, loss mask, time, scores, and how to redo it."""

from __future__ import annotations

import json
from pathlib import Path

from moss_agent.train.model_card import render_model_card, reproduce_command
from moss_agent.train.recipe import ModelScores, RecipeConfig


def recipe_run(tmp_path: Path, **changes: object) -> Path:
    config = {**RecipeConfig(out=str(tmp_path)).__dict__, **changes}
    (tmp_path / "recipe_config.json").write_text(json.dumps(config))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset_info.json").write_text(
        json.dumps({"splits": {"train": {"conversations": 9, "turns": 11, "by_lang": {"en": 5, "zh": 4}}}})
    )
    (tmp_path / "sft").mkdir()
    log = [  # a run stopped after 600 s and resumed: its clock restarted
        {"step": 20, "loss": 2.0, "lr": 1e-3, "elapsed_s": 300.0},
        {"step": 40, "loss": 1.0, "lr": 1e-3, "elapsed_s": 600.0},
        {"step": 60, "loss": 0.5, "lr": 1e-3, "elapsed_s": 120.0},
        {"checkpoint": "step-60", "step": 60, "eval_loss": 0.75},
    ]
    (tmp_path / "sft" / "train_log.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    return tmp_path


SUMMARY = {
    "n": 10,
    "trigger_accuracy": 0.9,
    "argument_accuracy": 0.5,
    "answer_accuracy": 0.25,
    "end_to_end_accuracy": 0.4,
    "answer_accuracy_calc_solve": 0.125,
}


def test_the_card_of_the_default_recipe(tmp_path):
    card = render_model_card(
        recipe_run(tmp_path), ModelScores(heldout=SUMMARY), parameters=6_230_000, weights_mb=12.5
    )
    assert "Parameters: 6.23 M; weights 12.5 MB" in card
    assert "- Split `train`: 9 conversations, 11 turns; languages: en 5, zh 4." in card
    assert "60 steps of batch 16" in card and "Wall time of SFT: 12.0 min" in card  # 600 s + 120 s
    assert "hand-written induction circuit" in card and "4 two-token induction heads" in card
    assert "quoting that tool's switch line" in card
    assert "user's turns" not in card
    assert "| tool choice (incl. no call) | 90.0 % |" in card
    assert "| final answer right (Calculate/Solve cases) | 12.5 % |" in card
    assert "plugin-basic" not in card.split("## Scores")[1].split("Greedy")[0]  # no suite, no table
    assert "`moss-agent train recipe --out runs/tiny` then" in card
    assert "whole recipe" not in card  # no recipe_log.json: no claim


def test_the_card_says_how_sft_computed_and_the_command_keeps_it(tmp_path):
    (tmp_path / "mixed").mkdir()
    (tmp_path / "plain").mkdir()
    run = recipe_run(tmp_path / "mixed")
    (run / "sft" / "sft_config.json").write_text(json.dumps({"mixed_precision": "bf16"}))
    card = render_model_card(run, ModelScores(), parameters=1, weights_mb=1.0)
    assert "cosine decay, bf16 mixed precision (matrix products in bf16;" in card
    plain = recipe_run(tmp_path / "plain", mixed_precision="no")
    (plain / "sft" / "sft_config.json").write_text(json.dumps({"mixed_precision": "no"}))
    card = render_model_card(plain, ModelScores(), parameters=1, weights_mb=1.0)
    assert "cosine decay." in card and "mixed precision" not in card.split("## Training")[1]
    assert "--mixed-precision no" in card


def test_the_card_adds_up_the_recipe_stages(tmp_path):
    from moss_agent.train.recipe import RecipeLog

    run = recipe_run(tmp_path)
    log = RecipeLog(run / "recipe_log.json")
    for name, minutes in (("data", 0.5), ("tokenizer", 1.0), ("init", 0.1), ("sft", 50.0)):
        log.stages[name] = {"minutes": minutes, "runs": 1}
    log.write()
    card = render_model_card(run, ModelScores(), parameters=1, weights_mb=1.0)
    assert "Wall time of the whole recipe: 51.6 min (data 0.5, tokenizer 1.0, init 0.1, sft 50.0)." in card
    assert RecipeLog(run / "recipe_log.json").minutes_total == 51.6


def test_the_card_names_what_differs_from_the_defaults(tmp_path):
    run = recipe_run(
        tmp_path,
        bigram_heads=2,
        mask_human=True,
        max_steps=900,
        batch_size=4,
        switch_thoughts=False,
        learning_rate=0.0025,
    )
    card = render_model_card(run, ModelScores(suite=SUMMARY), parameters=1, weights_mb=1.0)
    assert "2 two-token induction heads" in card and "none on the user's turns either" in card
    assert "switch line" not in card
    assert (
        "moss-agent train recipe --out runs/tiny --steps 900 --batch-size 4 --learning-rate 0.0025"
        " --mask-human --no-switch-thoughts --bigram-heads 2" in card
    )
    random_init = json.loads((run / "recipe_config.json").read_text()) | {
        "induction_circuit": False,
        "bigram_heads": 4,
    }
    assert reproduce_command(random_init) == (
        "moss-agent train recipe --out runs/tiny --steps 900 --batch-size 4 --learning-rate 0.0025"
        " --no-induction-circuit --mask-human --no-switch-thoughts"
    )


def test_the_card_names_the_loss_weights_and_the_command_gives_them_back(tmp_path):
    import shlex

    from moss_agent.train.sft import parse_loss_weights

    weights = {"Commands": 4.0, "MOSS": 2.0, "Human": 0.5}
    run = recipe_run(tmp_path, loss_weights=weights)
    card = render_model_card(run, ModelScores(suite=SUMMARY), parameters=1, weights_mb=1.0)
    assert "loss weighted by section (commands ×4, reply ×2, human ×0.5, the rest ×1)" in card
    command = reproduce_command(json.loads((run / "recipe_config.json").read_text()))
    assert command.endswith(" --loss-weight commands=4 --loss-weight reply=2 --loss-weight human=0.5")
    words = shlex.split(command)
    items = [words[i + 1] for i, word in enumerate(words) if word == "--loss-weight"]
    assert parse_loss_weights(items) == weights
    (tmp_path / "plain").mkdir()
    plain = render_model_card(
        recipe_run(tmp_path / "plain"), ModelScores(suite=SUMMARY), parameters=1, weights_mb=1.0
    )
    assert "loss weighted" not in plain


def test_the_card_names_the_number_slots(tmp_path):
    (tmp_path / "default").mkdir()
    (tmp_path / "digits").mkdir()
    (tmp_path / "unrounded").mkdir()
    run = recipe_run(tmp_path / "default")
    card = render_model_card(run, ModelScores(suite=SUMMARY), parameters=1, weights_mb=1.0)
    assert "32 number slots (`<num1>`…" in card and "--number-slots" not in card  # the default
    assert "rounding marker `<round>`" in card and "--no-number-rounding" not in card
    run = recipe_run(tmp_path / "unrounded", number_rounding=False)
    card = render_model_card(run, ModelScores(suite=SUMMARY), parameters=1, weights_mb=1.0)
    assert "--no-number-rounding" in card and "`<round>`" not in card
    assert "single digits get slots too" not in card
    (tmp_path / "digits-too").mkdir()
    run = recipe_run(tmp_path / "digits-too", digit_slots=True)
    card = render_model_card(run, ModelScores(suite=SUMMARY), parameters=1, weights_mb=1.0)
    assert "--digit-slots" in card and "single digits get slots too" in card
    # the default (100) is named in the tokenizer line, never as an option
    assert "one token only if seen 100 times" in card and "--name-min-count" not in card
    (tmp_path / "names-off").mkdir()
    run = recipe_run(tmp_path / "names-off", name_min_count=0)
    card = render_model_card(run, ModelScores(suite=SUMMARY), parameters=1, weights_mb=1.0)
    assert "one token only if seen" not in card and "--name-min-count 0" in card
    (tmp_path / "merges").mkdir()
    run = recipe_run(tmp_path / "merges", name_min_count=50, vocab_size=6000)
    (run / "tokenizer").mkdir()
    vocab = {f"t{i}": i for i in range(3000)}
    added = [{"content": "t1"}, {"content": "<num1>"}]  # one already in the vocabulary, one not
    (run / "tokenizer" / "tokenizer.json").write_text(
        json.dumps({"model": {"vocab": vocab}, "added_tokens": added})
    )
    card = render_model_card(run, ModelScores(suite=SUMMARY), parameters=1, weights_mb=1.0)
    assert (
        "byte-level BPE, 3001 tokens" in card and "a capitalized word one token only if seen 50 times" in card
    )
    assert "--name-min-count 50" in card
    run = recipe_run(tmp_path / "digits", number_slots=0)
    card = render_model_card(run, ModelScores(suite=SUMMARY), parameters=1, weights_mb=1.0)
    assert "--number-slots 0" in card and "number slots (" not in card


def test_the_reproduce_command_names_every_switch_of_the_recipe():
    import dataclasses

    default = RecipeConfig(out="")
    switches = [
        f.name for f in dataclasses.fields(RecipeConfig) if isinstance(getattr(default, f.name), bool)
    ]
    assert {"mix_clauses", "quote_counts", "pair_solutions", "shared_phrasings", "cjk_chars"} <= set(switches)
    for name in switches:
        flag = name.replace("_", "-")
        command = reproduce_command(dataclasses.asdict(default) | {name: not getattr(default, name)})
        assert command.endswith(f" --{flag}") or command.endswith(f" --no-{flag}"), (name, command)


def test_the_card_describes_the_data_options_of_the_run(tmp_path):
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    run = recipe_run(tmp_path / "on", pair_solutions=True, shared_phrasings=True)
    card = render_model_card(run, ModelScores(suite=SUMMARY), parameters=1, weights_mb=1.0)
    assert "name each animal right after the solver line" in card
    assert "phrased as requests for the custom sum/product tools are" in card
    assert "splicing the opening clauses" in card and "`已知35个头，94只脚`" in card  # on by default
    assert card.count("--pair-solutions") == 1 and "--shared-phrasings" not in card
    switches = (
        "mix_clauses",
        "quote_counts",
        "shared_phrasings",
        "more_phrasings",
        "wide_phrasings",
        "wrap_requests",
        "context_turns",
    )
    plain = recipe_run(tmp_path / "off", **dict.fromkeys(switches, False))
    card = render_model_card(plain, ModelScores(suite=SUMMARY), parameters=1, weights_mb=1.0)
    assert "each animal" not in card and "sum/product" not in card and "--no-shared-phrasings" in card
    assert "splicing" not in card and "已知" not in card and "greeting" not in card


def test_the_card_describes_the_custom_tool_options_and_the_made_up_names_scores(tmp_path):
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    run = recipe_run(tmp_path / "on", quote_api=True, novel_names=True)
    novel = {**SUMMARY, "n": 7, "trigger_accuracy": 0.125}
    card = render_model_card(
        run, ModelScores(heldout=SUMMARY, novel_names=novel), parameters=1, weights_mb=1.0
    )
    assert (
        "quote that tool's whole switch line" in card and "renamed to made-up words (`zorvak_plim`)" in card
    )
    assert card.endswith("--quote-api --novel-names`") or "--quote-api --novel-names` then" in card
    assert "Validation split" not in card  # not scored, no table
    made_up = card.split("every tool renamed to made-up words")[1]
    assert "| cases | 7 |" in made_up and "| tool choice (incl. no call) | 12.5 % |" in made_up
    plain = recipe_run(tmp_path / "off")
    card = render_model_card(plain, ModelScores(heldout=SUMMARY), parameters=1, weights_mb=1.0)
    assert "made-up" not in card and "whole switch line" not in card


def test_the_card_shows_the_validation_split_beside_the_held_out_one(tmp_path):
    valid = {**SUMMARY, "n": 3, "argument_accuracy": 0.75}
    card = render_model_card(
        recipe_run(tmp_path), ModelScores(heldout=SUMMARY, valid=valid), parameters=1, weights_mb=1.0
    )
    heldout, seen = card.split(
        "### Validation split (new conversations from the phrasing families of training"
    )
    assert "| arguments right when the tool is right | 50.0 % |" in heldout
    assert "| cases | 3 |" in seen and "| arguments right when the tool is right | 75.0 % |" in seen


def test_the_card_states_the_copy_bias_and_replace_scores_rewrites_only_the_scores(tmp_path):
    from moss_agent.train.model_card import replace_scores

    run = recipe_run(tmp_path)
    card = render_model_card(
        run, ModelScores(heldout=SUMMARY, constrained_calls=True), parameters=1, weights_mb=1.0
    )
    assert "copy bias" not in card and "constrained Commands" in card
    rescored = replace_scores(
        card,
        ModelScores(heldout={**SUMMARY, "argument_accuracy": 0.75}, constrained_calls=True, copy_bias=4.0),
    )
    before, after = card.split("## Scores"), rescored.split("## Scores")
    assert after[0] == before[0]  # everything above the scores is kept
    assert "| arguments right when the tool is right | 75.0 % |" in after[1]
    assert "| arguments right when the tool is right | 50.0 % |" not in after[1]
    assert "and copy bias 4 in Commands (`moss_agent.models.copy_bias`" in after[1]
    assert "Reproduce with `moss-agent train recipe --out runs/tiny` then" in after[1]
    assert rescored.rstrip().endswith("from the MOSS project.") and rescored.count("Licence:") == 1
    assert replace_scores(rescored, ModelScores(heldout=SUMMARY, constrained_calls=True)) == card


def test_a_copy_bias_other_than_the_default_is_in_the_reproduce_command(tmp_path):
    assert "--copy-bias" not in reproduce_command({**RecipeConfig(out="").__dict__})
    assert reproduce_command({**RecipeConfig(out="").__dict__, "copy_bias": 0.0}).endswith("--copy-bias 0.0")
