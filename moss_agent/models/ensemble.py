"""Several causal LMs that share a tokenizer, run as one model.

Each next-token distribution is the members' average, of their log-probabilities by default
(``ensemble.json`` may say ``"combine": "probabilities"``). A checkpoint
folder that holds ``ensemble.json`` (``{"members": ["member-0", "member-1"]}``) and a
tokenizer is an ensemble: :func:`~moss_agent.models.loading.load_model` loads each member folder
with the same options and returns an :class:`EnsembleModel`, which
:class:`~moss_agent.models.engine.GenerationEngine` runs as any model (KV-cache reuse, batching,
constrained Commands). Members trained from different random starts on the same data disagree on
different cases, and their average is right more often than either (the embedded model's card and
the README have the numbers).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from moss_agent.errors import UsageError

if TYPE_CHECKING:
    from moss_agent.models._ensemble_model import EnsembleCache, EnsembleModel, EnsembleOutput

__all__ = [
    "COMBINE_RULES",
    "ENSEMBLE_FILE",
    "STORED_DTYPES",
    "EnsembleCache",
    "EnsembleModel",
    "EnsembleOutput",
    "EnsembleManifest",
    "ensemble_manifest",
    "ensemble_members",
    "write_ensemble",
]

ENSEMBLE_FILE = "ensemble.json"

#: The precisions :func:`write_ensemble` can store members' weights in.
STORED_DTYPES = ("float16", "bfloat16", "float32")


#: How the members' next-token distributions are combined: the mean of their log-probabilities
#: (their product, renormalised: a token wins where the members agree; the default), or of their
#: probabilities (one confident member can carry a token the others rule out). With the embedded
#: model's two members the first was right end to end on 76.9 % of the held-out cases, the second
#: on 76.0 %, and only the first kept copying a made-up tool's name into the Inner Thoughts.
COMBINE_RULES = ("log-probabilities", "probabilities")


class EnsembleManifest(NamedTuple):
    """What an ensemble checkpoint's ``ensemble.json`` says."""

    members: list[Path]
    """The member checkpoint folders."""
    combine: str
    """How their distributions are combined (:data:`COMBINE_RULES`)."""


def ensemble_members(folder: str | Path) -> list[Path] | None:
    """The member folders of the ensemble checkpoint ``folder``; ``None`` if it is not one.

    Raises:
        UsageError: ``ensemble.json`` is not a list of member folders inside ``folder``.
    """
    manifest = ensemble_manifest(folder)
    return None if manifest is None else manifest.members


def ensemble_manifest(folder: str | Path) -> EnsembleManifest | None:
    """The checked ``ensemble.json`` of ``folder``; ``None`` if it is no ensemble checkpoint.

    Raises:
        UsageError: The file is no JSON object with member folders inside ``folder``, or names an
            unknown combine rule.
    """
    path = Path(folder)
    manifest = path / ENSEMBLE_FILE
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"{manifest} is not readable JSON: {error}") from error
    combine = data.get("combine", COMBINE_RULES[0]) if isinstance(data, dict) else COMBINE_RULES[0]
    if combine not in COMBINE_RULES:
        raise UsageError(f"{manifest}: combine must be one of {', '.join(COMBINE_RULES)}, not {combine!r}.")
    members = data.get("members") if isinstance(data, dict) else None
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise UsageError(f'{manifest} must hold {{"members": ["<folder>", ...]}} with at least one folder.')
    folders = []
    for member in members:
        relative = Path(member)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise UsageError(f"{manifest}: member {member!r} must be a folder name inside {path}.")
        folder_path = path / relative
        if not (folder_path / "config.json").is_file():
            raise UsageError(f"{manifest}: member {member!r} has no config.json in {folder_path}.")
        folders.append(folder_path)
    return EnsembleManifest(folders, str(combine))


def __getattr__(name: str) -> Any:
    # The model classes need torch; the manifest functions above must not import it.
    if name in ("EnsembleModel", "EnsembleCache", "EnsembleOutput"):
        from moss_agent.models import _ensemble_model

        return getattr(_ensemble_model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_ensemble(
    folder: str | Path,
    members: Sequence[str | Path],
    *,
    dtype: str | None = None,
    combine: str = COMBINE_RULES[0],
) -> Path:
    """Make ``folder`` an ensemble checkpoint of the checkpoint folders ``members``.

    Each member is copied in as ``member-<k>`` (its config, weights and generation config); the
    tokenizer comes from the first member, and every member must have the same one.

    Args:
        folder: The ensemble's folder (created; files of the same names are replaced).
        members: Checkpoint folders of models that share a tokenizer.
        dtype: ``"float16"``, ``"bfloat16"`` or ``"float32"`` to store the weights at that
            precision (they are loaded as float32 on the CPU, as any checkpoint is); ``None``
            keeps them as they are.
        combine: How the members' distributions are combined (:data:`COMBINE_RULES`).

    Raises:
        UsageError: No members, a folder that is not a checkpoint, members whose tokenizers differ,
            or an unknown dtype.
    """
    import shutil

    if not members:
        raise UsageError("An ensemble needs at least one member.")
    if combine not in COMBINE_RULES:
        raise UsageError(f"combine must be one of {', '.join(COMBINE_RULES)}, not {combine!r}.")
    if dtype not in (None, *STORED_DTYPES):
        raise UsageError(f"dtype must be one of {', '.join(STORED_DTYPES)} (or left out), not {dtype!r}.")
    sources = [Path(member) for member in members]
    for source in sources:
        if not (source / "config.json").is_file() or not (source / "model.safetensors").is_file():
            raise UsageError(f"{source} is not a checkpoint folder (config.json and model.safetensors).")
        if (source / "tokenizer.json").read_bytes() != (sources[0] / "tokenizer.json").read_bytes():
            raise UsageError(f"{source} has another tokenizer than {sources[0]}; an ensemble needs one.")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for item in sources[0].iterdir():
        if item.name.startswith(("tokenizer", "special_tokens")):
            # copyfile, not copy2: safetensors writes owner-only files a shared install could not read
            shutil.copyfile(item, out / item.name)
    names = []
    for index, source in enumerate(sources):
        name = f"member-{index}"
        target = out / name
        target.mkdir(exist_ok=True)
        if (source / "generation_config.json").is_file():
            shutil.copyfile(source / "generation_config.json", target / "generation_config.json")
        config = json.loads((source / "config.json").read_text(encoding="utf-8"))
        if dtype is not None:  # the dtype the weights are stored in, as transformers writes it
            config["dtype"] = dtype
            config.pop("torch_dtype", None)
        text = json.dumps(config, indent=2, sort_keys=True) + "\n"
        (target / "config.json").write_text(text, encoding="utf-8")
        _copy_weights(source / "model.safetensors", target / "model.safetensors", dtype)
        names.append(name)
    manifest = {"members": names, "combine": combine}
    (out / ENSEMBLE_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out


def _copy_weights(source: Path, target: Path, dtype: str | None) -> None:
    import shutil

    if dtype is None:
        shutil.copyfile(source, target)
        return
    import torch
    from safetensors.torch import load_file, save_file

    wanted = getattr(torch, dtype)
    tensors = load_file(str(source))
    save_file(
        {key: value.to(wanted) if value.is_floating_point() else value for key, value in tensors.items()},
        str(target),
        metadata={"format": "pt"},
    )
