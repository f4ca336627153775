"""The embedded model, moss-tiny-plugin, and how a model name is resolved.

moss-tiny-plugin is a small CodeGen-architecture model trained by this project's own
pipeline (``moss_agent.train``) on synthetic plugin dialogues. It ships inside the
package so everything runs offline on a laptop CPU. It is a demo of the MOSS plugin
protocol, not a general assistant.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from moss_agent.errors import UsageError

__all__ = ["EMBEDDED_MODEL_NAME", "embedded_corpus_path", "embedded_model_path", "resolve_model"]

EMBEDDED_MODEL_NAME = "moss-tiny-plugin"
MODEL_ENV_VAR = "MOSS_AGENT_MODEL"


def embedded_model_path() -> Path | None:
    """The folder of the embedded model, or ``None`` when this install has none."""
    folder = Path(str(resources.files("moss_agent") / "assets" / EMBEDDED_MODEL_NAME))
    is_checkpoint = (folder / "config.json").is_file() or (folder / "ensemble.json").is_file()
    return folder if is_checkpoint else None


def embedded_corpus_path() -> Path | None:
    """The local search corpus the embedded model was trained to search, if shipped."""
    folder = embedded_model_path()
    corpus = folder / "corpus.jsonl" if folder else None
    return corpus if corpus is not None and corpus.is_file() else None


def resolve_model(model: str | None) -> str:
    """The model to load: the given one, else ``$MOSS_AGENT_MODEL``, else the embedded one.

    ``"moss-tiny-plugin"`` names the embedded model explicitly.

    Raises:
        UsageError: No model was given and this install has no embedded model.
    """
    chosen = model or os.environ.get(MODEL_ENV_VAR)
    if chosen and chosen != EMBEDDED_MODEL_NAME:
        return chosen
    embedded = embedded_model_path()
    if embedded is None:
        raise UsageError(
            f"no model given and the embedded {EMBEDDED_MODEL_NAME} is not installed; "
            "pass --model PATH_OR_ID "
            f"(e.g. a local copy of fnlp/moss-moon-003-sft-plugin) or set {MODEL_ENV_VAR}"
        )
    return str(embedded)
