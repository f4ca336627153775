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
    import torch

ENSEMBLE_FILE = "ensemble.json"


#: How the members' next-token distributions are combined: the mean of their log-probabilities
#: (their product, renormalised: a token wins where the members agree; the default), or of their
#: probabilities (one confident member can carry a token the others rule out). With the embedded
#: model's two members the first was right end to end on 76.9 % of the held-out cases, the second
#: on 76.0 %, and only the first kept copying a made-up tool's name into the Inner Thoughts.
COMBINE_RULES = ("log-probabilities", "probabilities")


def ensemble_members(folder: str | Path) -> list[Path] | None:
    """The member folders of the ensemble checkpoint ``folder``; ``None`` if it is not one.

    Raises:
        UsageError: ``ensemble.json`` is not a list of member folders inside ``folder``.
    """
    manifest = _read_manifest(folder)
    return None if manifest is None else manifest[0]


def ensemble_combine(folder: str | Path) -> str:
    """How the ensemble checkpoint ``folder`` combines its members (:data:`COMBINE_RULES`)."""
    manifest = _read_manifest(folder)
    return COMBINE_RULES[0] if manifest is None else manifest[1]


def _read_manifest(folder: str | Path) -> tuple[list[Path], str] | None:
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
    return folders, str(combine)


class EnsembleOutput(NamedTuple):
    """What :meth:`EnsembleModel.forward` returns: the combined log-probabilities as ``logits``."""

    logits: torch.Tensor


class EnsembleCache:
    """One KV cache per member, cropped and selected together."""

    def __init__(self, caches: Sequence[Any]) -> None:
        self.caches = list(caches)

    def crop(self, max_length: int) -> None:
        """Drop cached positions as :meth:`transformers.DynamicCache.crop` does, in every member."""
        for cache in self.caches:
            cache.crop(max_length)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only the rows ``indices`` in every member's cache."""
        for cache in self.caches:
            cache.batch_select_indices(indices)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """The number of cached positions."""
        return int(self.caches[0].get_seq_length(layer_idx))


def _module_base() -> type:
    import torch

    return torch.nn.Module


class EnsembleModel(_module_base()):  # type: ignore[misc]
    """Causal LMs with one vocabulary, run as one model.

    ``forward`` returns the members' combined next-token distribution (:data:`COMBINE_RULES`) as
    ``logits``: a log-softmax, so sampling, temperature and greedy choice work on it unchanged.
    """

    def __init__(self, members: Sequence[Any], combine: str = COMBINE_RULES[0]) -> None:
        super().__init__()
        import inspect

        import torch

        from moss_agent.models.engine import cache_keyword

        if not members:
            raise UsageError("An ensemble needs at least one member.")
        if combine not in COMBINE_RULES:
            raise UsageError(f"combine must be one of {', '.join(COMBINE_RULES)}, not {combine!r}.")
        self.combine = combine
        sizes = {int(member.get_output_embeddings().weight.shape[0]) for member in members}
        if len(sizes) != 1:
            raise UsageError(
                f"Ensemble members must share one vocabulary; their output sizes are {sorted(sizes)}."
            )
        self.members = torch.nn.ModuleList(members)
        self._models: list[Any] = list(members)
        self.config = members[0].config
        self.generation_config = getattr(members[0], "generation_config", None)
        self._cache_keywords = [cache_keyword(member) for member in members]
        self._keeps_logits = [
            "logits_to_keep" in inspect.signature(member.forward).parameters for member in members
        ]

    def get_input_embeddings(self) -> Any:
        """The first member's input embeddings (where inputs go)."""
        return self._models[0].get_input_embeddings()

    def new_cache(self) -> EnsembleCache:
        """An empty cache for :meth:`forward`."""
        from transformers import DynamicCache

        caches = []
        for member in self._models:
            try:
                caches.append(DynamicCache(config=member.config))
            except TypeError:  # transformers < 4.56
                caches.append(DynamicCache())
        return EnsembleCache(caches)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: EnsembleCache | None = None,
        use_cache: bool = True,
        logits_to_keep: int = 0,
    ) -> EnsembleOutput:
        """Every member on the same input; their combined next-token log-probabilities."""
        import math

        import torch

        cache = past_key_values if past_key_values is not None else self.new_cache()
        total: torch.Tensor | None = None
        members = zip(self._models, cache.caches, self._cache_keywords, self._keeps_logits, strict=True)
        for member, member_cache, keyword, keeps_logits in members:
            kwargs: dict[str, Any] = {keyword: member_cache}
            if keeps_logits:
                kwargs["logits_to_keep"] = logits_to_keep
            output = member(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=use_cache,
                **kwargs,
            )
            log_probs = torch.log_softmax(output.logits.float(), dim=-1)
            if total is None:
                total = log_probs
            elif self.combine == "probabilities":
                total = torch.logaddexp(total, log_probs)
            else:
                total = total + log_probs
        assert total is not None
        if self.combine == "probabilities":
            return EnsembleOutput(logits=total - math.log(len(self.members)))
        return EnsembleOutput(logits=torch.log_softmax(total / len(self.members), dim=-1))


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
        dtype: ``"float16"`` or ``"bfloat16"`` to store the weights at that precision (they are
            loaded as float32 on the CPU, as any checkpoint is); ``None`` keeps them as they are.
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
    if dtype not in (None, "float16", "bfloat16"):
        raise UsageError(f"dtype must be float16 or bfloat16 (or left out), not {dtype!r}.")
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
