"""The model card of a model trained by the recipe, written from measured numbers only."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moss_agent.train.recipe import ModelScores

__all__ = [
    "SCORES_HEADING",
    "render_model_card",
    "replace_scores",
    "reproduce_command",
    "scores_section",
    "split_lines",
]


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f} %"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def reproduce_command(recipe: dict[str, Any]) -> str:
    """The ``moss-agent train recipe`` command line that retrains a model of this recipe config."""
    from moss_agent.train.recipe import RecipeConfig
    from moss_agent.train.sft import loss_weight_items

    default = RecipeConfig(out="")
    parts = ["moss-agent train recipe --out runs/tiny"]
    numeric = (
        ("seed", "--seed"),
        ("max_steps", "--steps"),
        ("batch_size", "--batch-size"),
        ("n_train", "--n-train"),
        ("learning_rate", "--learning-rate"),
        ("n_layer", "--layers"),
        ("n_embd", "--width"),
        ("number_slots", "--number-slots"),
        ("name_min_count", "--name-min-count"),
        ("members", "--members"),
        ("ensemble_dtype", "--ensemble-dtype"),
        ("mixed_precision", "--mixed-precision"),
        ("copy_bias", "--copy-bias"),
    )
    for key, flag in numeric:
        if key in recipe and recipe[key] != getattr(default, key):
            parts.append(f"{flag} {recipe[key]}")
    # every on/off switch of the recipe is the CLI flag of the same name (in field order)
    for field in dataclasses.fields(RecipeConfig):
        key, flag = field.name, field.name.replace("_", "-")
        if (
            isinstance(getattr(default, key), bool)
            and key in recipe
            and bool(recipe[key]) != getattr(default, key)
        ):
            parts.append(f"--{flag}" if recipe[key] else f"--no-{flag}")
    if recipe.get("bigram_heads", default.bigram_heads) != default.bigram_heads:
        parts.append(f"--bigram-heads {recipe['bigram_heads']}")
    parts += [f"--loss-weight {item}" for item in loss_weight_items(recipe.get("loss_weights") or {})]
    return " ".join(parts)


def _vocabulary_size(run_dir: Path, recipe: dict[str, Any]) -> int:
    """The trained tokenizer's vocabulary (the recipe's ``vocab_size`` is only its upper bound)."""
    path = run_dir / "tokenizer" / "tokenizer.json"
    if not path.exists():
        return int(recipe["vocab_size"])
    data = json.loads(path.read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    return len(vocab) + sum(1 for token in data.get("added_tokens", []) if token["content"] not in vocab)


def _slot_words(recipe: dict[str, Any]) -> str:
    """The tokenizer line's words on the recipe's number slots ('' without them)."""
    if not recipe.get("number_slots"):
        return ""
    words = (
        f", {recipe['number_slots']} number slots (`<num1>`…: each multi-digit number of the user and the"
        " tools is read and written as one token; `moss_agent.models.number_slots`)"
    )
    if recipe.get("number_rounding"):
        words += " and the rounding marker `<round>` (a reply's rounded copy of such a number)"
    if recipe.get("digit_slots"):
        words += "; single digits get slots too"
    return words


def _loss_weight_words(weights: dict[str, float] | None) -> str:
    """How the recipe weighted the loss of each turn section ('' when evenly)."""
    from moss_agent.train.sft import SECTION_FLAG_NAMES

    if not weights:
        return ""
    named = ", ".join(f"{SECTION_FLAG_NAMES[section]} ×{weight:g}" for section, weight in weights.items())
    return f"loss weighted by section ({named}, the rest ×1), "


def split_lines(info: dict[str, Any]) -> list[str]:
    """The generator's statistics of each split, as readable lines."""
    lines = []
    for name, split in (info.get("splits") or {}).items():
        parts = [f"{split.get('conversations', '?')} conversations, {split.get('turns', '?')} turns"]
        for key, label in (("by_intent", "intents"), ("by_lang", "languages"), ("calls_by_tool", "calls")):
            if isinstance(split.get(key), dict):
                parts.append(f"{label}: " + ", ".join(f"{k} {v}" for k, v in split[key].items()))
        lines.append(f"- Split `{name}`: " + "; ".join(parts) + ".")
    return lines


def _member_folders(run_dir: Path, members: int) -> list[Path]:
    """The recipe folders of each member's ``init`` and ``sft`` (member 0: the run's own)."""
    return [run_dir] + [run_dir / "members" / str(index) for index in range(1, members)]


def _precision_words(run_dir: Path) -> str:
    """How SFT computed (from ``sft/sft_config.json``): '' for float32 or an unknown run."""
    try:
        precision = json.loads((run_dir / "sft" / "sft_config.json").read_text()).get("mixed_precision")
    except (OSError, ValueError):
        return ""
    if precision in (None, "no"):
        return ""
    return (
        f", {precision} mixed precision (matrix products in {precision}; weights, optimizer, attention"
        " on the CPU and the loss in float32)"
    )


def _sft_minutes(losses: list[dict[str, Any]]) -> float | None:
    """The SFT wall time of one training log; a resumed run restarts its clock, so segments add up."""
    if not losses:
        return None
    seconds, last = 0.0, 0.0
    for record in losses:
        if record["elapsed_s"] < last:
            seconds += last
        last = record["elapsed_s"]
    return (seconds + last) / 60


def _recipe_minutes(run_dir: Path, members: int = 1) -> str | None:
    """The whole recipe's wall time, where ``recipe_log.json`` timed every stage."""
    from moss_agent.train.recipe import RecipeLog

    stages = RecipeLog(run_dir / "recipe_log.json").stages
    names = ("data", "tokenizer", "init", "sft") + tuple(
        f"{stage}-{index}" for index in range(1, members) for stage in ("init", "sft")
    )
    if not all("minutes" in stages.get(name, {}) for name in names):
        return None
    total = sum(float(stages[name]["minutes"]) for name in names)
    parts = ", ".join(f"{name} {float(stages[name]['minutes']):.1f}" for name in names)
    return f"- Wall time of the whole recipe: {total:.1f} min ({parts})."


#: What the card says of each data option of the recipe that is on, in this order.
_DATA_OPTION_LINES: tuple[tuple[str, str], ...] = (
    (
        "switch_thoughts",
        "- The Inner Thoughts of every built-in tool request start by quoting that tool's switch line"
        " (`Equation solver: enabled; …` or `…: disabled; …`), so whether to call is copied from the"
        " meta instruction rather than guessed.",
    ),
    (
        "restate_solutions",
        "- Replies to chickens-and-rabbits problems first restate the solver's lines (`x = 23，y = 12`),"
        " then name the animals.",
    ),
    (
        "pair_solutions",
        "- Replies to chickens-and-rabbits problems name each animal right after the solver line it"
        " comes from (`x = 23，即鸡有23只；y = 12，即兔有12只`).",
    ),
    (
        "shared_phrasings",
        "- Some training additions and multiplications are phrased as requests for the custom"
        ' sum/product tools are ("What is 12 multiplied by 34?"), so those words call Calculate when'
        " no such tool is declared.",
    ),
    (
        "more_phrasings",
        "- Extra phrasing families (about 8 more per request kind), 18 % of them held out as well.",
    ),
    (
        "wide_phrasings",
        "- Wide phrasing families (12 more per tool request kind, 6 per chat kind, 14 more ways per language to"
        " ask for any declared tool), 18 % of them held out as well.",
    ),
    (
        "wrap_requests",
        "- About half of the training requests carry a greeting, filler or thanks around them.",
    ),
    (
        "mix_clauses",
        "- Most training requests are phrased by splicing the opening clauses of their family with the"
        " closing clauses of another training family of the same kind.",
    ),
    (
        "quote_counts",
        "- The Inner Thoughts of chickens-and-rabbits problems first quote the two counts in a fixed form"
        " (`已知35个头，94只脚`), so the Solve call copies them from a fixed place.",
    ),
    (
        "quote_api",
        "- The Inner Thoughts of a call of a declared custom tool first quote that tool's whole switch"
        " line (`Word counter: enabled. API: count_words(text)`), so the call copies the tool's name.",
    ),
    (
        "novel_names",
        "- Half of the declared custom tools in training are renamed to made-up words (`zorvak_plim`),"
        " and half of their parameters too, so tool names are copied from the switch line, not recalled.",
    ),
    (
        "api_thoughts",
        "- The Inner Thoughts of a call of a declared custom tool name it by its API text after a fixed"
        " `API: ` (`…matches API: count_words(text), so I should call it.`), as its switch line does.",
    ),
    (
        "switch_languages",
        "- About a third of the later turns of multi-turn training conversations are asked in the other"
        " language (a Chinese question, then an English one).",
    ),
    (
        "context_turns",
        "- About 30 % of the one-turn training conversations get an earlier turn of another kind put"
        " before them (half in the other language), so a call reads its own request, not the earlier call.",
    ),
    (
        "phrase_queries",
        "- English Search queries follow the words of the Inner Thoughts (`population of Cormouth`), so the"
        " name is copied after the same word it follows there.",
    ),
    (
        "wide_values",
        "- Half of the training custom-tool city arguments, and of the words whose letters a tool counts or"
        " reverses, are made-up names and words, so values are copied from the request, not recalled.",
    ),
    (
        "custom_decoys",
        "- About 15 % of the built-in training conversations also declare one or two custom tools that"
        " cannot serve the request and are not called, so a declared tool is called only when asked for.",
    ),
)


def render_model_card(
    run_dir: Path,
    scores: ModelScores,
    *,
    parameters: int,
    weights_mb: float,
    weights_dtype: str = "float32",
) -> str:
    """Write the card of the model trained in ``run_dir`` (a recipe working folder)."""
    recipe = json.loads((run_dir / "recipe_config.json").read_text())
    info = json.loads((run_dir / "data" / "dataset_info.json").read_text())
    from moss_agent.models.ensemble import ensemble_members

    # the members of the model the run made (its recipe may ask for more than were trained)
    members = len(ensemble_members(run_dir / "ensemble") or [run_dir])
    logs = [_read_jsonl(folder / "sft" / "train_log.jsonl") for folder in _member_folders(run_dir, members)]
    losses_of = [[r for r in log if "loss" in r] for log in logs]
    evals_of = [[r for r in log if "eval_loss" in r] for log in logs]
    losses = losses_of[0]
    minute_list = [_sft_minutes(member_losses) for member_losses in losses_of]
    minutes = None if None in minute_list else sum(m for m in minute_list if m is not None)
    lines = [
        "# moss-tiny-plugin",
        "",
        "A small model that speaks the MOSS plugin protocol (moss-moon-003-sft-plugin's `<|Inner Thoughts|>`,",
        "`<|Commands|>`, `<|Results|>` format), trained from scratch by moss-agent's own pipeline",
        "(`moss-agent train recipe`) so that the agent, the evals and the tests run offline on a laptop CPU.",
        "",
        "**What it is:** a demo of the plugin protocol. It decides whether to call Search, Calculate, Solve,",
        "Text2Image or a declared custom tool, copies the arguments from the question, and writes a short reply",
        "from the Results. **What it is not:** a general assistant. It knows nothing beyond its synthetic",
        "training dialogues; its Search answers come from the local corpus shipped beside it (`corpus.jsonl`).",
        "",
        "## Model",
        "",
        f"- Architecture: CodeGen (registered as `model_type: moss`), {recipe['n_layer']} layers, "
        f"hidden {recipe['n_embd']}, {recipe['n_head']} heads, rotary dim {recipe['rotary_dim']}, "
        f"context {recipe['n_positions']} tokens."
        + (
            f" An ensemble of {members} such models (`ensemble.json`, `moss_agent.models.ensemble`), trained"
            f" on the same data and tokenizer from seeds {recipe['seed']}–{recipe['seed'] + members - 1}"
            " (initialisation and data order); each next-token distribution is the renormalised mean of"
            " their log-probabilities."
            if members > 1
            else ""
        ),
        f"- Parameters: {parameters / 1e6:.2f} M; weights {weights_mb:.1f} MB ({weights_dtype} "
        "safetensors, the weights the scores below were measured on).",
        f"- Tokenizer: byte-level BPE, {_vocabulary_size(run_dir, recipe)} tokens, digits split one per token"
        + (
            f", a capitalized word one token only if seen {recipe['name_min_count']} times"
            if recipe.get("name_min_count")
            else ""
        )
        + (", one token per Chinese character" if recipe.get("cjk_chars") else "")
        + (", a space before a capital letter a token of its own" if recipe.get("name_spaces") else "")
        + ", MOSS's special tokens (`<eoh>`, `<eot>`, `<eoc>`, `<eor>`, `<eom>`, tags)"
        + _slot_words(recipe)
        + ".",
        "",
        "## Data",
        "",
        f"- Synthetic bilingual (Chinese/English) plugin dialogues from `moss_agent.train.data`, seed {recipe['seed']}:",
        f"  {recipe['n_train']} training, {recipe['n_valid']} validation, {recipe['n_test']} held-out test",
        "  conversations. Results come from running the real tools (calculator, solver, BM25 search over the",
        "  generated corpus). Whole phrasing families are held out for the test split.",
        *(line for option, line in _DATA_OPTION_LINES if recipe.get(option)),
        "- Not trained on MOSS's own data nor on any evaluation suite.",
        *split_lines(info),
        "",
        "## Training",
        "",
        "- Initialisation: random, plus a hand-written induction circuit (a previous-token head in layer 0,"
        " two induction heads in layer 1"
        + (
            f", {recipe['bigram_heads']} two-token induction heads reading a second positional head"
            if recipe.get("bigram_heads")
            else ""
        )
        + ", `moss_agent.train.induction`) so that copying numbers and names does not wait for gradient"
        " descent to discover it; the positional heads and where the induction heads look stay fixed, the rest trains."
        if recipe.get("induction_circuit")
        else "- Initialisation: random.",
        "- SFT with MOSS's loss mask (no loss on the meta instruction or the Results content"
        + ("; none on the user's turns either" if recipe.get("mask_human") else "")
        + f"), {_loss_weight_words(recipe.get('loss_weights'))}"
        f"{losses[-1]['step'] if losses else '?'} steps of batch {recipe['batch_size']}, peak learning rate "
        f"{recipe['learning_rate']}, cosine decay{_precision_words(run_dir)}.",
        f"- Wall time of SFT: {minutes:.1f} min on a 2-core CPU (resumed runs added up"
        + (
            f"; {members} members: " + ", ".join(f"{m:.1f}" for m in minute_list if m is not None)
            if members > 1
            else ""
        )
        + ")."
        if minutes is not None
        else "- Wall time: not recorded.",
        _recipe_minutes(run_dir, members),
        *(
            f"- {'Member ' + str(index) + ': f' if members > 1 else 'F'}inal training loss"
            f" {member_losses[-1]['loss']:.4f}; validation loss {member_evals[-1]['eval_loss']:.4f}."
            for index, (member_losses, member_evals) in enumerate(zip(losses_of, evals_of, strict=True))
            if member_losses and member_evals
        ),
        "",
    ]
    lines += scores_section(scores, reproduce_command(recipe))
    return "\n".join(line for line in lines if line is not None)


#: The heading of a card's scores, up to the licence line.
SCORES_HEADING = "## Scores"
_LICENCE = "Licence: Apache-2.0 (weights and code). The MOSS meta instruction text is from the MOSS project."


def scores_section(scores: ModelScores, reproduce: str) -> list[str]:
    """The card's lines from its scores heading to its licence line."""
    lines = [SCORES_HEADING, ""]
    for title, summary in (
        ("Held-out test split (phrasing families never seen in training)", scores.heldout),
        (
            "Validation split (new conversations from the phrasing families of training:"
            " how well it learnt what it was taught)",
            scores.valid,
        ),
        ("evals/suites/plugin-basic.jsonl (hand-written, independent of the generator)", scores.suite),
        (
            "Held-out cases that declare custom tools, every tool renamed to made-up words"
            " (`moss_agent.train.heldout.novel_name_suite`: names the model cannot have memorised)",
            scores.novel_names,
        ),
        (
            "Held-out one-turn cases asked right after an earlier turn that called a built-in tool"
            " (`moss_agent.train.heldout.after_call_suite`: the conversation `ask` has)",
            scores.after_call,
        ),
    ):
        if not summary:
            continue
        lines += [
            f"### {title}",
            "",
            "| metric | value |",
            "| --- | --- |",
            f"| cases | {summary.get('n')} |",
            f"| tool choice (incl. no call) | {_pct(summary.get('trigger_accuracy'))} |",
            f"| arguments right when the tool is right | {_pct(summary.get('argument_accuracy'))} |",
            f"| final answer right | {_pct(summary.get('answer_accuracy'))} |",
            f"| end to end | {_pct(summary.get('end_to_end_accuracy'))} |",
            "",
        ]
        extra = summary.get("answer_accuracy_calc_solve")
        if extra is not None:
            lines.insert(-1, f"| final answer right (Calculate/Solve cases) | {_pct(extra)} |")
    decoding = "Greedy decoding"
    if scores.constrained_calls:
        decoding += (
            " with constrained Commands (`moss_agent.models.call_constraint`; `--free-calls` turns it off)"
        )
    if scores.copy_bias:
        decoding += (
            f"{' and' if scores.constrained_calls else ' with'} copy bias {scores.copy_bias:g} in Commands"
            " (`moss_agent.models.copy_bias`, the model's default in its generation_config.json;"
            " `--copy-bias 0` turns it off)"
        )
    lines += [
        f"{decoding}. Reproduce with `{reproduce}` then",
        "`moss-agent eval --suite evals/suites/plugin-basic.jsonl --out runs/basic`.",
        "",
        _LICENCE,
        "",
    ]
    return lines


def replace_scores(card: str, scores: ModelScores) -> str:
    """``card`` with its scores section (heading to licence line) rendered from ``scores``.

    The reproduce command the card gives is kept.
    """
    import re

    start = card.index(SCORES_HEADING)
    end = card.find(_LICENCE, start)
    end = len(card) if end < 0 else end + len(_LICENCE)
    found = re.search(r"Reproduce with `([^`]*)`", card[start:end])
    reproduce = found.group(1) if found else "moss-agent train recipe --out runs/tiny"
    section = "\n".join(scores_section(scores, reproduce))
    return card[:start] + section.rstrip("\n") + card[end:]
