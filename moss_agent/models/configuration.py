"""The ``moss`` model type, mapped onto transformers' CodeGen implementation.

MOSS (moss-moon-003) is a renamed copy of CodeGen: same parameter names, same rotary
attention with the 4-way interleaved ``qkv_proj``. Its checkpoints ship their own
modeling code (``auto_map``); this module lets transformers load them with its own,
audited CodeGen classes instead, so no code from a checkpoint is executed.

Importing this module imports transformers; :func:`register_moss` is called by the
loader the first time it is used, not at ``import moss_agent``.
"""

from __future__ import annotations

import threading

from transformers import CodeGenConfig
from transformers.models.codegen.modeling_codegen import CodeGenForCausalLM

__all__ = ["MOSS_MODEL_TYPE", "MossConfig", "MossForCausalLM", "register_moss"]

#: The ``model_type`` in a MOSS checkpoint's config.json.
MOSS_MODEL_TYPE = "moss"


class MossConfig(CodeGenConfig):
    """Configuration of a MOSS checkpoint (``model_type: moss``); CodeGen's fields.

    The fields that matter are CodeGen's: ``vocab_size`` (107008 for MOSS),
    ``n_positions`` (2048), ``n_embd`` (6144), ``n_layer`` (34), ``n_head`` (24),
    ``rotary_dim`` (64), ``n_inner``, ``activation_function``, ``layer_norm_epsilon``,
    ``bos_token_id`` and ``eos_token_id`` (106068, ``<eom>``). Unknown keys of the
    checkpoint's config.json (``auto_map``, ``wbits``, ...) are kept as attributes.
    """

    model_type = MOSS_MODEL_TYPE


class MossForCausalLM(CodeGenForCausalLM):
    """transformers' ``CodeGenForCausalLM`` under MOSS's class name and config type.

    The parameter names are CodeGen's (``transformer.wte``, ``transformer.h.N.attn.qkv_proj``,
    ..., ``lm_head`` with a bias), which are exactly MOSS's.
    """

    config_class = MossConfig
    # The decoder block is never split across devices.
    _no_split_modules = ["CodeGenBlock"]
    # MOSS's own modeling code stored its attention mask buffers in the weights.
    _keys_to_ignore_on_load_unexpected = [r"attn\.causal_mask", r"attn\.masked_bias"]


_registered = False
_register_lock = threading.Lock()


def register_moss() -> None:
    """Register the ``moss`` type with transformers' Auto classes (idempotent).

    After this, ``AutoConfig`` and ``AutoModelForCausalLM`` resolve ``model_type: moss``
    to :class:`MossConfig` and :class:`MossForCausalLM`.
    """
    global _registered
    if _registered:
        return
    with _register_lock:
        if _registered:
            return
        from transformers import AutoConfig, AutoModelForCausalLM

        AutoConfig.register(MOSS_MODEL_TYPE, MossConfig, exist_ok=True)
        AutoModelForCausalLM.register(MossConfig, MossForCausalLM, exist_ok=True)
        _registered = True
