"""Build tiny MOSS-format checkpoints: a byte-level BPE tokenizer and a small CodeGen.

The checkpoints have the layout of the real moss-moon-003-sft-plugin folder
(``config.json`` with ``model_type: moss`` and an ``auto_map`` to remote code, weights
under MOSS's parameter names, tokenizer files), at a size that builds in a second.
Tests drive the real loading and generation code with them; the training pipeline
starts from them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moss_agent.models.number_slots import SlotScheme
from moss_agent.protocol import END_OF_MESSAGE, END_OF_TEXT, SPECIAL_TOKENS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

__all__ = [
    "CIRCUIT_CONFIG_KEY",
    "MOSS_AUTO_MAP",
    "build_tiny_moss_checkpoint",
    "build_tiny_tokenizer",
    "tiny_moss_config",
]

#: config.json key naming the heads of a hand-written induction circuit (kept fixed by SFT).
CIRCUIT_CONFIG_KEY = "moss_agent_induction_circuit"

#: The ``auto_map`` of the real MOSS config.json: remote code that moss-agent never runs.
MOSS_AUTO_MAP: dict[str, str] = {
    "AutoConfig": "configuration_moss.MossConfig",
    "AutoModel": "modeling_moss.MossModel",
    "AutoModelForCausalLM": "modeling_moss.MossForCausalLM",
}


#: One CJK ideograph (unified, extension A, compatibility), for ``split_cjk``.
CJK_CHARACTER = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
#: A space before a capital letter (a name's space), for ``split_name_spaces``.
SPACE_BEFORE_CAPITAL = r" (?=\p{Lu})"


def build_tiny_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 512,
    *,
    min_frequency: int = 2,
    split_cjk: bool = False,
    split_name_spaces: bool = False,
    name_min_count: int = 0,
    number_slots: SlotScheme | int = 0,
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE tokenizer carrying MOSS's special tokens.

    Digits are split one per token, as in MOSS's data. With ``split_cjk`` every CJK character
    is its own pre-token, so no token spans two Chinese characters: byte-level BPE otherwise
    merges whole runs (``这是一个鸡兔同笼问题`` becomes one token), and a small model then
    cannot copy a name out of the question one piece at a time. With ``split_name_spaces`` a space
    before a capital letter is a token of its own, so a name is the same tokens after a space as
    after a quote or bracket: byte-level BPE otherwise reads ``of Cormouth`` as ``Ġof``,
    ``ĠCormouth`` and ``Search("Cormouth`` as ``("``, ``Cor``, ``mouth``, and a model copying the
    name into a call must map one onto the other, which it cannot learn for names it has not seen.
    Other spaces stay merged with their word (splitting them all costs a quarter more tokens;
    this, about 5 % of the tokens after the meta instruction). Every string of
    :data:`moss_agent.protocol.SPECIAL_TOKENS` is one special token; ``<eom>`` is the
    end-of-sequence token and ``<|endoftext|>`` is the bos and padding token.

    Args:
        texts: Training texts (a few hundred lines suffice).
        vocab_size: Size of the vocabulary, special tokens and the 256 bytes included.
        min_frequency: Minimum pair count for a BPE merge.
        split_cjk: No merges across CJK characters (Chinese becomes one token per character).
        split_name_spaces: No merges of a space before a capital letter (it is one token).
        name_min_count: A capitalized word (a name: ``Kesstead``, `` Quito``) becomes a token of its
            own only if it occurs this often in ``texts``; rarer ones are spelt with pieces shared
            by many names (``ĠKes``, ``stead``). Other words, symbols and Chinese characters still
            merge from ``min_frequency`` occurrences. With the default 0 names are like other words.
            A name seen a dozen times in training is a token whose embedding the model has barely
            learnt, and a small model does not write it, even to copy it.
        number_slots: Add the tokens of these number slots (``<num1>``…, a count or a
            :class:`~moss_agent.models.number_slots.SlotScheme`), special tokens of their own.

    Returns:
        A fast tokenizer; save it with ``save_pretrained``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    slot_tokens = SlotScheme.coerce(number_slots).tokens()

    tokenizer = Tokenizer(models.BPE())
    steps = [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    if split_cjk:
        steps.insert(0, pre_tokenizers.Split(Regex(CJK_CHARACTER), behavior="isolated"))
    if split_name_spaces:
        steps.insert(0, pre_tokenizers.Split(Regex(SPACE_BEFORE_CAPITAL), behavior="isolated"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(steps)
    tokenizer.decoder = decoders.ByteLevel()
    if name_min_count > min_frequency:
        # BPE has one threshold for every merge: raise it to name_min_count, and give every
        # pre-token that is not a name that many extra occurrences, so it merges as before.
        texts = list(texts)
        texts += [_ordinary_pieces(texts, tokenizer, min_frequency)] * name_min_count
        min_frequency = name_min_count
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[*SPECIAL_TOKENS, *slot_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    others = [token for token in SPECIAL_TOKENS if token not in (END_OF_TEXT, END_OF_MESSAGE)]
    others += slot_tokens
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_MESSAGE,
        pad_token=END_OF_TEXT,
        additional_special_tokens=others,
        clean_up_tokenization_spaces=False,
    )


def _ordinary_pieces(texts: Sequence[str], tokenizer: Any, min_count: int) -> str:
    """Every pre-token of ``texts`` seen ``min_count`` times that is not a capitalized word, one per line."""
    from collections import Counter

    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(piece for piece, _ in tokenizer.pre_tokenizer.pre_tokenize_str(text))
    lines = []
    for piece, count in counts.items():
        word = tokenizer.decoder.decode([piece])
        if count >= min_count and word.strip() and not word.lstrip(" ")[:1].isupper():
            lines.append(word)
    return "\n".join(lines)


def tiny_moss_config(
    *,
    vocab_size: int,
    bos_token_id: int,
    eos_token_id: int,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    rotary_dim: int = 8,
    n_positions: int = 512,
) -> dict[str, Any]:
    """The config.json of a tiny MOSS checkpoint, with every key of the real one.

    Args:
        vocab_size: Rows of the embedding (at least the tokenizer's length).
        bos_token_id: Id of ``<|endoftext|>``.
        eos_token_id: Id of ``<eom>``.
        n_layer: Decoder blocks.
        n_embd: Hidden size; divisible by 4 (CodeGen's 4-way ``qkv_proj``) and ``n_head``.
        n_head: Attention heads.
        rotary_dim: Dimensions of each head that get rotary embeddings.
        n_positions: Maximum sequence length.

    Returns:
        The config as a JSON-ready dict.
    """
    return {
        "_name_or_path": "tiny-moss",
        "activation_function": "gelu_new",
        "architectures": ["MossForCausalLM"],
        "attn_pdrop": 0.0,
        "auto_map": dict(MOSS_AUTO_MAP),
        "bos_token_id": bos_token_id,
        "embd_pdrop": 0.0,
        "eos_token_id": eos_token_id,
        "gradient_checkpointing": False,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "moss",
        "n_ctx": n_positions,
        "n_embd": n_embd,
        "n_head": n_head,
        "n_inner": None,
        "n_layer": n_layer,
        "n_positions": n_positions,
        "resid_pdrop": 0.0,
        "rotary_dim": rotary_dim,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "tie_word_embeddings": False,
        "tokenizer_class": "GPT2Tokenizer",
        "torch_dtype": "float32",
        "transformers_version": "4.25.1",
        "use_cache": True,
        "vocab_size": vocab_size,
    }


def build_tiny_moss_checkpoint(
    folder: str | Path,
    *,
    tokenizer: PreTrainedTokenizerBase,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    rotary_dim: int = 8,
    n_positions: int = 512,
    seed: int = 0,
    memorize: Sequence[str] = (),
    memorize_steps: int = 150,
    induction_circuit: bool = False,
    bigram_heads: int = 0,
    number_slots: SlotScheme | int = 0,
) -> Path:
    """Write a tiny MOSS-format checkpoint into ``folder``.

    The folder gets ``config.json`` (``model_type: moss``, ``MossForCausalLM``, MOSS's
    ``auto_map``), ``model.safetensors`` with MOSS's parameter names and the tokenizer
    files. The weights are a random init, deterministic given ``seed``; with
    ``memorize``, they are then overfit on those texts so that greedy decoding from a
    prefix of one of them continues it (useful to test stops on real MOSS strings).

    Args:
        folder: Where to write; created if missing.
        tokenizer: The tokenizer to save with it (see :func:`build_tiny_tokenizer`).
        n_layer: Decoder blocks.
        n_embd: Hidden size, divisible by 4 and by ``n_head``.
        n_head: Attention heads.
        rotary_dim: Rotary dimensions per head.
        n_positions: Maximum sequence length.
        seed: Seed of the initialization and of the memorization.
        memorize: Texts to overfit the model on.
        memorize_steps: Optimizer steps of the memorization.
        induction_circuit: Start from a working copy circuit
            (:func:`moss_agent.train.induction.install_induction_circuit`).
        bigram_heads: Two-token induction heads in that circuit.
        number_slots: Declare these number slots in config.json (a count or a
            :class:`~moss_agent.models.number_slots.SlotScheme`; the tokenizer must carry
            their tokens: ``build_tiny_tokenizer(..., number_slots=...)``).

    Returns:
        The folder.
    """
    import torch
    from safetensors.torch import save_file

    from moss_agent.models.configuration import MossConfig, MossForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = -(-len(tokenizer) // 8) * 8  # room to spare, as MOSS's 107008 rows
    config_dict = tiny_moss_config(
        vocab_size=vocab_size,
        bos_token_id=int(tokenizer.convert_tokens_to_ids(END_OF_TEXT)),  # type: ignore[arg-type]
        eos_token_id=int(tokenizer.convert_tokens_to_ids(END_OF_MESSAGE)),  # type: ignore[arg-type]
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        rotary_dim=rotary_dim,
        n_positions=n_positions,
    )
    scheme = SlotScheme.coerce(number_slots)
    scheme.token_ids(tokenizer)  # the tokenizer must carry them
    config_dict.update(scheme.config_entries())
    config = MossConfig(**{k: v for k, v in config_dict.items() if k not in ("model_type", "_name_or_path")})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MossForCausalLM(config)
        if induction_circuit:
            from moss_agent.train.induction import install_induction_circuit

            heads = install_induction_circuit(model, seed=seed, bigram_heads=bigram_heads)
            config_dict[CIRCUIT_CONFIG_KEY] = heads.to_config()
        if memorize:
            memorize = [scheme.encode(text) for text in memorize]  # as the engine will feed them
            _memorize(model, tokenizer, memorize, steps=memorize_steps)
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config_dict, indent=2, sort_keys=True) + "\n")
    tokenizer.save_pretrained(str(folder))
    _as_moss_tokenizer_config(folder / "tokenizer_config.json", n_positions=n_positions)
    return folder


def _as_moss_tokenizer_config(path: Path, *, n_positions: int) -> None:
    """Name the tokenizer as MOSS's folder does: its own class, through remote code."""
    tokenizer_config = json.loads(path.read_text(encoding="utf-8"))
    tokenizer_config.update(
        {
            "tokenizer_class": "MossTokenizer",
            "auto_map": {"AutoTokenizer": ["tokenization_moss.MossTokenizer", None]},
            "model_max_length": n_positions,
        }
    )
    path.write_text(json.dumps(tokenizer_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _memorize(model: Any, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], *, steps: int) -> None:
    """Overfit ``model`` on ``texts`` (full-batch AdamW, padding masked out of the loss)."""
    import torch

    ids = [tokenizer(text)["input_ids"] for text in texts]
    width = max(len(row) for row in ids)
    pad = tokenizer.pad_token_id or 0
    input_ids = torch.tensor([row + [pad] * (width - len(row)) for row in ids])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in ids])
    labels = input_ids.masked_fill(mask == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small only loses time to thread sync
    try:
        model.train()
        for _ in range(steps):
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        model.eval()
        torch.set_num_threads(threads)
