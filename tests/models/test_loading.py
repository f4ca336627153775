"""Loading MOSS-format checkpoints without running code from them."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from moss_agent.errors import MissingDependencyError, UsageError
from moss_agent.models.loading import load_model
from moss_agent.protocol import END_OF_MESSAGE, SPECIAL_TOKENS

MARKER = "REMOTE_CODE_RAN"


def plant_remote_code(folder: Path) -> Path:
    """Put MOSS's remote-code module names in ``folder``; importing any of them leaves a marker."""
    marker = folder / MARKER
    code = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\nraise RuntimeError('remote code ran')\n"
    for module in ("configuration_moss.py", "modeling_moss.py", "tokenization_moss.py"):
        (folder / module).write_text(code)
    return marker


@pytest.fixture
def checkpoint_copy(tiny_checkpoint, tmp_path) -> Path:
    folder = tmp_path / "moss-copy"
    shutil.copytree(tiny_checkpoint, folder)
    return folder


def test_moss_weights_load_with_nothing_missing_or_unexpected(tiny_checkpoint):
    from safetensors import safe_open

    loaded = load_model(tiny_checkpoint, device="cpu")
    assert type(loaded.model).__name__ == "MossForCausalLM"
    assert loaded.config.model_type == "moss"
    assert loaded.loading_info is not None
    assert loaded.loading_info["missing_keys"] == []
    assert loaded.loading_info["unexpected_keys"] == []
    assert loaded.loading_info["mismatched_keys"] == []
    with safe_open(str(tiny_checkpoint / "model.safetensors"), framework="pt") as weights:
        stored = set(weights.keys())
    assert stored == set(loaded.model.state_dict())
    assert {"transformer.wte.weight", "transformer.h.0.attn.qkv_proj.weight", "lm_head.bias"} <= stored
    assert loaded.device.type == "cpu"
    assert not loaded.model.training


def test_weights_are_the_stored_ones(tiny_checkpoint, tiny_loaded):
    from safetensors.torch import load_file

    stored = load_file(str(tiny_checkpoint / "model.safetensors"))
    state = tiny_loaded.model.state_dict()
    assert all((state[name] == tensor).all() for name, tensor in stored.items())


def test_checkpoint_has_moss_layout(tiny_checkpoint):
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert config["model_type"] == "moss"
    assert config["architectures"] == ["MossForCausalLM"]
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_moss.MossForCausalLM"
    assert config["tie_word_embeddings"] is False
    tokenizer_config = json.loads((tiny_checkpoint / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "MossTokenizer"


def test_no_code_from_the_checkpoint_runs(checkpoint_copy, caplog):
    marker = plant_remote_code(checkpoint_copy)
    with caplog.at_level(logging.WARNING, logger="moss_agent.models.loading"):
        loaded = load_model(checkpoint_copy, device="cpu")
    assert not marker.exists()
    assert type(loaded.model).__module__ == "moss_agent.models.configuration"
    assert "does not run that code" in caplog.text
    assert not any("moss" in name and "transformers_modules" in name for name in sys.modules)


def test_trust_remote_code_hands_the_checkpoint_code_to_transformers(checkpoint_copy):
    """Opting in lets transformers import the folder's own code (here: the planted module)."""
    config = json.loads((checkpoint_copy / "config.json").read_text())
    config["model_type"] = "moss-remote-only"  # a type only the remote code knows
    (checkpoint_copy / "config.json").write_text(json.dumps(config))
    marker = plant_remote_code(checkpoint_copy)
    with pytest.raises(Exception, match="remote code ran"):
        load_model(checkpoint_copy, device="cpu", trust_remote_code=True)
    assert marker.exists()


def test_unknown_model_type_needing_remote_code_is_refused(checkpoint_copy):
    config = json.loads((checkpoint_copy / "config.json").read_text())
    config["model_type"] = "moss-remote-only"
    (checkpoint_copy / "config.json").write_text(json.dumps(config))
    marker = plant_remote_code(checkpoint_copy)
    with pytest.raises(UsageError, match="trust_remote_code=True"):
        load_model(checkpoint_copy, device="cpu")
    assert not marker.exists()


def test_gpt2_style_tokenizer_files_load_without_remote_code(checkpoint_copy, tiny_tokenizer):
    """MOSS's folder has vocab.json + merges.txt under its own MossTokenizer class."""
    (checkpoint_copy / "tokenizer.json").unlink()
    tiny_tokenizer.backend_tokenizer.model.save(str(checkpoint_copy))
    marker = plant_remote_code(checkpoint_copy)
    loaded = load_model(checkpoint_copy, device="cpu")
    assert not marker.exists()
    text = "<|Human|>: 你好 12<eoh>\n<|Commands|>: None<eoc>\n<|MOSS|>: hi<eom>"
    assert loaded.tokenizer(text)["input_ids"] == tiny_tokenizer(text)["input_ids"]
    assert loaded.tokenizer.decode(loaded.tokenizer(text)["input_ids"]) == text


def test_special_tokens_are_single_tokens(tiny_loaded):
    tokenizer = tiny_loaded.tokenizer
    for token in SPECIAL_TOKENS:
        assert tokenizer.encode(f"x{token}y", add_special_tokens=False)[1:-1] == [
            tokenizer.convert_tokens_to_ids(token)
        ]
    assert tokenizer.eos_token == END_OF_MESSAGE
    assert tiny_loaded.config.eos_token_id == tokenizer.convert_tokens_to_ids(END_OF_MESSAGE)


def test_registration_is_idempotent_and_serves_auto_classes(tiny_checkpoint, tiny_loaded):
    from transformers import AutoConfig

    from moss_agent.models.configuration import MossConfig, register_moss

    register_moss()
    register_moss()
    assert type(AutoConfig.from_pretrained(tiny_checkpoint)) is MossConfig


def test_import_does_not_load_torch():
    code = "import sys, moss_agent, moss_agent.models; assert 'torch' not in sys.modules; assert 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_dtype(tiny_checkpoint, dtype):
    import torch

    loaded = load_model(tiny_checkpoint, device="cpu", dtype=dtype)
    assert loaded.model.dtype == getattr(torch, dtype)


def test_auto_dtype_on_cpu_is_float32(tiny_loaded):
    import torch

    assert tiny_loaded.model.dtype == torch.float32


def test_other_causal_lms_load_through_auto_classes(tmp_path, tiny_tokenizer):
    from transformers import CodeGenConfig, CodeGenForCausalLM

    config = CodeGenConfig(
        vocab_size=len(tiny_tokenizer), n_layer=1, n_embd=32, n_head=4, rotary_dim=4, n_positions=64
    )
    CodeGenForCausalLM(config).save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    loaded = load_model(tmp_path, device="cpu")
    assert type(loaded.model).__name__ == "CodeGenForCausalLM"
    assert loaded.loading_info is None


# --- errors that say what to do ------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(UsageError, match="huggingface-cli download"):
        load_model(tmp_path / "nowhere", device="cpu")


def test_folder_without_config(tmp_path):
    with pytest.raises(UsageError, match="no config.json"):
        load_model(tmp_path, device="cpu")


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_hub_id_without_network(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(UsageError) as caught:
        load_model("fnlp/moss-moon-003-sft-plugin", device="cpu")
    message = str(caught.value)
    assert "fnlp/moss-moon-003-sft-plugin" in message
    assert "huggingface-cli download fnlp/moss-moon-003-sft-plugin" in message
    assert "local folder" in message


def test_weights_missing_from_folder(checkpoint_copy):
    (checkpoint_copy / "model.safetensors").unlink()
    with pytest.raises(UsageError, match="No model checkpoint"):
        load_model(checkpoint_copy, device="cpu")


@pytest.mark.parametrize("layout", ["config", "pt-file"])
def test_moss_gptq_weights_are_refused_clearly(checkpoint_copy, layout):
    if layout == "config":
        config = json.loads((checkpoint_copy / "config.json").read_text())
        config.update({"wbits": 4, "groupsize": 128})
        (checkpoint_copy / "config.json").write_text(json.dumps(config))
    else:
        (checkpoint_copy / "pytorch_model.pt").write_bytes(b"")
    with pytest.raises(UsageError, match="GPTQ") as caught:
        load_model(checkpoint_copy, device="cpu")
    assert "load_in_4bit=True" in str(caught.value)


@pytest.mark.parametrize("option", ["load_in_8bit", "load_in_4bit"])
def test_quantization_on_cpu_is_a_clear_error(tiny_checkpoint, option):
    with pytest.raises(UsageError, match="CUDA"):
        load_model(tiny_checkpoint, device="cpu", **{option: True})


def test_quantization_without_bitsandbytes_names_the_extra(tiny_checkpoint, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails
    with pytest.raises(MissingDependencyError, match=r"moss-agent\[quant\]"):
        load_model(tiny_checkpoint, device="cuda", load_in_4bit=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dtype": "float64"}, "Unknown dtype"),
        ({"device": "tpu"}, "Unknown device"),
        ({"load_in_8bit": True, "load_in_4bit": True}, "not both"),
    ],
)
def test_bad_options(tiny_checkpoint, options, message):
    with pytest.raises(UsageError, match=message):
        load_model(tiny_checkpoint, **options)


def test_cuda_without_a_gpu(tiny_checkpoint):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UsageError, match="no CUDA GPU"):
        load_model(tiny_checkpoint, device="cuda")


def test_device_map_that_leaves_the_gpu_unused_is_reported(tiny_checkpoint, monkeypatch, caplog):
    """Seen on an H100 with no free memory: accelerate put every weight on the CPU, in float16."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with caplog.at_level(logging.WARNING, logger="moss_agent.models.loading"):
        loaded = load_model(tiny_checkpoint, device_map={"": "cpu"})
    assert loaded.device.type == "cpu" and loaded.model.dtype == torch.float16
    assert "placed" in caplog.text and "on the CPU although a GPU is present" in caplog.text
    caplog.clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="moss_agent.models.loading"):
        load_model(tiny_checkpoint, device_map={"": "cpu"})
    assert "although a GPU" not in caplog.text


def test_auto_map_without_its_modules_is_not_called_remote_code(checkpoint_copy, caplog):
    """The embedded model keeps MOSS's auto_map but ships no modules: no warning about code."""
    assert not (checkpoint_copy / "modeling_moss.py").exists()
    with caplog.at_level(logging.WARNING, logger="moss_agent.models.loading"):
        load_model(checkpoint_copy, device="cpu")
    assert "ships its own modeling code" not in caplog.text
