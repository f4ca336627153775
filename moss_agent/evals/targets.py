"""What an eval runs against: the target model, and the tools each case gets.

A target is a MOSS text model (run through :class:`~moss_agent.agent.MossAgent`) or a
LangChain chat model (run through a small tool loop). Each case gets the real Calculate
and Solve tools, a deterministic Search (the suite's local corpus or the case's recorded
results), a Text2Image stub unless images are asked for, and stubs of its custom tools.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from moss_agent.errors import UsageError
from moss_agent.evals.suite import EvalCase
from moss_agent.models.options import LOADING_FIELDS
from moss_agent.protocol import ResultLayout

__all__ = ["EvalTarget", "as_target", "build_target", "registry_for_case"]

_SAMPLING_FIELDS = ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "seed")


@dataclass
class EvalTarget:
    """What is evaluated.

    Attributes:
        model: A LangChain LLM that speaks MOSS text (``kind="agent"``) or a chat model
            (``kind="chat"``).
        kind: ``"agent"`` runs :class:`~moss_agent.agent.MossAgent`; ``"chat"`` binds tools.
        identity: Name, class and fingerprint of the model, for the run's config.
        sampling: Sampling settings, for the run's config.
        max_new_tokens: Most tokens per generation, for the run's config.
        llm_kwargs: Passed to every model call.
    """

    model: Any
    kind: Literal["agent", "chat"]
    identity: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    max_new_tokens: int | None = None
    llm_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A short model name for titles."""
        return str(self.identity.get("name") or self.identity.get("class") or "model")


def _fingerprint(model_path: str) -> str | None:
    """Hash of a checkpoint folder's file names and sizes (cheap; catches swapped weights)."""
    folder = Path(model_path)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(f"{file.relative_to(folder)}:{file.stat().st_size}\n".encode())
    return digest.hexdigest()


_GENERIC_FOLDERS = ("final", "sft", "checkpoints", "step-", "checkpoint-")


def _display_name(name: str) -> str:
    """A model folder's name, with its parents while it is generic (``tiny/sft/final``)."""
    path = Path(name)
    if not path.is_dir():
        return name
    parts = path.resolve().parts
    keep = 1
    while keep < len(parts) - 1 and parts[-keep].startswith(_GENERIC_FOLDERS):
        keep += 1
    return "/".join(parts[-keep:])


def _identity(model: Any) -> dict[str, Any]:
    inner = getattr(model, "llm", None)
    candidates = (
        getattr(model, "model", None),
        getattr(model, "model_name", None),
        getattr(inner, "model", None),
    )
    name = next((c for c in candidates if isinstance(c, str) and c), None)
    if name is None:
        name = str(getattr(model, "_llm_type", type(model).__name__))
    identity: dict[str, Any] = {"name": _display_name(name), "path": name}
    identity["class"] = type(model).__name__
    if inner is not None:
        identity["llm_class"] = type(inner).__name__
    identity["fingerprint"] = _fingerprint(name)
    options = model if hasattr(model, "load_in_4bit") else inner
    loading = _loading(options)
    if loading:  # only what differs from the defaults, so earlier runs' configs still match
        identity["loading"] = loading
    # Runs before constrained Commands decoding existed were unconstrained and record nothing.
    decoder = inner if inner is not None and hasattr(inner, "constrain_calls") else options
    if getattr(decoder, "constrain_calls", False) is True:
        identity["constrain_calls"] = True
    copy_bias = getattr(decoder, "copy_bias", None)
    if copy_bias is None:
        from moss_agent.models.copy_bias import model_copy_bias

        copy_bias = model_copy_bias(name)
    if copy_bias:  # off records nothing, as before the copy bias existed
        identity["copy_bias"] = float(copy_bias)
    return identity


def _loading(llm: Any) -> dict[str, Any]:
    """The loading options of a MossLLM that differ from its defaults (dtype, device, ...)."""
    fields = getattr(type(llm), "model_fields", {})
    changed = {}
    for key in LOADING_FIELDS:
        if key in fields and getattr(llm, key) != fields[key].default:
            changed[key] = getattr(llm, key)
    return changed


def as_target(model: Any, *, max_new_tokens: int | None = None) -> EvalTarget:
    """Wrap a LangChain model: chat models run the tool loop, other models the MOSS agent.

    Args:
        model: An :class:`EvalTarget` (returned as is), a chat model, or a LangChain LLM.
        max_new_tokens: Recorded in the config; read from the model when not given.

    Raises:
        UsageError: ``model`` is not a LangChain language model.
    """
    if isinstance(model, EvalTarget):
        return model
    from langchain_core.language_models import BaseChatModel, BaseLanguageModel

    if not isinstance(model, BaseLanguageModel):
        raise UsageError(f"the eval target must be a LangChain LLM or chat model, not {type(model).__name__}")
    kind: Literal["agent", "chat"] = "chat" if isinstance(model, BaseChatModel) else "agent"
    sampling = {f: getattr(model, f) for f in _SAMPLING_FIELDS if hasattr(model, f)}
    if max_new_tokens is None:
        value = getattr(model, "max_new_tokens", None)
        max_new_tokens = value if isinstance(value, int) else None
    return EvalTarget(model, kind, _identity(model), sampling, max_new_tokens)


def build_target(
    model: str | None = None,
    *,
    chat: bool = False,
    sample: bool = False,
    max_new_tokens: int = 256,
    loading: Mapping[str, Any] | None = None,
) -> EvalTarget:
    """The target of ``moss-agent eval``: a local MOSS checkpoint, greedy unless ``sample``.

    Args:
        model: Checkpoint folder or hub id; ``$MOSS_AGENT_MODEL`` or the embedded model by default.
        chat: Evaluate through :class:`~moss_agent.models.chat.ChatMoss` instead of ``MossAgent``.
        sample: Sample with MOSS's defaults instead of greedy decoding.
        max_new_tokens: Most tokens per generation.
        loading: :class:`~moss_agent.models.llm.MossLLM` loading fields (``dtype``, ``device``,
            ``device_map``, ``load_in_8bit``, ``load_in_4bit``); the ones that differ from the
            defaults are recorded in the run's config. ``constrain_calls=False`` turns off
            constrained Commands decoding (on by default, and then recorded).
    """
    from moss_agent.models.embedded import resolve_model
    from moss_agent.models.llm import MossLLM

    path = resolve_model(model)
    llm = MossLLM(model=path, do_sample=sample, max_new_tokens=max_new_tokens, **dict(loading or {}))
    if not chat:
        return as_target(llm, max_new_tokens=max_new_tokens)
    from moss_agent.models.chat import ChatMoss

    chat_model = ChatMoss(model_name=path, llm=llm, do_sample=sample, max_new_tokens=max_new_tokens)
    return as_target(chat_model, max_new_tokens=max_new_tokens)


# --- tools per case ------------------------------------------------------------------------


class _NoSearch:
    """Search when a case has neither a corpus nor recorded results."""

    def search(self, query: str, max_results: int) -> list[str]:
        from moss_agent.tools.search_backends import SearchUnavailable

        raise SearchUnavailable("this eval case has no search corpus or recorded results")


def _search_backend(case: EvalCase, corpora: dict[Path, Any]) -> Any:
    from moss_agent.tools.search_backends import LocalCorpusBackend, RecordedBackend

    if case.corpus is not None:
        if case.corpus not in corpora:
            corpora[case.corpus] = LocalCorpusBackend(case.corpus)
        return corpora[case.corpus]
    if case.search_results is not None:
        return RecordedBackend(case.search_results)
    return _NoSearch()


def _image_stub() -> Any:
    from langchain_core.tools import StructuredTool

    from moss_agent.protocol import IMAGE_GENERATED
    from moss_agent.tools.text2image import Text2ImageInput

    def generate(description: str) -> str:
        return IMAGE_GENERATED

    return StructuredTool.from_function(
        func=generate,
        name="Text2Image",
        description="Generate an image from a text description (not executed in evals).",
        args_schema=Text2ImageInput,
    )


def _custom_stub(name: str, description: str, parameters: dict[str, Any], result: str) -> Any:
    from langchain_core.tools import StructuredTool

    def run(**kwargs: Any) -> str:
        return result

    return StructuredTool.from_function(
        func=run, name=name, description=description or name, args_schema=parameters
    )


def registry_for_case(
    case: EvalCase, *, execute_images: bool = False, corpora: dict[Path, Any] | None = None
) -> Any:
    """The tools of one case: real Calculate and Solve, deterministic Search, stubbed images.

    Args:
        case: The case.
        execute_images: Run the real Text2Image tool instead of the stub.
        corpora: Cache of corpus backends by path (a corpus is indexed once per run).

    Returns:
        A :class:`~moss_agent.tools.registry.ToolRegistry`.
    """
    from moss_agent.tools.registry import default_registry

    registry = default_registry(search_backend=_search_backend(case, corpora if corpora is not None else {}))
    if not execute_images:
        registry.register(_image_stub(), name="Text2Image", layout=ResultLayout.BLOCK)
    for spec in case.tools:
        registry.register(_custom_stub(spec.name, spec.description, spec.parameters, spec.result))
    return registry
