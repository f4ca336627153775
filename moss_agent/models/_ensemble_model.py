"""The torch side of :mod:`moss_agent.models.ensemble`: the model that runs the members as one."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from moss_agent.errors import UsageError
from moss_agent.models.ensemble import COMBINE_RULES


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


class EnsembleModel(torch.nn.Module):
    """Causal LMs with one vocabulary, run as one model.

    ``forward`` returns the members' combined next-token distribution (:data:`COMBINE_RULES`) as
    ``logits``: a log-softmax, so sampling, temperature and greedy choice work on it unchanged.
    """

    def __init__(self, members: Sequence[Any], combine: str = COMBINE_RULES[0]) -> None:
        super().__init__()
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
