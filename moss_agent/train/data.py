"""Synthetic MOSS plugin dialogues for training a small model to speak the plugin protocol.

:func:`generate_dataset` writes ``train.jsonl``, ``valid.jsonl`` and ``test.jsonl`` (one
conversation a line, in MOSS's SFT JSON schema plus evaluation fields), the search corpus
``corpus.jsonl`` the Search turns were answered from, and ``dataset_info.json``.

Every conversation is consistent with the real tools: Calculate results come from
:func:`moss_agent.tools.calculator.calculate`, Solve results from the solver's in-process
functions, Search results from a :class:`~moss_agent.tools.search_backends.LocalCorpusBackend`
over the written corpus, all rendered by :mod:`moss_agent.protocol`. Each user phrasing
template is a *family*; the test split uses only held-out families (about 18 % of every group),
so it measures generalisation to unseen phrasings. Output is byte-identical for a seed.

Extra top-level fields of each conversation: ``intent``, ``family`` (of the last turn),
``lang`` and ``expect``, one record per turn::

    {"tool": "Calculate" | custom name | null, "argument": "1234*5678" | null,
     "kwargs": {...} | null, "answer": ["7006652"], "intent": "calculate", "family": "zh.calc.mul.2"}
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moss_agent.conversations import render_turn_fields
from moss_agent.errors import ToolError, UsageError
from moss_agent.protocol import (
    DEFAULT_PLUGINS,
    Commands,
    Results,
    Turn,
    render_meta_instruction,
)
from moss_agent.train._builders import CHAT_KINDS, Families, TurnBuilder, TurnSpec, build_families
from moss_agent.train._custom import ARCHETYPES, Archetype, CustomTool, invent_tool
from moss_agent.train._world import World, build_world
from moss_agent.train._wrappers import wrap_request
from moss_agent.train.options import OPTIONAL_KEYS, DataOptions

__all__ = ["BANNED_STRINGS", "INTENT_WEIGHTS", "DataOptions", "DatasetInfo", "generate_dataset", "is_clean"]

#: Share of each conversation intent in every split.
INTENT_WEIGHTS: dict[str, float] = {
    "calculate": 0.21,
    "solve": 0.14,
    "search": 0.12,
    "text2image": 0.07,
    "no_tool": 0.09,
    "disabled": 0.08,
    "custom": 0.18,
    "multi_turn": 0.11,
}
#: Text that must never appear in the data (lower-cased match): LangChain's standard tool-calling
#: tests use these names and prompts, and the model must learn the skill, not the test.
BANNED_STRINGS: tuple[str, ...] = (
    "magic_function",
    "get_weather",
    "my_adder_tool",
    "what is the value of magic_function(3)?",
    "what is 1 + 2",
    "what's the weather in san francisco",
    "hello",
    "hi there",
    "weather",
    "adder",
)
_CUSTOM_BUILTINS = ("Calculate", "Solve", "Text2Image")


@dataclass(frozen=True)
class DatasetInfo:
    """What :func:`generate_dataset` wrote.

    Attributes:
        out_dir: The output folder.
        stats: The content of ``dataset_info.json``.
        seconds: Wall time of the generation (not written to disk, so files stay deterministic).
    """

    out_dir: Path
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def files(self) -> dict[str, Path]:
        """The written files by name."""
        names = ("train", "valid", "test", "corpus")
        return {n: self.out_dir / f"{n}.jsonl" for n in names} | {"info": self.out_dir / "dataset_info.json"}


def _enabled(
    rng: random.Random,
    need_on: set[str],
    need_off: set[str],
    pool: Iterable[str] = DEFAULT_PLUGINS,
    only_needed: float = 0.4,
    all_others: float = 0.3,
) -> list[str]:
    """An enabled-plugin set: the needed ones plus none, all or some of the others."""
    others = [p for p in pool if p not in need_on and p not in need_off]
    r = rng.random()
    extra = (
        []
        if r < only_needed
        else others
        if r < only_needed + all_others
        else [p for p in others if rng.random() < 0.5]
    )
    return [p for p in DEFAULT_PLUGINS if p in need_on or p in extra]


#: With ``switch_languages``: the chance that a later turn of a multi-turn conversation changes language.
SWITCH_LANGUAGE_RATE = 0.35
#: With ``context_turns``: the chance that a one-turn built-in conversation of the training split
#: gets an earlier turn, how often that turn is in the other language, how often its Results are
#: compressed to ``None`` (as the agent sends earlier turns by default), and the weights of its kinds.
CONTEXT_TURN_RATE = 0.3
CONTEXT_OTHER_LANGUAGE = 0.5
CONTEXT_COMPRESS = 0.75
CONTEXT_KINDS = {"calculate": 3, "solve": 3, "search": 2, "text2image": 1, "no_tool": 1}
#: With ``custom_decoys``: the chance that a built-in conversation of the training split also declares
#: custom tools it does not call, and the archetypes never used so (they could serve a built-in request).
DECOY_RATE = 0.15
NOT_DECOYS = frozenset({"currency", "population", "define"})


class _Generator:
    """Generates whole conversations for one split."""

    def __init__(
        self,
        builder: TurnBuilder,
        switch_rng: random.Random | None = None,
        context_rng: random.Random | None = None,
        decoy_rng: random.Random | None = None,
    ) -> None:
        self.b = builder
        self.switch_rng = switch_rng
        """With ``switch_languages`` (training split): switches later turns' language."""
        self.decoy_rng = decoy_rng
        """With ``custom_decoys`` (training split): declares custom tools, uncalled, in built-in ones."""
        self.context_rng = context_rng
        """With ``context_turns`` (training split): draws earlier turns for one-turn conversations."""
        self.compress_context = False
        """Whether the last conversation's added earlier turn is sent with its Results compressed."""

    def conversation(
        self, rng: random.Random, intent: str
    ) -> tuple[str, list[TurnSpec], str, list[str], list[CustomTool]]:
        """``(lang, turns, meta_instruction, enabled, custom tools)`` for an intent."""
        self.compress_context = False
        if intent == "custom" or (intent == "multi_turn" and rng.random() < 0.3):
            return self.custom_conversation(rng, intent)
        lang = rng.choice(("zh", "en"))
        if intent == "multi_turn":
            kinds = self.multi_plan(rng)
        elif intent == "disabled":
            kinds = [("disabled", rng.choice(DEFAULT_PLUGINS))]
        else:
            kinds = [(intent, None)]
        need_on = {_TOOL_OF[k] for k, _ in kinds if k in _TOOL_OF}
        need_off = {tool for k, tool in kinds if k == "disabled" and tool}
        enabled = _enabled(rng, need_on, need_off)
        turns: list[TurnSpec] = []
        turn_lang = lang
        for kind, arg in kinds:
            if turns and self.switch_rng is not None and self.switch_rng.random() < SWITCH_LANGUAGE_RATE:
                turn_lang = "en" if turn_lang == "zh" else "zh"
            turns.append(self.builtin_turn(rng, turn_lang, kind, arg, turns))
        if len(turns) == 1 and self.context_rng is not None:
            turns, enabled = self.add_context(lang, turns, enabled, need_off)
        decoys = self.decoys()
        meta = render_meta_instruction(
            [*enabled, *(t.name for t in decoys)], custom=[t.declaration for t in decoys]
        )
        return lang, turns, meta, enabled, []

    def decoys(self) -> list[CustomTool]:
        """With ``custom_decoys``, now and then one or two custom tools that no built-in request needs."""
        rng = self.decoy_rng
        if rng is None or rng.random() >= DECOY_RATE:
            return []
        pool = [a for a in ARCHETYPES if not a.arithmetic and a.key not in NOT_DECOYS]
        tools: list[CustomTool] = []
        for archetype in rng.sample(pool, rng.choice((1, 1, 2))):
            tool = invent_tool(archetype, rng)
            while tool.name in {t.name for t in tools} or not is_clean(tool.name):
                tool = invent_tool(archetype, rng)
            tools.append(tool)
        return tools

    def add_context(
        self, lang: str, turns: list[TurnSpec], enabled: list[str], need_off: set[str]
    ) -> tuple[list[TurnSpec], list[str]]:
        """``turns`` with, now and then, an earlier turn of another kind (and language) put before them.

        The earlier turn's tool is enabled too (unless the conversation needs it off), so the model
        learns to read the last request afresh after any call: a 鸡兔同笼 Solve call, then "What is
        1234 multiplied by 5678?", must not copy the earlier call's operators.
        """
        rng = self.context_rng
        assert rng is not None
        if rng.random() >= CONTEXT_TURN_RATE:
            return turns, enabled
        kinds = [k for k in CONTEXT_KINDS if _TOOL_OF.get(k) not in need_off]
        kind = rng.choices(kinds, [CONTEXT_KINDS[k] for k in kinds])[0]
        other = "en" if lang == "zh" else "zh"
        context_lang = other if rng.random() < CONTEXT_OTHER_LANGUAGE else lang
        try:
            earlier = self.builtin_turn(rng, context_lang, kind, None, [])
        except LookupError:  # no family of this split fits the drawn request: no earlier turn
            return turns, enabled
        self.compress_context = rng.random() < CONTEXT_COMPRESS
        tool = _TOOL_OF.get(kind)
        if tool is not None and tool not in enabled:
            enabled = [p for p in DEFAULT_PLUGINS if p in enabled or p == tool]
        return [earlier, *turns], enabled

    def multi_plan(self, rng: random.Random) -> list[tuple[str, str | None]]:
        kinds: list[tuple[str, str | None]] = []
        for _ in range(rng.choice((2, 2, 3))):
            kind = rng.choices(
                ["calculate", "followup", "solve", "search", "text2image", "no_tool"],
                weights=[3, 3, 2, 2, 1, 2],
            )[0]
            if kind == "followup" and (not kinds or kinds[-1][0] not in ("calculate", "followup")):
                kind = "calculate"
            kinds.append((kind, None))
        if rng.random() < 0.15:
            needed = {_TOOL_OF[k] for k, _ in kinds if k in _TOOL_OF}
            free = [p for p in DEFAULT_PLUGINS if p not in needed]
            if free:
                kinds.insert(rng.randint(0, len(kinds)), ("disabled", rng.choice(free)))
        return kinds

    def builtin_turn(
        self, rng: random.Random, lang: str, kind: str, arg: str | None, previous: list[TurnSpec]
    ) -> TurnSpec:
        b = self.b
        if kind == "followup":
            prev = previous[-1].answer_number if previous else None
            if prev is not None and not prev.startswith("-"):
                return b.calculate(rng, lang, rng.choice(("fu_mul", "fu_add", "fu_sub", "fu_div")), prev)
            kind = "calculate"
        if kind == "calculate":
            return b.calculate(rng, lang)
        if kind == "solve":
            return b.solve(rng, lang)
        if kind == "search":
            return b.search_turn(rng, lang)
        if kind == "text2image":
            return b.text2image(rng, lang)
        if kind == "no_tool":
            return b.chat(rng, lang)
        assert kind == "disabled" and arg is not None
        return b.disabled(rng, lang, arg)

    def custom_conversation(
        self, rng: random.Random, intent: str
    ) -> tuple[str, list[TurnSpec], str, list[str], list[CustomTool]]:
        lang = "en" if rng.random() < 0.7 else "zh"
        n_declared = rng.choice((1, 1, 2, 2, 3))
        archetypes = rng.sample(ARCHETYPES, n_declared + 1)
        declared_arch, spare = archetypes[:n_declared], archetypes[n_declared]
        tools: list[CustomTool] = []
        for arche in declared_arch:
            tool = invent_tool(arche, rng)
            while tool.name in {t.name for t in tools}:
                tool = invent_tool(arche, rng)
            tools.append(
                self.b.declare(
                    tool,
                    lambda name: not is_clean(name) or name in {t.name for t in tools},
                )
            )
        if intent == "multi_turn":
            plan = rng.choice(
                [
                    ["call", "call"],
                    ["chat", "call"],
                    ["call", "chat"],
                    ["call", "call", "chat"],
                    ["call", "calculate"],
                    ["calculate", "call"],
                ]
            )
        else:
            r = rng.random()
            plan = ["call"] if r < 0.8 else ["chat"] if r < 0.9 else ["unavailable"]
        involved: list[Archetype] = [*declared_arch, spare] if "unavailable" in plan else list(declared_arch)
        need_off = {"Calculate"} if any(a.arithmetic for a in involved) else set()
        if "calculate" in plan and need_off:
            plan = [p if p != "calculate" else "chat" for p in plan]
        need_on = {"Calculate"} if "calculate" in plan else set()
        enabled = _enabled(rng, need_on, need_off, _CUSTOM_BUILTINS, only_needed=0.75, all_others=0.1)
        turns: list[TurnSpec] = []
        for step in plan:
            if step == "call":
                turns.append(self.b.custom(rng, lang, rng.choice(tools)))
            elif step == "unavailable":
                turns.append(self.b.custom_unavailable(rng, lang, invent_tool(spare, rng)))
            elif step == "calculate":
                turns.append(self.b.calculate(rng, lang))
            else:
                turns.append(self.b.chat(rng, lang, rng.choice(CHAT_KINDS)))
        custom = [t.declaration for t in tools]
        meta = render_meta_instruction([*enabled, *(t.name for t in tools)], custom=custom)
        return lang, turns, meta, enabled + [t.name for t in tools], tools


_TOOL_OF = {
    "calculate": "Calculate",
    "followup": "Calculate",
    "solve": "Solve",
    "search": "Search",
    "text2image": "Text2Image",
}


def _record(
    conversation_id: int, intent: str, lang: str, meta: str, turns: list[TurnSpec], compress: bool
) -> dict[str, Any]:
    chat = {}
    for index, spec in enumerate(turns, start=1):
        results = spec.results
        if compress and index < len(turns) and results.items:
            results = Results()  # as the agent sends earlier turns (compress_history=True)
        turn = Turn(spec.human, spec.thoughts, Commands(spec.invocations), results, spec.reply)
        chat[f"turn_{index}"] = render_turn_fields(turn)
    return {
        "conversation_id": conversation_id,
        "meta_instruction": meta,
        "num_turns": len(turns),
        "chat": chat,
        "category": "tool",
        "intent": intent,
        "family": turns[-1].expect["family"],
        "lang": lang,
        "expect": [spec.expect for spec in turns],
    }


def is_clean(line: str) -> bool:
    """Whether a text is free of every :data:`BANNED_STRINGS` entry (case-insensitive)."""
    lowered = line.lower()
    return not any(banned in lowered for banned in BANNED_STRINGS)


def _write_split(
    path: Path,
    generator: _Generator,
    n: int,
    rng: random.Random,
    stats: dict[str, Any],
    wrap_rng: random.Random | None = None,
) -> None:
    intents, weights = list(INTENT_WEIGHTS), list(INTENT_WEIGHTS.values())
    by_intent: Counter[str] = Counter()
    by_lang: Counter[str] = Counter()
    by_tool: Counter[str] = Counter()
    turns = chars = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for conversation_id in range(1, n + 1):
            intent = rng.choices(intents, weights)[0]
            for _attempt in range(50):
                try:
                    lang, specs, meta, _, _ = generator.conversation(rng, intent)
                except LookupError:  # no family of this split fits the drawn request: draw again
                    continue
                if wrap_rng is not None:  # own stream: the conversations drawn stay the same
                    for spec in specs:
                        if spec.expect["intent"] != "no_tool":
                            spec.human = wrap_request(wrap_rng, _language(spec), spec.human)
                compress = (intent == "multi_turn" and rng.random() < 0.4) or generator.compress_context
                record = _record(conversation_id, intent, lang, meta, specs, compress)
                line = json.dumps(record, ensure_ascii=False)
                if is_clean(line):
                    break
            else:  # pragma: no cover - every intent has families in every split
                raise RuntimeError(f"could not generate a {intent} conversation")
            out.write(line + "\n")
            by_intent[intent] += 1
            by_lang[lang] += 1
            turns += len(specs)
            by_tool.update(spec.expect["tool"] or "None" for spec in specs)
            chars += sum(len(text) for t in record["chat"].values() for text in t.values())
    stats.update(
        conversations=n,
        turns=turns,
        by_intent=dict(sorted(by_intent.items())),
        by_lang=dict(sorted(by_lang.items())),
        calls_by_tool=dict(sorted(by_tool.items())) if n else {},
        avg_chars_without_meta=round(chars / n, 1) if n else 0.0,
    )
    for name, value in list(stats["calls_by_tool"].items()):
        if name not in (*DEFAULT_PLUGINS, "None"):
            stats["calls_by_tool"].pop(name)
            stats["calls_by_tool"]["custom"] = stats["calls_by_tool"].get("custom", 0) + value


def _language(spec: TurnSpec) -> str:
    """The language a turn is asked in (its family's prefix: ``en.calc.add.3``)."""
    return str(spec.expect["family"]).split(".", 1)[0]


def _search_function(corpus_path: Path) -> Any:
    from moss_agent.tools.search import search
    from moss_agent.tools.search_backends import LocalCorpusBackend

    backend = LocalCorpusBackend(corpus_path)

    def run(query: str) -> list[str]:
        try:
            return search(query, backend=backend)
        except ToolError:
            return []

    return run


def _train_stream(seed: int, split: str, name: str, on: bool) -> random.Random | None:
    """The RNG stream of a training-only option (``None`` when off or not the training split).

    A stream of its own, so the conversations drawn from the split's main RNG stay the same.
    """
    return random.Random(f"{seed}:{split}:{name}") if on and split == "train" else None


def generate_dataset(
    out_dir: Path,
    *,
    n_train: int = 20000,
    n_test: int = 1000,
    n_valid: int = 500,
    seed: int = 0,
    options: DataOptions | None = None,
) -> DatasetInfo:
    """Generate the train/valid/test conversations, the search corpus and the dataset card.

    Args:
        out_dir: Folder to write into (created if missing; files are overwritten).
        n_train: Conversations in ``train.jsonl``.
        n_test: Conversations in ``test.jsonl`` (held-out phrasing families only).
        n_valid: Conversations in ``valid.jsonl`` (training families, separate draws).
        seed: Seed of everything random; the same seed writes the same bytes.
        options: How the conversations are written (:class:`DataOptions`; its defaults, the recipe's,
            when not given).

    Raises:
        UsageError: ``restate_solutions`` and ``pair_solutions`` together.

    Returns:
        Where the files are and their statistics.
    """
    o = options or DataOptions()
    if o.restate_solutions and o.pair_solutions:
        raise UsageError("--restate-solutions and --pair-solutions are two formats of one reply: choose one")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    world: World = build_world(seed)
    corpus_path = out_dir / "corpus.jsonl"
    with corpus_path.open("w", encoding="utf-8", newline="\n") as out:
        for document in world.corpus:
            out.write(json.dumps(document, ensure_ascii=False) + "\n")
    asks = {(a.key, "en"): a.ask_en for a in ARCHETYPES} | {(a.key, "zh"): a.ask_zh for a in ARCHETYPES}
    families: Families = build_families(
        seed,
        [a.key for a in ARCHETYPES],
        lambda key, lang: asks[(key, lang)],
        more_phrasings=o.more_phrasings,
        wide_phrasings=o.wide_phrasings,
    )
    search = _search_function(corpus_path)
    solve_cache: dict[str, str] = {}
    splits: dict[str, Any] = {}
    for split, n in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        builder = TurnBuilder(
            world,
            search,
            families,
            split == "test",
            solve_cache,
            o,
            mix_rng=_train_stream(seed, split, "mix", o.mix_clauses),
            shared_rng=_train_stream(seed, split, "shared", o.shared_phrasings),
            names_rng=_train_stream(seed, split, "names", o.novel_names),
            values_rng=_train_stream(seed, split, "values", o.wide_values),
        )
        stats: dict[str, Any] = {}
        wrap_rng = _train_stream(seed, split, "wrap", o.wrap_requests)
        _write_split(
            out_dir / f"{split}.jsonl",
            _Generator(
                builder,
                _train_stream(seed, split, "languages", o.switch_languages),
                _train_stream(seed, split, "context", o.context_turns),
                _train_stream(seed, split, "decoys", o.custom_decoys),
            ),
            n,
            random.Random(f"{seed}:{split}"),
            stats,
            wrap_rng,
        )
        splits[split] = stats
    info = {
        "seed": seed,
        "splits": splits,
        "families": len(families.templates),
        "held_out_families": sorted(families.held_out),
        "corpus_documents": len(world.corpus),
        "intent_weights": INTENT_WEIGHTS,
        # The first two always, the others only when on (so the cards of older runs stay as they were).
        "switch_thoughts": o.switch_thoughts,
        "restate_solutions": o.restate_solutions,
        **{name: True for name in OPTIONAL_KEYS if getattr(o, name)},
    }
    (out_dir / "dataset_info.json").write_text(
        json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return DatasetInfo(out_dir, info, time.perf_counter() - started)
