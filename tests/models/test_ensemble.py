"""Ensemble checkpoints: members that share a tokenizer, loaded and run as one model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from moss_agent.errors import UsageError
from moss_agent.models.engine import GenerationEngine, SamplingParams
from moss_agent.models.ensemble import EnsembleModel, ensemble_members
from moss_agent.models.loading import load_model
from moss_agent.protocol import STOPS_AFTER_COMMANDS
from tests.models.test_engine import batch_prompts, plugin_conversation

GREEDY = SamplingParams(do_sample=False, max_new_tokens=40)


def make_ensemble(folder: Path, tokenizer, members: dict[str, Path]) -> Path:
    folder.mkdir()
    tokenizer.save_pretrained(folder)
    for name, source in members.items():
        shutil.copytree(source, folder / name)
    (folder / "ensemble.json").write_text(json.dumps({"members": list(members)}))
    return folder


@pytest.fixture(scope="module")
def mixed_ensemble(tmp_path_factory, tiny_tokenizer, tiny_checkpoint, random_checkpoint) -> Path:
    folder = tmp_path_factory.mktemp("ensemble") / "mixed"
    return make_ensemble(folder, tiny_tokenizer, {"a": tiny_checkpoint, "b": random_checkpoint})


@pytest.fixture(scope="module")
def mixed_loaded(mixed_ensemble):
    return load_model(mixed_ensemble, device="cpu")


def test_log_probability_pooling_is_the_default_and_the_renormalised_product(
    mixed_loaded, tiny_loaded, random_loaded, turns
):
    assert isinstance(mixed_loaded.model, EnsembleModel)
    assert mixed_loaded.model.combine == "log-probabilities"  # its ensemble.json names no rule
    ids = torch.tensor([mixed_loaded.tokenizer(turns.plugin_reply)["input_ids"]])
    with torch.inference_mode():
        logs = [
            torch.log_softmax(m.model(input_ids=ids).logits[0, -1].float(), -1)
            for m in (tiny_loaded, random_loaded)
        ]
        pooled = GenerationEngine(mixed_loaded, reuse_cache=False)._forward(
            ids, mixed_loaded.model.new_cache()
        )
    torch.testing.assert_close(
        pooled[0], torch.log_softmax((logs[0] + logs[1]) / 2, -1), atol=1e-5, rtol=1e-5
    )
    # the two members disagree, so the pooled distribution is neither of them
    assert not torch.allclose(logs[0].exp(), logs[1].exp(), atol=1e-3)


def test_probability_pooling_is_the_members_mean(
    tmp_path, tiny_tokenizer, tiny_checkpoint, random_checkpoint, tiny_loaded, random_loaded, turns
):
    folder = make_ensemble(tmp_path / "mean", tiny_tokenizer, {"a": tiny_checkpoint, "b": random_checkpoint})
    (folder / "ensemble.json").write_text(json.dumps({"members": ["a", "b"], "combine": "probabilities"}))
    loaded = load_model(folder, device="cpu")
    assert loaded.model.combine == "probabilities"
    ids = torch.tensor([loaded.tokenizer(turns.plugin_reply)["input_ids"]])
    with torch.inference_mode():
        probs = [
            torch.softmax(m.model(input_ids=ids).logits[0, -1].float(), -1)
            for m in (tiny_loaded, random_loaded)
        ]
        mixed = GenerationEngine(loaded, reuse_cache=False)._forward(ids, loaded.model.new_cache())
    torch.testing.assert_close(mixed[0], torch.log((probs[0] + probs[1]) / 2), atol=1e-5, rtol=1e-5)


def test_two_copies_of_a_model_generate_what_it_generates(
    tmp_path, tiny_tokenizer, tiny_checkpoint, tiny_engine, turns
):
    folder = make_ensemble(
        tmp_path / "twins", tiny_tokenizer, {"one": tiny_checkpoint, "two": tiny_checkpoint}
    )
    twins = GenerationEngine(load_model(folder, device="cpu"))
    assert plugin_conversation(twins, turns) == plugin_conversation(tiny_engine, turns)


def test_cache_reuse_gives_identical_greedy_output(mixed_loaded, turns):
    with_reuse = GenerationEngine(mixed_loaded)
    without = GenerationEngine(mixed_loaded, reuse_cache=False)
    assert plugin_conversation(with_reuse, turns) == plugin_conversation(without, turns)
    assert with_reuse.reused_tokens > 0


def test_batch_equals_one_by_one(mixed_loaded, turns):
    engine = GenerationEngine(mixed_loaded)
    prompts = batch_prompts(turns)
    singles = [
        engine.generate(p, stop=STOPS_AFTER_COMMANDS, params=GREEDY, reuse_cache=False) for p in prompts
    ]
    batch = engine.generate_batch(prompts, stop=STOPS_AFTER_COMMANDS, params=GREEDY)
    assert [g.text for g in batch] == [g.text for g in singles]


def test_a_folder_without_manifest_is_no_ensemble(tiny_checkpoint):
    assert ensemble_members(tiny_checkpoint) is None


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ('{"members": []}', "at least one folder"),
        ('["a"]', "at least one folder"),
        ("{not json", "not readable JSON"),
        ('{"members": ["../elsewhere"]}', "folder name inside"),
        ('{"members": ["/abs/path"]}', "folder name inside"),
        ('{"members": ["missing"]}', "no config.json"),
        ('{"members": ["a"], "combine": "max"}', "combine must be one of"),
    ],
)
def test_a_bad_manifest_is_refused_clearly(tmp_path, manifest, message):
    (tmp_path / "ensemble.json").write_text(manifest)
    with pytest.raises(UsageError, match=message):
        load_model(tmp_path, device="cpu")


def test_members_with_other_vocabularies_are_refused(tmp_path, tiny_loaded):
    from moss_agent.models.tiny import build_tiny_moss_checkpoint, build_tiny_tokenizer
    from tests.models.conftest import moss_lines

    other = build_tiny_tokenizer(moss_lines(), vocab_size=300)
    assert len(other) != len(tiny_loaded.tokenizer)
    small = load_model(build_tiny_moss_checkpoint(tmp_path, tokenizer=other), device="cpu")
    with pytest.raises(UsageError, match="share one vocabulary"):
        EnsembleModel([tiny_loaded.model, small.model])


def test_finetuning_an_ensemble_is_refused_with_what_to_do(mixed_ensemble, tmp_path):
    from moss_agent.train.sft import SFTConfig, finetune

    config = SFTConfig(model=str(mixed_ensemble), data=[], output_dir=str(tmp_path / "out"))
    with pytest.raises(UsageError, match="fine-tune one of its member folders"):
        finetune(config)
    assert not (tmp_path / "out").exists()


def test_write_ensemble_halves_weights_and_refuses_mixed_tokenizers(
    tmp_path, tiny_checkpoint, random_checkpoint
):
    from safetensors.torch import load_file

    from moss_agent.models.ensemble import write_ensemble

    folder = write_ensemble(tmp_path / "half", [tiny_checkpoint, random_checkpoint], dtype="float16")
    assert [m.name for m in ensemble_members(folder)] == ["member-0", "member-1"]
    halved = load_file(str(folder / "member-1" / "model.safetensors"))
    original = load_file(str(random_checkpoint / "model.safetensors"))
    assert all(torch.equal(halved[k], original[k].half()) for k in original)
    assert json.loads((folder / "member-1" / "config.json").read_text())["dtype"] == "float16"
    other = tmp_path / "other"
    shutil.copytree(random_checkpoint, other)
    (other / "tokenizer.json").write_text(
        (other / "tokenizer.json").read_text().replace("Calculate", "Calcul8")
    )
    with pytest.raises(UsageError, match="another tokenizer"):
        write_ensemble(tmp_path / "mixed", [tiny_checkpoint, other])
    with pytest.raises(UsageError, match="float16, bfloat16, float32"):
        write_ensemble(tmp_path / "bad", [tiny_checkpoint], dtype="int8")
