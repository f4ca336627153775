"""Load a MOSS checkpoint (or any causal LM that speaks the protocol) without remote code.

MOSS checkpoints (``model_type: moss``) are loaded with transformers' CodeGen classes
registered under the ``moss`` type (see :mod:`moss_agent.models.configuration`); their
``auto_map`` is ignored, so nothing from the checkpoint folder is executed unless the
caller passes ``trust_remote_code=True``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from moss_agent.errors import MissingDependencyError, UsageError
from moss_agent.models.ensemble import EnsembleManifest, ensemble_manifest
from moss_agent.protocol import SPECIAL_TOKENS

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["DEFAULT_MODEL", "DTYPES", "LoadedModel", "load_model"]

logger = logging.getLogger(__name__)

#: The hub id of the MOSS plugin model.
DEFAULT_MODEL = "fnlp/moss-moon-003-sft-plugin"
#: Accepted values of ``dtype``.
DTYPES = ("auto", "float16", "bfloat16", "float32")
_DEVICES = ("auto", "cpu", "cuda")
_GPTQ_CONFIG_KEYS = ("wbits", "groupsize")
_GPTQ_TENSOR_MARKERS = ("qweight", "qzeros")

_warned_remote_code: set[str] = set()


class LoadedModel(NamedTuple):
    """A loaded checkpoint, ready for :class:`~moss_agent.models.engine.GenerationEngine`.

    Attributes:
        model: The causal LM, in eval mode.
        tokenizer: Its tokenizer; MOSS's special tokens tokenize as single tokens.
        config: The model config.
        device: Where inputs go (the device of the input embeddings).
        name: The path or hub id it was loaded from.
        loading_info: transformers' ``missing_keys`` / ``unexpected_keys`` / ... report,
            when the loader asked for it (MOSS checkpoints).
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    config: PretrainedConfig
    device: torch.device
    name: str = ""
    loading_info: dict[str, Any] | None = None


def load_model(
    model: str | Path = DEFAULT_MODEL,
    *,
    dtype: str | torch.dtype = "auto",
    device: str = "auto",
    device_map: str | dict[str, Any] | None = None,
    load_in_8bit: bool = False,
    load_in_4bit: bool = False,
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> LoadedModel:
    """Load a checkpoint from a local folder or a hub id.

    Args:
        model: A local folder or a Hugging Face hub id.
        dtype: ``"auto"`` (float16 on CUDA for MOSS, as it shipped; bfloat16 or float16
            on CUDA for other models; float32 on CPU), ``"float16"``, ``"bfloat16"``,
            ``"float32"`` or a ``torch.dtype``.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        device_map: Spread the model over several GPUs through accelerate, e.g.
            ``"auto"``; a decoder block is never split. Overrides ``device``.
        load_in_8bit: Quantize the weights to 8 bits with bitsandbytes (CUDA only).
        load_in_4bit: Quantize the weights to 4 bits (NF4) with bitsandbytes (CUDA only).
        trust_remote_code: Let transformers run modeling code shipped in the checkpoint.
            Off by default: MOSS checkpoints load with transformers' own CodeGen code.
        revision: Hub revision (branch, tag or commit).

    Returns:
        The model, tokenizer, config and input device.

    Raises:
        UsageError: A bad option, a folder that is not a checkpoint, weights that are
            absent with no way to download them, or an unsupported format (MOSS's GPTQ).
        MissingDependencyError: 8-bit / 4-bit loading without bitsandbytes installed.
    """
    import torch

    name = str(model)
    torch_device = _resolve_device(device)
    if load_in_8bit and load_in_4bit:
        raise UsageError("Pass load_in_8bit or load_in_4bit, not both.")
    quantized = load_in_8bit or load_in_4bit
    if quantized:
        _check_quantization_possible(torch_device, bits=8 if load_in_8bit else 4)

    source, local = _resolve_source(name)
    manifest = ensemble_manifest(source) if local else None
    if manifest is not None:
        return _load_ensemble(
            name,
            manifest,
            dtype=dtype,
            device=device,
            device_map=device_map,
            load_in_8bit=load_in_8bit,
            load_in_4bit=load_in_4bit,
            trust_remote_code=trust_remote_code,
        )
    config_dict = _read_config_dict(source, local=local, revision=revision)
    _refuse_moss_gptq(name, source, config_dict, local=local)
    is_moss = config_dict.get("model_type") == "moss"
    torch_dtype = _resolve_dtype(dtype, torch_device, config_dict, is_moss=is_moss)

    # A hub model whose config is cached but that cannot be downloaded loads from the cache only.
    offline = not local and bool(_hub_unreachable_reason())
    kwargs: dict[str, Any] = {"revision": revision, "local_files_only": offline, _dtype_kwarg(): torch_dtype}
    if quantized:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = (
            BitsAndBytesConfig(load_in_8bit=True)
            if load_in_8bit
            else BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_compute_dtype=torch_dtype,
                bnb_4bit_quant_type="nf4",
            )
        )
        gpu = torch_device.index if torch_device.index is not None else torch.cuda.current_device()
        kwargs["device_map"] = device_map if device_map is not None else {"": gpu}
    elif device_map is not None:
        kwargs["device_map"] = device_map

    loading_info: dict[str, Any] | None = None
    try:
        if is_moss and not trust_remote_code:
            loaded, loading_info = _load_moss(name, source, config_dict, revision, kwargs)
        else:
            loaded = _load_auto(name, source, trust_remote_code, kwargs)
    except OSError as error:
        raise UsageError(_weights_missing_message(name, local=local, detail=str(error))) from error

    if "device_map" not in kwargs:
        cast(Any, loaded).to(torch_device)
    loaded.eval()
    tokenizer = _load_tokenizer(
        name, source, revision=revision, trust_remote_code=trust_remote_code, local_files_only=offline
    )
    input_device = torch.device(cast(Any, loaded.get_input_embeddings()).weight.device)
    if device_map is not None and not quantized and input_device.type == "cpu" and torch.cuda.is_available():
        logger.warning(
            "device_map=%r placed %s on the CPU although a GPU is present (no free GPU memory?); "
            "it runs there in %s.",
            device_map,
            name,
            str(torch_dtype).removeprefix("torch."),
        )
    return LoadedModel(
        model=loaded,
        tokenizer=tokenizer,
        config=loaded.config,
        device=input_device,
        name=name,
        loading_info=loading_info,
    )


def _load_ensemble(name: str, manifest: EnsembleManifest, **options: Any) -> LoadedModel:
    """Each member folder loaded with ``options``; the tokenizer from the ensemble's own folder."""
    from moss_agent.models.ensemble import EnsembleModel

    loaded = [load_model(member, **options) for member in manifest.members]
    model = EnsembleModel([member.model for member in loaded], combine=manifest.combine)
    tokenizer = _load_tokenizer(
        name,
        name,
        revision=None,
        trust_remote_code=bool(options.get("trust_remote_code")),
        local_files_only=True,
    )
    return LoadedModel(
        model=cast(Any, model),
        tokenizer=tokenizer,
        config=loaded[0].config,
        device=loaded[0].device,
        name=name,
        loading_info=None,
    )


# --- options ---------------------------------------------------------------------------


def _resolve_device(device: str) -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(
                f"device={device!r} was asked for but no CUDA GPU is available; use device='cpu'."
            )
        return torch.device(device)
    raise UsageError(f"Unknown device {device!r}; use one of {', '.join(_DEVICES)} (or 'cuda:N').")


def _resolve_dtype(
    dtype: str | torch.dtype, device: torch.device, config_dict: dict[str, Any], *, is_moss: bool
) -> torch.dtype:
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise UsageError(f"Unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}.")
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type != "cuda":
        return torch.float32
    if is_moss:
        return torch.float16  # as MOSS shipped and was evaluated
    saved = config_dict.get("torch_dtype") or config_dict.get("dtype")
    if saved in ("float16", "bfloat16"):
        return getattr(torch, saved)
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _dtype_kwarg() -> str:
    """``from_pretrained`` took ``torch_dtype`` before transformers 4.56 and ``dtype`` since."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _check_quantization_possible(device: torch.device, *, bits: int) -> None:
    if device.type != "cuda":
        raise UsageError(
            f"load_in_{bits}bit needs a CUDA GPU (bitsandbytes); on CPU load the float weights "
            "with dtype='float32' (or 'bfloat16' to halve the memory)."
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as error:
        raise MissingDependencyError("bitsandbytes", "quant", f"load_in_{bits}bit") from error


# --- where the checkpoint is -----------------------------------------------------------


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith((".", "/", "~"))
        or name.count("/") > 1
        or (os.sep != "/" and os.sep in name)
        or Path(name).expanduser().exists()
    )


def _resolve_source(name: str) -> tuple[str, bool]:
    """The string to hand to ``from_pretrained`` and whether it is a local folder."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path), True
    if _looks_like_path(name):
        raise UsageError(_weights_missing_message(name, local=True, detail=f"{path} is not a folder"))
    return name, False


def _weights_missing_message(name: str, *, local: bool, detail: str = "") -> str:
    where = f" ({detail})" if detail else ""
    if local:
        return (
            f"No model checkpoint at {name!r}{where}. Pass the folder that holds config.json, "
            f"the weights and the tokenizer, e.g. one made with "
            f"`huggingface-cli download {DEFAULT_MODEL} --local-dir PATH`."
        )
    return (
        f"Could not get the model {name!r} from the Hugging Face hub or its local cache{where}. "
        f"Download it where there is network, with `huggingface-cli download {name}`, "
        "or pass a local folder as the model."
    )


def _read_config_dict(source: str, *, local: bool, revision: str | None) -> dict[str, Any]:
    if local:
        path = Path(source) / "config.json"
        if not path.is_file():
            raise UsageError(
                _weights_missing_message(source, local=True, detail="no config.json in the folder")
            )
        return dict(json.loads(path.read_text(encoding="utf-8")))
    from huggingface_hub import hf_hub_download

    try:  # the local cache first: no network needed when the model was downloaded before
        path_str = hf_hub_download(source, "config.json", revision=revision, local_files_only=True)
    except Exception:
        problem = _hub_unreachable_reason()
        if problem:
            raise UsageError(_weights_missing_message(source, local=False, detail=problem)) from None
        try:
            path_str = hf_hub_download(source, "config.json", revision=revision)
        except Exception as error:  # unknown repo, gated repo, network failure...
            raise UsageError(
                _weights_missing_message(source, local=False, detail=f"{type(error).__name__}: {error}")
            ) from error
    return dict(json.loads(Path(path_str).read_text(encoding="utf-8")))


def _hub_unreachable_reason() -> str:
    """Why the hub cannot be reached, or "" when it may be (checked fast, without retries)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return ""  # a proxy decides; let huggingface_hub try
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=5):
            return ""
    except Exception as error:  # no DNS, no route, a test that blocks sockets
        return f"no network: cannot reach {host} ({type(error).__name__})"


def _refuse_moss_gptq(name: str, source: str, config_dict: dict[str, Any], *, local: bool) -> None:
    """MOSS's int4/int8 repos hold GPTQ weights for its own triton kernels: say so early."""
    found = [key for key in _GPTQ_CONFIG_KEYS if key in config_dict]
    if not found and local:
        folder = Path(source)
        if any(folder.glob("*.pt")):
            found = ["*.pt weights"]
        for index in folder.glob("*.index.json"):
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
            if any(marker in key for key in weight_map for marker in _GPTQ_TENSOR_MARKERS):
                found = ["qweight/qzeros tensors"]
                break
    if found:
        raise UsageError(
            f"{name!r} holds MOSS's own GPTQ-quantized weights ({', '.join(found)}), which need "
            "MOSS's custom triton kernels and are not supported. Load the float16 checkpoint "
            f"({DEFAULT_MODEL}) with load_in_4bit=True or load_in_8bit=True instead "
            "(bitsandbytes, on a CUDA GPU)."
        )


# --- model and tokenizer -----------------------------------------------------------------


def _ships_remote_code(source: str, config_dict: dict[str, Any]) -> bool:
    """Whether the checkpoint's ``auto_map`` points at code it ships.

    A local folder without those modules (the embedded model keeps MOSS's auto_map) ships none.
    """
    auto_map = config_dict.get("auto_map")
    if not auto_map:
        return False
    folder = Path(source)
    if not folder.is_dir():
        return True
    modules = {str(target).split("--")[-1].split(".")[0] for target in _auto_map_targets(auto_map)}
    return any((folder / f"{module}.py").is_file() for module in modules)


def _auto_map_targets(auto_map: Any) -> list[str]:
    if isinstance(auto_map, dict):
        return [t for v in auto_map.values() for t in (v if isinstance(v, (list, tuple)) else [v]) if t]
    return []


def _load_moss(
    name: str, source: str, config_dict: dict[str, Any], revision: str | None, kwargs: dict[str, Any]
) -> tuple[PreTrainedModel, dict[str, Any]]:
    from moss_agent.models.configuration import MossConfig, MossForCausalLM, register_moss

    register_moss()
    if _ships_remote_code(source, config_dict) and name not in _warned_remote_code:
        _warned_remote_code.add(name)
        logger.warning(
            "%s ships its own modeling code (auto_map); moss-agent loads it with transformers' "
            "CodeGen implementation instead and does not run that code "
            "(pass trust_remote_code=True to run it).",
            name,
        )
    config = MossConfig.from_pretrained(
        source, revision=revision or "main", local_files_only=kwargs.get("local_files_only", False)
    )
    result = MossForCausalLM.from_pretrained(source, config=config, output_loading_info=True, **kwargs)
    model, info = cast("tuple[PreTrainedModel, dict[str, Any]]", result)
    info = {
        key: list(value) if isinstance(value, (set, list, tuple)) else value for key, value in info.items()
    }
    if info.get("missing_keys"):
        raise UsageError(
            f"{name!r} does not look like a MOSS checkpoint: weights missing for "
            f"{', '.join(sorted(info['missing_keys'])[:5])} (and maybe more)."
        )
    if info.get("unexpected_keys"):
        logger.warning("%s: ignored weights %s", name, ", ".join(sorted(info["unexpected_keys"])[:5]))
    return model, info


def _load_auto(name: str, source: str, trust_remote_code: bool, kwargs: dict[str, Any]) -> PreTrainedModel:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(source, trust_remote_code=trust_remote_code, **kwargs)
    except ValueError as error:
        if "trust_remote_code" in str(error) or "custom code" in str(error):
            raise UsageError(
                f"{name!r} needs modeling code from the checkpoint itself, which moss-agent does not run "
                "by default. Read that code, then pass trust_remote_code=True to allow it."
            ) from error
        raise


def _load_tokenizer(
    name: str, source: str, *, revision: str | None, trust_remote_code: bool, local_files_only: bool = False
) -> PreTrainedTokenizerBase:
    import transformers

    tokenizer_config = _read_tokenizer_config(source, revision=revision, local_files_only=local_files_only)
    options: dict[str, Any] = {"revision": revision, "local_files_only": local_files_only}
    tokenizer_class = str(tokenizer_config.get("tokenizer_class") or "")
    custom = "auto_map" in tokenizer_config or (
        tokenizer_class != "" and not hasattr(transformers, tokenizer_class)
    )
    try:
        if custom and not trust_remote_code:
            # MOSS ships a GPT-2 byte BPE under its own class name: read the files directly.
            try:
                tokenizer = transformers.PreTrainedTokenizerFast.from_pretrained(source, **options)
            except (OSError, ValueError, TypeError):
                gpt2 = getattr(transformers, "GPT2TokenizerFast", None) or transformers.GPT2Tokenizer
                tokenizer = gpt2.from_pretrained(source, **options)
        else:
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                source, use_fast=True, trust_remote_code=trust_remote_code, **options
            )
    except OSError as error:
        raise UsageError(f"No usable tokenizer with the model {name!r}: {error}") from error
    _make_special_tokens_atomic(tokenizer)
    return tokenizer


def _read_tokenizer_config(source: str, *, revision: str | None, local_files_only: bool) -> dict[str, Any]:
    path = Path(source) / "tokenizer_config.json"
    if not path.is_file():
        try:
            from huggingface_hub import hf_hub_download

            path = Path(
                hf_hub_download(
                    source, "tokenizer_config.json", revision=revision, local_files_only=local_files_only
                )
            )
        except Exception:  # a folder without one, or the hub unreachable: the loader will say
            return {}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _make_special_tokens_atomic(tokenizer: PreTrainedTokenizerBase) -> None:
    """Make MOSS's special tokens that the vocabulary holds tokenize as single tokens."""
    from tokenizers import AddedToken

    vocab = tokenizer.get_vocab()
    split = [
        token
        for token in SPECIAL_TOKENS
        if token in vocab and tokenizer.encode(token, add_special_tokens=False) != [vocab[token]]
    ]
    if split:
        # Tokens already in the vocabulary keep their ids.
        tokenizer.add_tokens([AddedToken(token, special=True, normalized=False) for token in split])
