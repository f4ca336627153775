"""moss-agent: the MOSS plugin model as a LangChain-native tool-using agent.

Public names load lazily, so ``import moss_agent`` stays fast and never imports torch,
transformers, diffusers or ddgs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name → module that defines it.
_EXPORTS: dict[str, str] = {
    "MossAgent": "moss_agent.agent",
    "TurnRecord": "moss_agent.agent",
    "ToolRegistry": "moss_agent.tools.registry",
    "default_registry": "moss_agent.tools.registry",
    "ToolInvocation": "moss_agent.protocol",
    "ParsedGeneration": "moss_agent.protocol",
    "PluginDeclaration": "moss_agent.protocol",
    "Turn": "moss_agent.protocol",
    "parse_generation": "moss_agent.protocol",
    "render_meta_instruction": "moss_agent.protocol",
    "MossAgentError": "moss_agent.errors",
    "ModelOutputError": "moss_agent.errors",
    "UsageError": "moss_agent.errors",
    "ScriptedMossLLM": "moss_agent.testing",
    "MossLLM": "moss_agent.models.llm",
    "ChatMoss": "moss_agent.models.chat",
}

__all__ = [
    "ChatMoss",
    "ModelOutputError",
    "MossAgent",
    "MossAgentError",
    "MossLLM",
    "ParsedGeneration",
    "PluginDeclaration",
    "ScriptedMossLLM",
    "ToolInvocation",
    "ToolRegistry",
    "Turn",
    "TurnRecord",
    "UsageError",
    "__version__",
    "default_registry",
    "parse_generation",
    "render_meta_instruction",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'moss_agent' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from moss_agent.agent import MossAgent, TurnRecord
    from moss_agent.errors import ModelOutputError, MossAgentError, UsageError
    from moss_agent.models.chat import ChatMoss
    from moss_agent.models.llm import MossLLM
    from moss_agent.protocol import (
        ParsedGeneration,
        PluginDeclaration,
        ToolInvocation,
        Turn,
        parse_generation,
        render_meta_instruction,
    )
    from moss_agent.testing import ScriptedMossLLM
    from moss_agent.tools.registry import ToolRegistry, default_registry
