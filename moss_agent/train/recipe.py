"""The reproducible recipe of moss-tiny-plugin: data → tokenizer → model → SFT → install.

One command, fixed seed: ``moss-agent train recipe --out runs/tiny``. Every stage writes
into ``OUT`` and is skipped when its output already exists, so a killed run resumes.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from moss_agent.conversations import TURN_FIELDS
from moss_agent.errors import UsageError
from moss_agent.models.copy_bias import set_copy_bias
from moss_agent.models.ensemble import ENSEMBLE_FILE, STORED_DTYPES, ensemble_members, write_ensemble
from moss_agent.models.number_slots import SlotScheme
from moss_agent.train.options import DataOptions

__all__ = [
    "RecipeConfig",
    "conversation_texts",
    "evaluate_and_install",
    "install_model",
    "recipe_model",
    "run_recipe",
    "train_tokenizer",
]


_DATA = DataOptions()
#: The recipe's default copy bias (measured on the held-out split, see RecipeConfig.copy_bias).
COPY_BIAS = 4.0


@dataclass
class RecipeConfig:
    """The knobs of the recipe; the defaults are the shipped model's."""

    out: str
    """Working folder."""
    seed: int = 0
    """Seed of the data, the initialisation and the data order."""
    n_train: int = 34_000
    """Training conversations generated."""
    n_valid: int = 300
    """Validation conversations (loss at each checkpoint)."""
    n_test: int = 1_000
    """Held-out conversations (whole phrasing families never seen in training)."""
    vocab_size: int = 6_000
    """Tokenizer vocabulary, special tokens and 256 bytes included (an upper bound: pairs seen
    once are not merged)."""
    name_min_count: int = 100
    """Tokenizer: a capitalized word (a name) becomes a token of its own only if it occurs this often
    in the tokenizer's texts (other words and Chinese characters merge from 2 occurrences); 0: names
    are like other words. With 0, 490 of the corpus's 549 made-up English name words are tokens of
    their own, seen a dozen times in training, which the model does not write; with 100 it copies
    them (held-out English Search end to end 4 → 47 of 74)."""
    n_layer: int = 3
    """Decoder blocks (three of 224 beat four of 192 and six of 160 at the same compute)."""
    n_embd: int = 224
    """Hidden size."""
    n_head: int = 8
    """Attention heads."""
    rotary_dim: int = 16
    """Rotary dimensions per head (CodeGen/MOSS style partial rotary)."""
    n_positions: int = 1024
    """Context length."""
    induction_circuit: bool = True
    """Start from a hand-written copy circuit (see ``moss_agent.train.induction``)."""
    bigram_heads: int = 4
    """Two-token induction heads in that circuit (they settle ambiguous digit copies)."""
    batch_size: int = 16
    """Examples per step."""
    learning_rate: float = 1.5e-3
    """Peak learning rate."""
    max_steps: int = 3_200
    """Optimizer steps of SFT (fixed, so the recipe is reproducible); the model card gives the
    measured wall time."""
    max_minutes: float = 75.0
    """Safety limit on SFT wall time (saves and stops if a slow machine reaches it)."""
    mixed_precision: str = "auto"
    """SFT precision (``moss_agent.train.sft.resolve_mixed_precision``): ``auto`` trains in bf16
    (attention in float32) where the CPU computes bf16 natively, 1.5x faster per step here."""
    max_length: int = 768
    """Most tokens of one example."""
    mask_human: bool = False
    """No loss on the user's turns either (only MOSS's own text is learned)."""
    loss_weights: dict[str, float] = field(default_factory=dict)
    """Loss weight of each turn section (``Commands``, ``Human``…; 1 where not named)."""
    # Data options: one field per DataOptions field, with its default (its docstring says what each does).
    switch_thoughts: bool = _DATA.switch_thoughts
    restate_solutions: bool = _DATA.restate_solutions
    more_phrasings: bool = _DATA.more_phrasings
    wide_phrasings: bool = _DATA.wide_phrasings
    wrap_requests: bool = _DATA.wrap_requests
    mix_clauses: bool = _DATA.mix_clauses
    quote_counts: bool = _DATA.quote_counts
    pair_solutions: bool = _DATA.pair_solutions
    shared_phrasings: bool = _DATA.shared_phrasings
    quote_api: bool = _DATA.quote_api
    novel_names: bool = _DATA.novel_names
    api_thoughts: bool = _DATA.api_thoughts
    switch_languages: bool = _DATA.switch_languages
    context_turns: bool = _DATA.context_turns
    phrase_queries: bool = _DATA.phrase_queries
    custom_decoys: bool = _DATA.custom_decoys
    wide_values: bool = _DATA.wide_values
    cjk_chars: bool = True
    """The tokenizer keeps every Chinese character a token of its own (no merges across them)."""
    name_spaces: bool = False
    """The tokenizer makes a space before a capital letter a token of its own, so a name is the same
    tokens after a space (in the question) as after ``("`` (in a call)."""
    number_slots: int = 32
    """Number slots of the model (``moss_agent.models.number_slots``): multi-digit numbers from the
    user and the tools are read and written as one token each; 0: digits."""
    number_rounding: bool = True
    """With number slots, the model writes a reply's rounded copy of a number (``12.57`` for the
    calculator's ``12.566370614359172``) as ``<round>`` and the slot."""
    digit_slots: bool = False
    """With number slots, single digits of the user and the tools get slots too."""
    members: int = 3
    """Models trained on the same data and tokenizer, member k from seed ``seed + k`` (its
    initialisation and data order), run as one ensemble (``moss_agent.models.ensemble``): each
    next-token distribution is the renormalised mean of their log-probabilities. Member 0 is the
    one-model recipe's model. Two members (float32): held-out end to end 71.7 → 76.9 % against
    member 0 alone; three (bf16): tool choice 92.9 → 95.2 %, end to end 76.9 → 78.9 % against two."""
    copy_bias: float = COPY_BIAS
    """The model's default copy bias (``moss_agent.models.copy_bias``), written to its
    generation_config.json: in Commands, favour the token that continues the span of the user's
    turns a call copies. Held-out arguments 80.2 → 81.5 % for the three-member model (11 cases
    gained, none lost, all copied equations); 0: off."""
    ensemble_dtype: str | None = "float16"
    """With several members: the precision their weights are stored in (two float32 members would
    be 31.6 MB; stored in float16 one held-out generation of 1145 changed, no score); ``None`` or
    ``float32``: as trained."""

    def slot_scheme(self) -> SlotScheme:
        """The number slots of the model (``moss_agent.models.number_slots``)."""
        return SlotScheme(self.number_slots, rounding=self.number_rounding, digits=self.digit_slots)

    def data_options(self) -> DataOptions:
        """The generator's options of this recipe."""
        return DataOptions(**{f.name: getattr(self, f.name) for f in fields(DataOptions)})


def conversation_texts(path: Path) -> Iterator[str]:
    """The full MOSS text of every conversation in a JSONL file."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                data = json.loads(line)
                yield data["meta_instruction"] + "".join(
                    str(turn[name]) for turn in data["chat"].values() for name in TURN_FIELDS
                )


def train_tokenizer(
    train_file: Path,
    out: Path,
    vocab_size: int,
    *,
    max_texts: int = 20_000,
    name_min_count: int = 0,
    split_cjk: bool = False,
    split_name_spaces: bool = False,
    number_slots: SlotScheme | int = 0,
) -> Path:
    """Train the byte-level BPE (digits one per token, MOSS special tokens) on the data.

    With ``number_slots``, the texts it learns from are written with slots, as the model reads them.
    """
    from moss_agent.models.tiny import build_tiny_tokenizer

    scheme = SlotScheme.coerce(number_slots)
    texts = [scheme.encode(text) for text in list(conversation_texts(train_file))[:max_texts]]
    tokenizer = build_tiny_tokenizer(
        texts,
        vocab_size=vocab_size,
        name_min_count=name_min_count,
        split_cjk=split_cjk,
        split_name_spaces=split_name_spaces,
        number_slots=scheme,
    )
    tokenizer.save_pretrained(out)
    return out


def _needed(done: Path, name: str) -> bool:
    if done.exists():
        print(f"[recipe] {name}: already done ({done})")  # noqa: T201
        return False
    print(f"[recipe] {name} …")  # noqa: T201
    return True


class RecipeLog:
    """``recipe_log.json``: the minutes of each stage, added up over resumed runs, written after each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stages: dict[str, dict[str, Any]] = (
            json.loads(path.read_text()).get("stages", {}) if path.exists() else {}
        )

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the stage ``name``; an interrupted stage still records its minutes."""
        started = time.monotonic()
        try:
            yield
        finally:
            entry = self.stages.setdefault(name, {})
            entry["minutes"] = round(float(entry.get("minutes", 0.0)) + (time.monotonic() - started) / 60, 2)
            entry["runs"] = int(entry.get("runs", 0)) + 1
            self.write()

    @property
    def minutes_total(self) -> float:
        """All stages' minutes."""
        return round(sum(float(entry.get("minutes", 0.0)) for entry in self.stages.values()), 1)

    def write(self) -> None:
        """Save the log."""
        data = {"minutes_total": self.minutes_total, "stages": self.stages}
        self.path.write_text(json.dumps(data, indent=2))


def check_recipe(config: RecipeConfig) -> None:
    """Refuse a model shape that CodeGen or the induction circuit cannot build, before any work.

    Raises:
        UsageError: What is wrong and what would do.
    """
    from moss_agent.train.sft import MIXED_PRECISIONS, check_loss_weights

    check_loss_weights(config.loss_weights)
    if config.restate_solutions and config.pair_solutions:
        raise UsageError("--restate-solutions and --pair-solutions are two formats of one reply: choose one")
    if not config.copy_bias >= 0:
        raise UsageError(f"--copy-bias must be >= 0, got {config.copy_bias}")
    if config.members < 1:
        raise UsageError(f"--members must be at least 1, got {config.members}")
    if config.mixed_precision not in MIXED_PRECISIONS:
        raise UsageError(
            f"--mixed-precision must be one of {', '.join(MIXED_PRECISIONS)}, got {config.mixed_precision!r}"
        )
    if config.ensemble_dtype not in (None, *STORED_DTYPES):
        raise UsageError(
            f"--ensemble-dtype must be one of {', '.join(STORED_DTYPES)}, got {config.ensemble_dtype!r}"
        )
    if config.n_layer < (2 if config.induction_circuit else 1):
        raise UsageError(
            f"--layers must be at least 2 (the induction circuit spans two), got {config.n_layer}"
        )
    if config.n_embd % config.n_head:
        raise UsageError(f"--width {config.n_embd} must be a multiple of the {config.n_head} attention heads")
    if not config.induction_circuit:
        return
    from moss_agent.train.induction import check_circuit_shape, min_circuit_width

    smallest = min_circuit_width(config.n_head, config.rotary_dim)
    if config.n_embd < smallest:
        raise UsageError(
            f"--width {config.n_embd} leaves {config.n_embd // config.n_head} dims per head; the induction "
            f"circuit needs {config.rotary_dim} rotary + 4 more: use --width {smallest} or more"
        )
    check_circuit_shape(
        n_layer=config.n_layer,
        n_embd=config.n_embd,
        n_head=config.n_head,
        rotary_dim=config.rotary_dim,
        bigram_heads=config.bigram_heads,
    )


def run_recipe(config: RecipeConfig) -> Path:
    """Run every stage; return the folder of the trained model."""
    check_recipe(config)
    from moss_agent.train.data import generate_dataset

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe_config.json").write_text(json.dumps(asdict(config), indent=2))
    log = RecipeLog(out / "recipe_log.json")
    data = out / "data"
    if _needed(data / "dataset_info.json", "data"):
        with log.stage("data"):
            generate_dataset(
                data,
                n_train=config.n_train,
                n_test=config.n_test,
                n_valid=config.n_valid,
                seed=config.seed,
                options=config.data_options(),
            )
    tokenizer_dir = out / "tokenizer"
    if _needed(tokenizer_dir / "tokenizer.json", "tokenizer"):
        with log.stage("tokenizer"):
            train_tokenizer(
                data / "train.jsonl",
                tokenizer_dir,
                config.vocab_size,
                name_min_count=config.name_min_count,
                split_cjk=config.cjk_chars,
                split_name_spaces=config.name_spaces,
                number_slots=config.slot_scheme(),
            )
    final = _train_member(config, out, tokenizer_dir, data, log, seed=config.seed, suffix="")
    set_copy_bias(final, config.copy_bias)
    if config.members == 1:
        log.write()
        return final
    finals = [final]
    for index in range(1, config.members):
        member = out / "members" / str(index)
        finals.append(
            _train_member(
                config, member, tokenizer_dir, data, log, seed=config.seed + index, suffix=f"-{index}"
            )
        )
    for member in finals[1:]:
        set_copy_bias(member, config.copy_bias)
    ensemble = out / "ensemble"
    if _needed(ensemble / ENSEMBLE_FILE, "ensemble"):
        with log.stage("ensemble"):
            write_ensemble(ensemble, finals, dtype=config.ensemble_dtype)
    set_copy_bias(ensemble, config.copy_bias)
    log.write()
    return ensemble


def _train_member(
    config: RecipeConfig,
    folder: Path,
    tokenizer_dir: Path,
    data: Path,
    log: RecipeLog,
    *,
    seed: int,
    suffix: str,
) -> Path:
    """Initialise a model in ``folder/init`` and fine-tune it into ``folder/sft/final`` with ``seed``."""
    from transformers import AutoTokenizer

    from moss_agent.models.tiny import build_tiny_moss_checkpoint
    from moss_agent.train.sft import SFTConfig, finetune

    init = folder / "init"
    if _needed(init / "config.json", "init" + suffix):
        with log.stage("init" + suffix):
            build_tiny_moss_checkpoint(
                init,
                tokenizer=AutoTokenizer.from_pretrained(tokenizer_dir),
                n_layer=config.n_layer,
                n_embd=config.n_embd,
                n_head=config.n_head,
                rotary_dim=config.rotary_dim,
                n_positions=config.n_positions,
                seed=seed,
                induction_circuit=config.induction_circuit,
                bigram_heads=config.bigram_heads if config.induction_circuit else 0,
                number_slots=config.slot_scheme(),
            )
    final = folder / "sft" / "final"
    if _needed(final / "config.json", "sft" + suffix):
        with log.stage("sft" + suffix):
            finetune(
                SFTConfig(
                    model=str(init),
                    data=[str(data / "train.jsonl")],
                    eval_data=[str(data / "valid.jsonl")],
                    output_dir=str(folder / "sft"),
                    max_length=config.max_length,
                    batch_size=config.batch_size,
                    learning_rate=config.learning_rate,
                    max_steps=config.max_steps,
                    max_minutes=config.max_minutes,
                    warmup_ratio=0.02,
                    save_steps=200,
                    # the loss curve at 1000-step points: 13 fewer passes over the validation
                    # split (11 s each on the 2-core CPU) than at every checkpoint
                    eval_steps=1000,
                    seed=seed,
                    mask_human=config.mask_human,
                    loss_weights=dict(config.loss_weights),
                    mixed_precision=config.mixed_precision,
                )
            )
    return final


def install_model(final: Path, data: Path, destination: Path, model_card: str) -> Path:
    """Copy a trained model, its search corpus and its card into the package.

    The weights are copied as they are (float32 as trained): they are the weights the card's scores
    were measured on. Halving them to float16 moves greedy near-ties: a float16 copy of a model
    whose float32 weights answer the README's product question right called ``Calculate("1234+12")``.
    """
    destination.mkdir(parents=True, exist_ok=True)
    for stale in destination.glob("member-*"):  # an ensemble installed before this model
        if stale.is_dir():
            shutil.rmtree(stale)
    for stale_file in ("model.safetensors", "config.json", "generation_config.json", ENSEMBLE_FILE):
        (destination / stale_file).unlink(missing_ok=True)
    _copy_checkpoint(final, destination)
    for member in ensemble_members(final) or []:
        _copy_checkpoint(member, destination / member.name)
    shutil.copyfile(data / "corpus.jsonl", destination / "corpus.jsonl")
    (destination / "README.md").write_text(model_card, encoding="utf-8")
    return destination


def _copy_checkpoint(source: Path, destination: Path) -> None:
    """The checkpoint files of ``source`` (not its subfolders) into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file() and (
            item.suffix in {".json", ".txt", ".safetensors"} or item.name.startswith("tokenizer")
        ):
            # copyfile, not copy2: safetensors writes its files owner-only (0600), which a shared
            # install of the package could not read
            shutil.copyfile(item, destination / item.name)


def recipe_model(run_dir: Path) -> Path:
    """The model a recipe run made: its ensemble folder when it trained several members."""
    ensemble = run_dir / "ensemble"
    return ensemble if (ensemble / ENSEMBLE_FILE).is_file() else run_dir / "sft" / "final"


def _calc_solve_answer_accuracy(results: list[Any]) -> float | None:
    """Final-answer accuracy on the Calculate/Solve cases that carry an answer."""
    scored = [
        r for r in results if r.case.get("category") in ("calculate", "solve") and r.scores.answer is not None
    ]
    if not scored:
        return None
    return sum(bool(r.scores.answer) for r in scored) / len(scored)


@dataclass
class ModelScores:
    """A model's scores on a recipe's splits and suites (what its card and scores.json show)."""

    heldout: dict[str, Any] | None = None
    valid: dict[str, Any] | None = None
    novel_names: dict[str, Any] | None = None
    after_call: dict[str, Any] | None = None
    suite: dict[str, Any] | None = None
    constrained_calls: bool = False
    """The scores were measured with constrained Commands decoding."""
    copy_bias: float = 0.0
    """The copy bias they were measured with."""

    def as_json(self) -> dict[str, Any]:
        """The content of scores.json."""
        return {
            "heldout": self.heldout,
            "valid": self.valid,
            "suite": self.suite,
            "novel_names": self.novel_names,
            "after_call": self.after_call,
        }


def score_model(
    model: Path,
    data: Path,
    work: Path,
    *,
    suite: Path | None = None,
    batch_size: int = 16,
    force: bool = False,
) -> ModelScores:
    """Score ``model`` on the held-out and validation splits of the dataset ``data`` (and a suite).

    Args:
        model: The model's folder.
        data: The dataset it was trained on (``moss-agent train data`` output).
        work: Where the suites and eval runs go (``heldout/``, ``eval-*``); runs there resume.
        suite: An eval suite to score too (``evals/suites/plugin-basic.jsonl``).
        batch_size: Cases generated together.
        force: Drop earlier eval results instead of resuming them.
    """
    from moss_agent.evals.runner import EvalRun, build_target, run_eval
    from moss_agent.train.heldout import after_call_suite, heldout_suite, novel_name_suite

    target = build_target(str(model))

    def score(suite_file: Path, eval_name: str) -> EvalRun:
        """The model's run on a suite, in the folder ``work / eval_name``."""
        return run_eval(suite_file, work / eval_name, target=target, batch_size=batch_size, force=force)

    def split_scores(split: str, suite_name: str, eval_name: str) -> tuple[Path, dict[str, Any]]:
        """A generated split as a suite, and the model's scores on it (Calculate/Solve answers too)."""
        suite_file = heldout_suite(
            data / f"{split}.jsonl", data / "corpus.jsonl", work / "heldout" / suite_name
        )
        run = score(suite_file, eval_name)
        summary = dict(run.summary)
        summary["answer_accuracy_calc_solve"] = _calc_solve_answer_accuracy(run.results)
        return suite_file, summary

    suite_file, heldout_summary = split_scores("test", "heldout.jsonl", "eval-heldout")
    _, valid_summary = split_scores("valid", "valid.jsonl", "eval-valid")
    novel_file = novel_name_suite(suite_file, work / "heldout" / "novel-names.jsonl")
    novel = score(novel_file, "eval-novel").summary
    # per made-up tool name, its rows would say nothing and fill scores.json
    novel_summary = {k: v for k, v in novel.items() if k not in ("per_tool", "by_tool")}
    after_file = after_call_suite(suite_file, data / "test.jsonl", work / "heldout" / "after-call.jsonl")
    after = score(after_file, "eval-after-call")
    after_call_summary = dict(after.summary)
    after_call_summary["answer_accuracy_calc_solve"] = _calc_solve_answer_accuracy(after.results)
    suite_summary = dict(score(suite, "eval-suite").summary) if suite is not None else None
    identity = after.config.get("model", {})
    return ModelScores(
        heldout=heldout_summary,
        valid=valid_summary,
        novel_names=novel_summary,
        after_call=after_call_summary,
        suite=suite_summary,
        constrained_calls=bool(identity.get("constrain_calls")),
        copy_bias=float(identity.get("copy_bias") or 0.0),
    )


def evaluate_and_install(
    run_dir: Path,
    destination: Path,
    *,
    suite: Path | None = None,
    batch_size: int = 16,
    force: bool = False,
) -> Path:
    """Score the trained model on its held-out and validation splits (and a suite); card it, install it.

    Args:
        run_dir: The recipe's working folder.
        destination: Where the model goes (the package's ``assets/moss-tiny-plugin``).
        suite: An eval suite to score too (``evals/suites/plugin-basic.jsonl``).
        batch_size: Cases generated together.
        force: Drop the run's earlier eval results instead of resuming them.
    """
    from safetensors import safe_open

    from moss_agent.train.model_card import render_model_card

    final = recipe_model(run_dir)
    data = run_dir / "data"
    scores = score_model(final, data, run_dir, suite=suite, batch_size=batch_size, force=force)
    checkpoints = ensemble_members(final) or [final]
    parameters = 0
    for checkpoint in checkpoints:
        with safe_open(str(checkpoint / "model.safetensors"), framework="pt") as weights:
            parameters += sum(_numel(weights.get_slice(k).get_shape()) for k in weights.keys())
    card = render_model_card(
        run_dir,
        scores,
        parameters=parameters,
        weights_mb=sum((c / "model.safetensors").stat().st_size for c in checkpoints) / 1e6,
        weights_dtype=_weights_dtype(checkpoints[0]),
    )
    installed = install_model(final, data, destination, card)
    (destination / "scores.json").write_text(json.dumps(scores.as_json(), indent=2, default=str))
    return installed


def rescore_installed(
    destination: Path,
    data: Path,
    work: Path,
    *,
    suite: Path | None = None,
    batch_size: int = 16,
    force: bool = False,
) -> ModelScores:
    """Score an installed model again and rewrite its card's scores and scores.json.

    For a change that needs no retraining (a decoding default such as its copy bias). ``data``
    must be the dataset it was trained on: its split sizes must be the ones the card states.

    Raises:
        UsageError: ``destination`` has no card, or ``data`` is not the dataset of the card.
    """
    from moss_agent.train.model_card import SCORES_HEADING, replace_scores, split_lines

    card_file = destination / "README.md"
    if not card_file.is_file() or SCORES_HEADING not in card_file.read_text(encoding="utf-8"):
        raise UsageError(f"{destination} has no model card with a {SCORES_HEADING!r} section")
    card = card_file.read_text(encoding="utf-8")
    info_file = data / "dataset_info.json"
    if not info_file.is_file():
        raise UsageError(f"{data} is not a dataset folder (no dataset_info.json)")
    missing = [line for line in split_lines(json.loads(info_file.read_text())) if line not in card]
    if missing:
        raise UsageError(
            f"{data} is not the dataset the model in {destination} was trained on: its card does not "
            f"say {missing[0]!r}; regenerate it with the recipe's seed and options"
        )
    scores = score_model(destination, data, work, suite=suite, batch_size=batch_size, force=force)
    card_file.write_text(replace_scores(card, scores), encoding="utf-8")
    (destination / "scores.json").write_text(json.dumps(scores.as_json(), indent=2, default=str))
    return scores


def _weights_dtype(final: Path) -> str:
    """The dtype of a checkpoint's floating-point weights, as config.json names it."""
    config = json.loads((final / "config.json").read_text())
    return str(config.get("dtype") or config.get("torch_dtype") or "float32")


def _numel(shape: Any) -> int:
    total = 1
    for size in shape:
        total *= int(size)
    return total
