"""The loading and sampling options shared by ``MossLLM`` and ``ChatMoss``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["LOADING_FIELDS", "SAMPLING_FIELDS", "MossModelOptions"]

LOADING_FIELDS = (
    "dtype",
    "device",
    "device_map",
    "load_in_8bit",
    "load_in_4bit",
    "trust_remote_code",
    "revision",
)
SAMPLING_FIELDS = (
    "max_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "do_sample",
    "seed",
    "copy_bias",
)


class MossModelOptions(BaseModel):
    """How a local model is loaded and sampled (MOSS's sampling defaults)."""

    dtype: str = "auto"
    """auto, float16, bfloat16 or float32."""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N."""
    device_map: str | dict[str, Any] | None = None
    """accelerate device map for several GPUs, e.g. "auto"."""
    load_in_8bit: bool = False
    """Quantize to 8 bits with bitsandbytes (CUDA)."""
    load_in_4bit: bool = False
    """Quantize to 4 bits with bitsandbytes (CUDA)."""
    trust_remote_code: bool = False
    """Let transformers run modeling code shipped in the checkpoint."""
    revision: str | None = None
    """Hub revision."""
    max_new_tokens: int = 512
    """Most tokens to generate per call."""
    temperature: float = 0.7
    """Sampling temperature; 0 means greedy."""
    top_p: float = 0.8
    """Nucleus sampling threshold."""
    top_k: int | None = None
    """Keep only the k most likely tokens."""
    repetition_penalty: float = 1.02
    """Penalty on tokens already in the sequence (1 turns it off)."""
    do_sample: bool = True
    """Sample (True) or decode greedily (False)."""
    seed: int | None = None
    """Seed of the sampler."""
    copy_bias: float | None = None
    """Inside Commands, favour the token that continues the span of the user's turns a call
    copies (added to its log-score; 0 turns it off); None: the model's default (``copy_bias`` in
    its folder's generation_config.json, else 0)."""
    reuse_cache: bool = True
    """Reuse the keys/values of the shared prefix of consecutive prompts."""
    constrain_calls: bool = True
    """In Commands, let the model write only enabled tool names and declared parameter names
    (constrained decoding; it never forces a call, ``None`` stays allowed)."""

    def option_values(self) -> dict[str, Any]:
        """The loading and sampling options as keyword arguments."""
        return {
            name: getattr(self, name)
            for name in (*LOADING_FIELDS, *SAMPLING_FIELDS, "reuse_cache", "constrain_calls")
        }
