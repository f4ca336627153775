"""Local models: loading MOSS checkpoints, the generation engine and the LangChain LLM.

Names are imported lazily so that ``import moss_agent.models`` does not import torch
or transformers; they load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moss_agent.models.chat import ChatMoss
    from moss_agent.models.configuration import MossConfig, MossForCausalLM, register_moss
    from moss_agent.models.engine import Generation, GenerationEngine, SamplingParams, TextStream, Timings
    from moss_agent.models.llm import MossLLM
    from moss_agent.models.loading import DEFAULT_MODEL, LoadedModel, load_model
    from moss_agent.models.tiny import build_tiny_moss_checkpoint, build_tiny_tokenizer

__all__ = [
    "DEFAULT_MODEL",
    "ChatMoss",
    "Generation",
    "GenerationEngine",
    "LoadedModel",
    "MossConfig",
    "MossForCausalLM",
    "MossLLM",
    "SamplingParams",
    "TextStream",
    "Timings",
    "build_tiny_moss_checkpoint",
    "build_tiny_tokenizer",
    "load_model",
    "register_moss",
]

_WHERE = {
    "ChatMoss": "chat",
    "MossConfig": "configuration",
    "MossForCausalLM": "configuration",
    "register_moss": "configuration",
    "Generation": "engine",
    "GenerationEngine": "engine",
    "SamplingParams": "engine",
    "TextStream": "engine",
    "Timings": "engine",
    "MossLLM": "llm",
    "DEFAULT_MODEL": "loading",
    "LoadedModel": "loading",
    "load_model": "loading",
    "build_tiny_moss_checkpoint": "tiny",
    "build_tiny_tokenizer": "tiny",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
