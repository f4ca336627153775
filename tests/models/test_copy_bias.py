"""The copy bias of Commands: which token it favours, where it acts, and how it reaches the engine."""

from __future__ import annotations

import json

import pytest
import torch

from moss_agent.errors import UsageError
from moss_agent.models.copy_bias import CopyBias, find_tokens, model_copy_bias
from moss_agent.models.engine import GenerationEngine, SamplingParams
from moss_agent.protocol import COMMANDS_TAG, END_OF_COMMANDS

#        0  1  2  3  4  5  6  7  8  9
PROMPT = [9, 1, 2, 3, 4, 5, 1, 2, 7, 8]


def test_the_longest_span_decides():
    bias = CopyBias(PROMPT, 2.0, shortest=2)
    assert bias.following([1, 2]) == {3, 7}  # two spans of two tokens: both continuations
    assert bias.following([9, 1, 2]) == {3}  # the three-token span wins
    assert bias.following([5, 1, 2]) == {7}


def test_a_span_shorter_than_shortest_is_no_anchor():
    bias = CopyBias(PROMPT, 2.0, shortest=3)
    assert bias.following([1, 2]) == set()
    assert bias.following([4, 5, 1]) == {2}
    assert bias.following([6, 2]) == set()


def test_only_the_given_spans_are_copied_and_a_copy_ends_with_its_span():
    bias = CopyBias(PROMPT, 2.0, spans=[(4, 9)], shortest=2)
    assert bias.following([1, 2]) == {7}  # the span at 1-2 lies outside
    assert bias.following([2, 7]) == set()  # 8 lies after the span's end: nothing to offer
    # a match stays within its turn: "1 2" at positions 1-2 starts before the span at 2
    assert CopyBias(PROMPT, 2.0, spans=[(2, 9)], shortest=2).following([9, 1, 2]) == {7}


def test_human_spans_are_the_user_turns():
    from moss_agent.models.copy_bias import human_spans

    # 50 50 = <|Human|> tag, 60 = <eoh>, 70 = another section's tag
    prompt = [1, 2, 50, 50, 3, 4, 60, 70, 5, 50, 50, 6, 7, 60, 70, 8]
    assert human_spans(prompt, [50, 50], [60]) == [(4, 6), (11, 13)]
    assert human_spans([50, 50, 3, 4], [50, 50], [60]) == [(2, 4)]  # no <eoh> yet: to the end
    assert human_spans([1, 2], [50, 50], [60]) == []


def test_bias_only_inside_commands():
    bias = CopyBias(PROMPT, 5.0, shortest=2)
    scores = torch.zeros(1, 12)
    history = [*PROMPT, 1, 2]
    bias.apply(scores, 0, "thinking 1 2", history)  # no Commands tag written yet
    assert not scores.any()
    bias.apply(scores, 0, f"{COMMANDS_TAG}:", history)  # the tag: Commands start after it
    assert not scores.any()
    bias.apply(scores, 0, f"{COMMANDS_TAG}: 1 2", [*history, 1, 2])
    assert scores[0, 3] == 5.0 and scores[0, 7] == 5.0 and scores[0].sum() == 10.0
    scores.zero_()
    bias.apply(scores, 0, f"{COMMANDS_TAG}: 1 2{END_OF_COMMANDS}", [*history, 1, 2, 0])
    assert not scores.any()


def test_a_copied_position_is_not_offered_again():
    bias = CopyBias([1, 2, 3, 1, 2, 3, 9], 5.0, shortest=2, commands_from=7)
    scores = torch.zeros(1, 10)
    history = [1, 2, 3, 1, 2, 3, 9]
    bias.apply(scores, 0, "", [*history, 1, 2])
    assert scores[0, 3] == 5.0  # both spans "1 2" continue with 3
    scores.zero_()
    bias.apply(scores, 0, "", [*history, 1, 2, 3])  # 3 was copied: the positions it came from are used
    bias.apply(scores, 0, "", [*history, 1, 2, 3, 1])
    scores.zero_()
    bias.apply(scores, 0, "", [*history, 1, 2, 3, 1, 2])
    assert not scores.any()  # "1 2" again: no 3 left to copy, so no loop


def test_a_prompt_that_ends_inside_commands_copies_from_the_start():
    """A forced call (`<|Commands|>: name(` in the prompt): the bias acts on the first token."""
    prompt = [4, 5, 6, 7, 8, 20, 5, 6]  # ... 20 stands for the Commands tag, then "5 6" written
    bias = CopyBias(prompt, 3.0, commands_from=6, shortest=2)
    scores = torch.zeros(1, 30)
    bias.apply(scores, 0, "", prompt)
    assert scores[0, 7] == 3.0  # "5 6" continues with 7, copied from before the tag
    assert scores[0].sum() == 3.0  # the prompt's own Commands text is no source


def test_bad_bias_and_bad_params_are_refused():
    with pytest.raises(ValueError, match="bias"):
        CopyBias(PROMPT, -1.0)
    with pytest.raises(UsageError, match="copy_bias"):
        SamplingParams(copy_bias=-0.5)
    with pytest.raises(UsageError, match="copy_bias"):
        SamplingParams(copy_bias=float("nan"))


def test_find_tokens():
    assert find_tokens(PROMPT, [1, 2]) == 1
    assert find_tokens(PROMPT, [1, 2], last=True) == 6
    assert find_tokens(PROMPT, [2, 1]) is None
    assert find_tokens(PROMPT, []) is None
    assert find_tokens(PROMPT, [1, 2], start=2) == 6


def test_model_copy_bias_reads_the_generation_config(tmp_path):
    assert model_copy_bias(str(tmp_path)) == 0.0
    assert model_copy_bias("fnlp/moss-moon-003-sft-plugin") == 0.0
    (tmp_path / "generation_config.json").write_text(json.dumps({"copy_bias": 3}))
    assert model_copy_bias(str(tmp_path)) == 3.0
    ensemble = tmp_path / "ensemble"
    (ensemble / "m0").mkdir(parents=True)
    (ensemble / "m0" / "config.json").write_text("{}")
    (ensemble / "ensemble.json").write_text(json.dumps({"members": ["m0"]}))
    (ensemble / "m0" / "generation_config.json").write_text(json.dumps({"copy_bias": 2.5}))
    assert model_copy_bias(str(ensemble)) == 2.5
    (ensemble / "m0" / "generation_config.json").write_text(json.dumps({"copy_bias": "x"}))
    assert model_copy_bias(str(ensemble)) == 0.0
    (ensemble / "ensemble.json").write_text(json.dumps({"members": ["../elsewhere"]}))
    assert model_copy_bias(str(ensemble)) == 0.0  # a manifest ensemble_members refuses


def test_engine_default_comes_from_the_model_folder(tiny_checkpoint, tmp_path, caplog):
    import shutil

    from moss_agent.models.copy_bias import set_copy_bias
    from moss_agent.models.loading import load_model

    folder = tmp_path / "biased"
    shutil.copytree(tiny_checkpoint, folder)
    assert GenerationEngine(load_model(folder, device="cpu")).default_copy_bias == 0.0
    set_copy_bias(folder, 2.0)
    # transformers' GenerationConfig drops the key: the engine reads the file itself
    assert GenerationEngine(load_model(folder, device="cpu")).default_copy_bias == 2.0
    config = folder / "generation_config.json"
    config.write_text(config.read_text().replace("2.0", "-1"))
    assert GenerationEngine(load_model(folder, device="cpu")).default_copy_bias == 0.0
    assert "below 0" in caplog.text
    set_copy_bias(folder, 0)
    assert "copy_bias" not in config.read_text()
