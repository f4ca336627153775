from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from moss_agent.conversations import parse_conversation, render_turn_fields
from moss_agent.errors import UsageError
from moss_agent.protocol import builtin_plugins, parse_commands, parse_meta_instruction, parse_section
from moss_agent.tools.calculator import calculate
from moss_agent.tools.search_backends import read_corpus
from moss_agent.tools.solver import format_solutions, solve, solve_equations
from moss_agent.train.data import BANNED_STRINGS, INTENT_WEIGHTS, DatasetInfo, generate_dataset
from moss_agent.train.options import DataOptions

SIZES = {"n_train": 300, "n_test": 100, "n_valid": 50}
#: The generator with every optional rewrite off: each option's test turns one on against it.
PLAIN = DataOptions(
    more_phrasings=False,
    wide_phrasings=False,
    wrap_requests=False,
    mix_clauses=False,
    quote_counts=False,
    shared_phrasings=False,
    context_turns=False,
)
SPLITS = ("train", "valid", "test")
FILES = ("train.jsonl", "valid.jsonl", "test.jsonl", "corpus.jsonl", "dataset_info.json")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetInfo:
    return generate_dataset(tmp_path_factory.mktemp("data0"), seed=0, options=PLAIN, **SIZES)


def records(info: DatasetInfo, split: str) -> list[dict[str, Any]]:
    lines = (info.out_dir / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def all_records(info: DatasetInfo) -> list[dict[str, Any]]:
    return [r for split in SPLITS for r in records(info, split)]


def turns(record: dict[str, Any]) -> list[tuple[dict[str, str], dict[str, Any]]]:
    keys = sorted(record["chat"], key=lambda k: int(k.split("_")[1]))
    return [(record["chat"][k], e) for k, e in zip(keys, record["expect"], strict=True)]


def paired_turns(plain: DatasetInfo, other: DatasetInfo, *fields: str):
    """``(split, plain turn, other turn, expect)`` of two datasets drawn alike; asserts they differ in ``fields`` only."""
    for split in SPLITS:
        for a_record, b_record in zip(records(plain, split), records(other, split), strict=True):
            for (a, expect), (b, _) in zip(turns(a_record), turns(b_record), strict=True):
                assert {k: v for k, v in a.items() if k not in fields} == {
                    k: v for k, v in b.items() if k not in fields
                }
                yield split, a, b, expect


def assert_same_held_out_splits(plain: DatasetInfo, other: DatasetInfo) -> None:
    """A training-only option leaves the valid and test splits the same bytes."""
    for split in ("valid", "test"):
        assert (other.out_dir / f"{split}.jsonl").read_bytes() == (
            plain.out_dir / f"{split}.jsonl"
        ).read_bytes()


def custom_call_turns(plain: DatasetInfo, other: DatasetInfo):
    """``(plain turn, other turn)`` of every custom-tool call; asserts every other turn's thoughts are the same."""
    for _, a, b, expect in paired_turns(plain, other, "Inner Thoughts"):
        if expect["intent"] == "custom" and expect["tool"]:
            yield a, b
        else:
            assert a["Inner Thoughts"] == b["Inner Thoughts"]


def commands(fields: dict[str, str]):
    return parse_commands(parse_section(fields["Commands"], "Commands"))


def test_files_and_counts(dataset: DatasetInfo) -> None:
    for name in FILES:
        assert (dataset.out_dir / name).is_file()
    info = json.loads((dataset.out_dir / "dataset_info.json").read_text(encoding="utf-8"))
    assert info == dataset.stats
    for split in SPLITS:
        rows = records(dataset, split)
        assert len(rows) == SIZES[f"n_{split}"] == info["splits"][split]["conversations"]
        assert [r["conversation_id"] for r in rows] == list(range(1, len(rows) + 1))
        for r in rows:
            assert r["num_turns"] == len(r["chat"]) == len(r["expect"])
            assert r["lang"] in {"zh", "en"} and r["intent"] in INTENT_WEIGHTS
            assert r["family"] == r["expect"][-1]["family"]


def test_every_conversation_round_trips_byte_for_byte(dataset: DatasetInfo) -> None:
    for r in all_records(dataset):
        parsed = parse_conversation(r)
        assert parsed.meta.render() == r["meta_instruction"]
        for (fields, _), turn in zip(turns(r), parsed.turns, strict=True):
            assert render_turn_fields(turn) == fields
            assert not turn.commands.errors


def test_deterministic_for_a_seed_and_different_for_another(dataset: DatasetInfo, tmp_path: Path) -> None:
    again = generate_dataset(tmp_path / "again", seed=0, options=PLAIN, **SIZES)
    other = generate_dataset(tmp_path / "other", seed=1, options=PLAIN, **SIZES)
    for name in FILES:
        assert (again.out_dir / name).read_bytes() == (dataset.out_dir / name).read_bytes(), name
    for name in ("train.jsonl", "test.jsonl", "corpus.jsonl"):
        assert (other.out_dir / name).read_bytes() != (dataset.out_dir / name).read_bytes(), name


def test_held_out_families_never_train_and_test_covers_intents_and_languages(dataset: DatasetInfo) -> None:
    held_out = set(dataset.stats["held_out_families"])
    assert 0.12 < len(held_out) / dataset.stats["families"] < 0.3
    train_families = {
        e["family"] for split in ("train", "valid") for r in records(dataset, split) for e in r["expect"]
    }
    test_rows = records(dataset, "test")
    test_families = {e["family"] for r in test_rows for e in r["expect"]}
    assert train_families and not train_families & held_out
    assert test_families <= held_out
    assert {r["intent"] for r in test_rows} == set(INTENT_WEIGHTS)
    assert {r["lang"] for r in test_rows} == {"zh", "en"}
    assert {e["intent"] for r in test_rows for e in r["expect"]} >= {
        "calculate",
        "solve",
        "search",
        "text2image",
        "no_tool",
        "disabled",
        "custom",
    }


def test_every_intent_group_holds_out_about_a_fifth(dataset: DatasetInfo) -> None:
    held_out = set(dataset.stats["held_out_families"])
    groups: dict[str, int] = {}
    for family in held_out:
        group = family.rsplit(".", 1)[0]
        groups[group] = groups.get(group, 0) + 1
    assert "zh.solve.cage" in groups and "en.calc.mul" in groups and "en.custom.generic.args" in groups


def test_results_match_the_real_tools(dataset: DatasetInfo) -> None:
    solved = 0
    for r in all_records(dataset):
        compressed = "<|Results|>:\nNone\n<eor>\n"
        for index, (fields, expect) in enumerate(turns(r)):
            results = fields["Tool Responses"]
            invocations = commands(fields).invocations
            assert (expect["tool"] is None) == (not invocations)
            if not invocations:
                assert results == compressed
                continue
            (call,) = invocations
            assert call.name == expect["tool"]
            if results == compressed:
                assert index < r["num_turns"] - 1  # only earlier turns are compressed
                continue
            if call.name == "Calculate":
                assert expect["argument"] == call.argument
                assert results == f"<|Results|>:\n{call.text} => {calculate(call.argument)!r}\n<eor>\n"
            elif call.name == "Solve":
                expected = format_solutions(solve_equations(call.argument))
                assert results == f"<|Results|>:\n{call.text} =>\n{expected}\n<eor>\n"
                if solved < 3:  # the real tool, in its worker process, agrees
                    assert solve(call.argument) == expected
                    solved += 1
            elif call.name == "Text2Image":
                assert results == "<|Results|>: Image generated successfully.<eor>\n"
            elif call.name == "Search":
                first = re.search(r"<\|1\|>: '(.*)'\n", results)
                assert first and expect["answer"][0] in first.group(1)
    assert solved == 3


def test_replies_contain_the_answers(dataset: DatasetInfo) -> None:
    for r in all_records(dataset):
        for fields, expect in turns(r):
            reply = parse_section(fields["MOSS"], "MOSS")
            for answer in expect["answer"]:
                assert answer in reply, (answer, reply)


def test_integer_calculator_results_appear_whole(dataset: DatasetInfo) -> None:
    for r in all_records(dataset):
        for fields, expect in turns(r):
            if expect["tool"] == "Calculate" and "=> '" in fields["Tool Responses"]:
                value = fields["Tool Responses"].split("=> '")[1].split("'")[0]
                if re.fullmatch(r"-?\d+(\.0)?", value):
                    assert expect["answer"] == [value.removesuffix(".0")]


def test_chickens_and_rabbits_have_integer_solutions(dataset: DatasetInfo) -> None:
    cages = 0
    for r in all_records(dataset):
        for fields, expect in turns(r):
            if ".solve.cage." in expect["family"] and expect["tool"] == "Solve":
                cages += 1
                m = re.fullmatch(r"x\+y=(\d+), (\d)x\+(\d)y=(\d+)", expect["argument"])
                assert m, expect["argument"]
                x, y = (int(v) for v in expect["answer"])
                heads, a, b, legs = (int(v) for v in m.groups())
                assert x > 0 and y > 0 and x + y == heads and a * x + b * y == legs
                assert str(heads) in fields["Human"] and str(legs) in fields["Human"]
                reply = parse_section(fields["MOSS"], "MOSS")
                assert str(x) in reply and str(y) in reply
    assert cages >= 10


def test_no_banned_names_or_prompts_anywhere(dataset: DatasetInfo) -> None:
    for name in FILES:
        text = (dataset.out_dir / name).read_text(encoding="utf-8").lower()
        for banned in BANNED_STRINGS:
            assert banned not in text, (name, banned)


def test_custom_tools_are_declared_and_called_with_declared_parameters(dataset: DatasetInfo) -> None:
    builtin = {p.name for p in builtin_plugins()}
    seen = {"keywords": 0, "single": 0, "none": 0}
    for r in all_records(dataset):
        meta = parse_conversation(r).meta
        declared = {p.name: p for p in meta.plugins if p.name not in builtin}
        for name, plugin in declared.items():
            assert name in meta.enabled
            assert f"- {plugin.label}: enabled. API: {plugin.api}\n" in r["meta_instruction"]
        for fields, expect in turns(r):
            for call in commands(fields).invocations:
                if call.name in builtin:
                    assert call.name in meta.enabled
                    continue
                api = declared[call.name].api
                params = [p.strip() for p in api[api.index("(") + 1 : -1].split(",") if p.strip()]
                if call.kwargs:
                    assert list(call.kwargs) == params and call.kwargs == expect["kwargs"]
                    seen["keywords"] += 1
                elif call.args:
                    assert len(params) == 1 and isinstance(call.args[0], str)
                    assert (
                        expect["kwargs"] == {params[0]: call.args[0]} and expect["argument"] == call.args[0]
                    )
                    seen["single"] += 1
                else:
                    assert params == [] and call.text == f"{call.name}()"
                    seen["none"] += 1
                results = fields["Tool Responses"]
                assert results == "<|Results|>:\nNone\n<eor>\n" or results.startswith(
                    f"<|Results|>:\n{call.text} => "
                )
    assert all(seen.values()), seen


def test_disabled_tools_are_never_called(dataset: DatasetInfo) -> None:
    disabled_turns = 0
    for r in all_records(dataset):
        meta = parse_conversation(r).meta
        for fields, expect in turns(r):
            for call in commands(fields).invocations:
                assert call.name in meta.enabled
            if expect["intent"] == "disabled":
                disabled_turns += 1
                assert expect["tool"] is None
    assert disabled_turns > 10


def test_multi_turn_has_follow_ups_and_compressed_history(dataset: DatasetInfo) -> None:
    rows = [r for r in records(dataset, "train") if r["intent"] == "multi_turn"]
    assert rows and all(2 <= r["num_turns"] <= 4 for r in rows)
    assert any(".calc.fu_" in e["family"] for r in rows for e in r["expect"])
    assert any(
        r["chat"]["turn_1"]["Tool Responses"] == "<|Results|>:\nNone\n<eor>\n" and r["expect"][0]["tool"]
        for r in rows
    )


def test_search_corpus_is_a_valid_local_corpus(dataset: DatasetInfo) -> None:
    documents = read_corpus(dataset.out_dir / "corpus.jsonl")
    assert len(documents) == dataset.stats["corpus_documents"] > 1000
    assert len({d.id for d in documents}) == len(documents)


def test_switch_thoughts_quote_the_switch_line_and_leave_user_turns_alone(
    dataset: DatasetInfo, tmp_path: Path
) -> None:
    quoted, plain_data = (
        dataset,
        generate_dataset(tmp_path / "plain", seed=0, options=replace(PLAIN, switch_thoughts=False), **SIZES),
    )
    assert quoted.stats["switch_thoughts"] is True and plain_data.stats["switch_thoughts"] is False
    labels = {p.label: p.name for p in builtin_plugins()}
    quote = re.compile(r"<\|Inner Thoughts\|>: ([A-Za-z -]+): (enabled|disabled)(?:; |；)")
    seen = {"enabled": 0, "disabled": 0}
    for split in SPLITS:
        for plain, switched in zip(records(plain_data, split), records(quoted, split), strict=True):
            meta = parse_conversation(switched).meta
            for (a, expect), (b, _) in zip(turns(plain), turns(switched), strict=True):
                assert a["Human"] == b["Human"] and a["Commands"] == b["Commands"]
                match = quote.match(b["Inner Thoughts"])
                builtin_call = [c for c in commands(b).invocations if c.name in labels.values()]
                if builtin_call or (expect["intent"] == "disabled" and expect["tool"] is None and match):
                    assert match, b["Inner Thoughts"]
                    label, state = match.groups()
                    # the quoted state is the meta instruction's, and the call follows it
                    assert (labels[label] in meta.enabled) == (state == "enabled")
                    assert bool(builtin_call) == (state == "enabled")
                    assert f"- {label}: {state}." in switched["meta_instruction"]
                    seen[state] += 1
                else:
                    assert not match and a["Inner Thoughts"] == b["Inner Thoughts"]
    assert seen["enabled"] > 100 and seen["disabled"] > 10


def test_restated_solutions_change_only_cage_replies(dataset: DatasetInfo, tmp_path: Path) -> None:
    restated = generate_dataset(
        tmp_path / "restated", seed=0, options=replace(PLAIN, restate_solutions=True), **SIZES
    )
    assert restated.stats["restate_solutions"] is True and dataset.stats["restate_solutions"] is False
    cages = 0
    for _, a, b, expect in paired_turns(dataset, restated, "MOSS"):
        if ".solve.cage." in expect["family"] and expect["tool"] == "Solve" and expect["answer"]:
            cages += 1
            x, y = expect["answer"]
            plain_reply, reply = parse_section(a["MOSS"], "MOSS"), parse_section(b["MOSS"], "MOSS")
            # the solver's lines first, then the shipped reply's naming, same numbers
            assert reply in (
                f"解得x = {x}，y = {y}，即{plain_reply}",
                f"x = {x} and y = {y}, so {plain_reply[:1].lower()}{plain_reply[1:]}",
            )
        else:
            assert a["MOSS"] == b["MOSS"]
    assert cages >= 10


def test_paired_solutions_name_each_animal_after_its_solver_line(
    dataset: DatasetInfo, tmp_path: Path
) -> None:
    paired = generate_dataset(
        tmp_path / "paired", seed=0, options=replace(PLAIN, pair_solutions=True), **SIZES
    )
    assert paired.stats["pair_solutions"] is True and "pair_solutions" not in dataset.stats
    cages = 0
    for _, a, b, expect in paired_turns(dataset, paired, "MOSS"):
        if ".solve.cage." in expect["family"] and expect["tool"] == "Solve" and expect["answer"]:
            cages += 1
            x, y = expect["answer"]
            plain_reply, reply = parse_section(a["MOSS"], "MOSS"), parse_section(b["MOSS"], "MOSS")
            zh = re.fullmatch(rf"(\S+)有{x}(\S+)，(\S+)有{y}\2。", plain_reply)
            if zh:  # the same names, units and numbers, each right after its solver line
                first, unit, second = zh.groups()
                assert reply == f"x = {x}，即{first}有{x}{unit}；y = {y}，即{second}有{y}{unit}。"
            else:
                en = re.fullmatch(rf"There are {x} (.+) and {y} (.+)\.", plain_reply)
                assert en, plain_reply
                first, second = en.groups()
                assert reply == f"x = {x}, so there are {x} {first}; y = {y}, so there are {y} {second}."
        else:
            assert a["MOSS"] == b["MOSS"]
    assert cages >= 10
    with pytest.raises(UsageError, match="choose one"):
        generate_dataset(
            tmp_path / "both",
            seed=0,
            options=replace(PLAIN, pair_solutions=True, restate_solutions=True),
            **SIZES,
        )


def test_wrapped_requests_change_only_training_tool_requests(dataset: DatasetInfo, tmp_path: Path) -> None:
    wrapped = generate_dataset(
        tmp_path / "wrapped", seed=0, options=replace(PLAIN, wrap_requests=True), **SIZES
    )
    assert wrapped.stats["wrap_requests"] is True and "wrap_requests" not in dataset.stats
    changed = 0
    for split, a, b, expect in paired_turns(dataset, wrapped, "Human"):
        human_a, human_b = parse_section(a["Human"], "Human"), parse_section(b["Human"], "Human")
        if human_a == human_b:
            continue
        assert split == "train" and expect["intent"] != "no_tool"
        # only words around the request: the request itself is kept (English may lower its first letter)
        assert human_a in human_b or (human_a[:1].lower() + human_a[1:]) in human_b
        changed += 1
    train_tool_turns = sum(
        1 for r in records(dataset, "train") for _, e in turns(r) if e["intent"] != "no_tool"
    )
    assert 0.35 * train_tool_turns < changed < 0.65 * train_tool_turns


def test_more_phrasings_keep_the_base_held_out_families(dataset: DatasetInfo, tmp_path: Path) -> None:
    from moss_agent.train import _templates_en, _templates_en_extra, _templates_zh, _templates_zh_extra

    base_tables = {"en": _templates_en.HUMAN, "zh": _templates_zh.HUMAN}
    extra_tables = {"en": _templates_en_extra.HUMAN_EXTRA, "zh": _templates_zh_extra.HUMAN_EXTRA}

    def is_extra(family: str) -> bool:
        lang, kind, index = _family_index(family)
        return kind in extra_tables[lang] and index >= len(base_tables[lang][kind])

    more = generate_dataset(tmp_path / "more", seed=0, options=replace(PLAIN, more_phrasings=True), **SIZES)
    extra = sum(len(t) for table in extra_tables.values() for t in table.values())
    seen_extra = check_added_families(dataset, more, extra, is_extra, lambda family: ".custom." not in family)
    assert seen_extra["train"] > 50 and seen_extra["test"] > 5


def _family_index(family: str) -> tuple[str, str, int]:
    lang, *kind, index = family.split(".")
    return lang, ".".join(kind), int(index)


def check_added_families(
    before: DatasetInfo,
    after: DatasetInfo,
    count: int,
    is_new: Callable[[str], bool],
    tracked: Callable[[str], bool],
) -> dict[str, int]:
    """Check that ``after`` adds ``count`` families to ``before``, holds out about 18 % of them and
    keeps every earlier family's status; the turns of each split that use a new family."""
    before_held, after_held = set(before.stats["held_out_families"]), set(after.stats["held_out_families"])
    assert after.stats["families"] == before.stats["families"] + count
    added = after_held - before_held
    assert before_held < after_held and all(is_new(f) for f in added)
    assert 0.1 * count < len(added) < 0.25 * count
    seen = {"train": 0, "test": 0}
    for split in ("train", "test"):
        for record in records(after, split):
            for _, expect in turns(record):
                family = expect["family"]
                if tracked(family):
                    assert (family in after_held) == (split == "test")
                seen[split] += is_new(family)
    return seen


def test_wide_phrasings_keep_the_other_held_out_families(tmp_path: Path) -> None:
    from moss_agent.train._builders import EXTRA_HUMAN, TEMPLATES, WIDE_HUMAN
    from moss_agent.train._custom import GENERIC_ASK, WIDE_GENERIC_ASK

    def is_wide(family: str) -> bool:
        lang, kind, index = _family_index(family)
        if kind.startswith("custom."):
            generic = kind.startswith("custom.generic.")
            return generic and index >= len(GENERIC_ASK[lang][kind.rsplit(".", 1)[1]])
        return index >= len(TEMPLATES[lang].HUMAN[kind]) + len(EXTRA_HUMAN[lang][kind])

    more_options = replace(PLAIN, more_phrasings=True)
    more = generate_dataset(tmp_path / "more", seed=0, options=more_options, **SIZES)
    wide = generate_dataset(
        tmp_path / "wide", seed=0, options=replace(more_options, wide_phrasings=True), **SIZES
    )
    assert wide.stats["wide_phrasings"] is True and "wide_phrasings" not in more.stats
    added_count = sum(len(t) for table in WIDE_HUMAN.values() for t in table.values())
    added_count += sum(len(t) for table in WIDE_GENERIC_ASK.values() for t in table.values())
    seen = check_added_families(
        more, wide, added_count, is_wide, lambda family: ".custom." not in family or ".generic." in family
    )
    assert seen["train"] > 80 and seen["test"] > 5


def test_wide_templates_fill_the_slots_of_their_kind() -> None:
    import string

    from moss_agent.train._builders import EXTRA_HUMAN, TEMPLATES, WIDE_HUMAN
    from moss_agent.train._custom import GENERIC_ASK, WIDE_GENERIC_ASK

    def slots(template: str) -> frozenset[str]:
        return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)

    for lang, table in WIDE_HUMAN.items():
        assert list(table) == list(TEMPLATES[lang].HUMAN)  # every kind, same order
        for kind, templates in table.items():
            known = {slots(t) for other in TEMPLATES for t in TEMPLATES[other].HUMAN.get(kind, [])}
            known |= {slots(t) for other in EXTRA_HUMAN for t in EXTRA_HUMAN[other].get(kind, [])}
            older = set(TEMPLATES[lang].HUMAN[kind]) | set(EXTRA_HUMAN[lang][kind])
            assert len(set(templates)) == len(templates) >= 6 and not older & set(templates)
            assert all(slots(t) in known for t in templates), kind
    for lang, table in WIDE_GENERIC_ASK.items():
        for key, templates in table.items():
            known = {slots(t) for t in GENERIC_ASK[lang][key]}
            assert {slots(t) for t in templates} <= known
            assert not set(templates) & set(GENERIC_ASK[lang][key])


def test_extra_templates_and_wrappers_avoid_the_banned_strings() -> None:
    from moss_agent.train import _templates_en_extra, _templates_zh_extra, _wrappers
    from moss_agent.train._builders import WIDE_HUMAN
    from moss_agent.train._custom import WIDE_GENERIC_ASK

    texts = [t for m in (_templates_en_extra, _templates_zh_extra) for v in m.HUMAN_EXTRA.values() for t in v]
    texts += [t for table in WIDE_HUMAN.values() for v in table.values() for t in v]
    texts += [t for table in WIDE_GENERIC_ASK.values() for v in table.values() for t in v]
    texts += [w for table in (_wrappers._PREFIX, _wrappers._SUFFIX) for v in table.values() for w in v]
    assert len(texts) > 500
    for module in (_templates_en_extra, _templates_zh_extra):  # 8 per request kind, 5 per follow-up/chat
        assert {
            k: len(v)
            for k, v in module.HUMAN_EXTRA.items()
            if len(v) != (5 if "fu_" in k or "chat" in k else 8)
        } == {}
    assert not [t for t in texts if any(b in t.lower() for b in BANNED_STRINGS)]


def test_clause_cuts_split_after_delimiters_only() -> None:
    from moss_agent.train._clauses import clause_cuts

    template = "一辆车{t}小时行驶了{d}公里，平均速度是多少？"
    assert [template[c:] for c in clause_cuts(template)] == ["平均速度是多少？"]
    english = "A pipe is {a}.5 m long, {c}.{d} kg. How long are {b} of them?"
    assert [english[c:] for c in clause_cuts(english)] == [
        "{c}.{d} kg. How long are {b} of them?",
        "How long are {b} of them?",
    ]
    assert clause_cuts("What is {a} plus {b}?") == []


def test_spliced_templates_keep_every_placeholder_once() -> None:
    import random

    from moss_agent.train._builders import TEMPLATES
    from moss_agent.train._clauses import splice_template

    rng = random.Random(0)
    spliced = 0
    for module in TEMPLATES.values():
        for templates in module.HUMAN.items():
            for first in templates[1]:
                result = splice_template(rng, first, templates[1])
                if result is None:
                    continue
                spliced += 1
                assert result not in templates[1]
                assert sorted(re.findall(r"\{(\w+)\}", result)) == sorted(re.findall(r"\{(\w+)\}", first))
    assert spliced >= 40


def test_mixed_clauses_change_only_training_requests(dataset: DatasetInfo, tmp_path: Path) -> None:
    mixed = generate_dataset(tmp_path / "mixed", seed=0, options=replace(PLAIN, mix_clauses=True), **SIZES)
    assert mixed.stats["mix_clauses"] is True and "mix_clauses" not in dataset.stats
    changed = 0
    # the same request (same call, same results, same reply), other words
    for split, a, b, expect in paired_turns(dataset, mixed, "Human"):
        if a["Human"] != b["Human"]:
            assert split == "train" and expect["intent"] != "no_tool"
            changed += 1
    assert changed >= 20


def test_quoted_counts_change_only_cage_thoughts(dataset: DatasetInfo, tmp_path: Path) -> None:
    quoted = generate_dataset(tmp_path / "quoted", seed=0, options=replace(PLAIN, quote_counts=True), **SIZES)
    assert quoted.stats["quote_counts"] is True and "quote_counts" not in dataset.stats
    cages = 0
    for _, a, b, expect in paired_turns(dataset, quoted, "Inner Thoughts"):
        if ".solve.cage." in expect["family"] and expect["tool"] == "Solve":
            cages += 1
            # the two counts of the call, quoted in the thoughts before the names
            heads, legs = re.findall(r"=(\d+)", commands(a).invocations[0].args[0])
            thoughts = parse_section(b["Inner Thoughts"], "Inner Thoughts")
            assert re.search(rf"(已知|[Tt]here are ){heads}\D+{legs}\D", thoughts), thoughts
        else:
            assert a["Inner Thoughts"] == b["Inner Thoughts"]
    assert cages >= 10


def test_shared_phrasings_ask_calculate_in_custom_tool_words(dataset: DatasetInfo, tmp_path: Path) -> None:
    from moss_agent.train._custom import ARCHETYPES

    asks = {
        (a.key, lang): tuple(a.ask_en if lang == "en" else a.ask_zh)
        for a in ARCHETYPES
        if a.key in {"sum", "product"}
        for lang in ("en", "zh")
    }
    shared = generate_dataset(
        tmp_path / "shared", seed=0, options=replace(PLAIN, shared_phrasings=True), **SIZES
    )
    assert shared.stats["shared_phrasings"] is True and "shared_phrasings" not in dataset.stats
    changed = 0
    for split, a, b, expect in paired_turns(dataset, shared, "Human"):
        if a["Human"] == b["Human"]:
            continue
        # the same Calculate call, results and reply; only the request's words are the custom tool's
        assert split == "train" and expect["tool"] == "Calculate"
        x, op, y = re.fullmatch(r"(-?[\d.]+)([+*])(-?[\d.]+)", expect["argument"]).groups()
        key = {"+": "sum", "*": "product"}[op]
        human = parse_section(b["Human"], "Human")
        lang = "zh" if re.search(r"[\u4e00-\u9fff]", human) else "en"
        filled = {t.format(p0=x, p1=y) for t in asks[(key, lang)]}
        assert human in filled | {h[:1].upper() + h[1:] for h in filled}, human
        changed += 1
    assert changed >= 3


def test_quoted_api_changes_only_custom_call_thoughts(dataset: DatasetInfo, tmp_path: Path) -> None:
    quoted = generate_dataset(tmp_path / "api", seed=0, options=replace(PLAIN, quote_api=True), **SIZES)
    assert quoted.stats["quote_api"] is True and "quote_api" not in dataset.stats
    calls = 0
    for a, b in custom_call_turns(dataset, quoted):
        calls += 1
        thoughts = parse_section(b["Inner Thoughts"], "Inner Thoughts")
        name = commands(b).invocations[0].name
        # the tool's own switch line, then the thoughts the plain data has
        assert re.match(rf"[^\n;；]+: enabled\. API: {name}\([^)]*\)[;；]", thoughts), thoughts
        assert thoughts.lower().endswith(parse_section(a["Inner Thoughts"], "Inner Thoughts").lower())
    assert calls >= 10


def test_novel_names_rename_only_training_custom_tools(dataset: DatasetInfo, tmp_path: Path) -> None:
    novel = generate_dataset(tmp_path / "novel", seed=0, options=replace(PLAIN, novel_names=True), **SIZES)
    assert novel.stats["novel_names"] is True and "novel_names" not in dataset.stats
    assert_same_held_out_splits(dataset, novel)
    builtin = {p.name for p in builtin_plugins()}
    renamed = kept = 0
    for a_record, b_record in zip(records(dataset, "train"), records(novel, "train"), strict=True):
        a_names = re.findall(r"API: (\w+)\(", a_record["meta_instruction"])
        b_names = re.findall(r"API: (\w+)\(", b_record["meta_instruction"])
        assert len(a_names) == len(b_names)
        for old, new in zip(a_names, b_names):
            if old in builtin:
                assert new == old
                continue
            renamed, kept = renamed + (new != old), kept + (new == old)
            assert new.isidentifier() and new not in builtin
            assert not any(banned in new.lower() for banned in BANNED_STRINGS)
        # every call names a declared tool (renamed with its declaration)
        for fields, _ in turns(b_record):
            for invocation in commands(fields).invocations:
                assert invocation.name in b_names
    assert renamed >= 10 and kept >= 10  # about half of them


def test_generator_cli_and_recipe_share_one_set_of_defaults(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from moss_agent.cli import app
    from moss_agent.train.recipe import RecipeConfig

    assert RecipeConfig(out="").data_options() == DataOptions()
    by_cli = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["train", "data", "--out", str(by_cli), "--n-train", "40", "--n-test", "20", "--n-valid", "5"]
    )
    assert result.exit_code == 0, result.output
    by_function = generate_dataset(tmp_path / "function", n_train=40, n_test=20, n_valid=5)
    for name in FILES:
        assert (by_cli / name).read_bytes() == (by_function.out_dir / name).read_bytes(), name


def test_api_thoughts_name_the_custom_tool_by_its_api_text(dataset: DatasetInfo, tmp_path: Path) -> None:
    api = generate_dataset(tmp_path / "api", seed=0, options=replace(PLAIN, api_thoughts=True), **SIZES)
    assert api.stats["api_thoughts"] is True and "api_thoughts" not in dataset.stats
    calls = 0
    for a, b in custom_call_turns(dataset, api):
        calls += 1
        thoughts = parse_section(b["Inner Thoughts"], "Inner Thoughts")
        invocation = commands(b).invocations[0]
        # the API text exactly as the switch line has it, after the same "API: "
        (api_text,) = re.findall(r"API: (\w+\([^)]*\))", thoughts)
        assert api_text.startswith(invocation.name + "(")
        assert b["Inner Thoughts"] != a["Inner Thoughts"]
    assert calls >= 10


def test_switch_languages_changes_the_language_of_later_training_turns(
    dataset: DatasetInfo, tmp_path: Path
) -> None:
    switched = generate_dataset(
        tmp_path / "languages", seed=0, options=replace(PLAIN, switch_languages=True), **SIZES
    )
    assert switched.stats["switch_languages"] is True and "switch_languages" not in dataset.stats

    def turn_languages(path: Path) -> list[list[str]]:
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            data = json.loads(line)
            humans = [parse_section(turn["Human"], "Human") for turn in data["chat"].values()]
            out.append(["zh" if re.search(r"[\u4e00-\u9fff]", h) else "en" for h in humans])
        return out

    def mixed(path: Path) -> int:
        return sum(len(set(langs)) > 1 for langs in turn_languages(path))

    assert mixed(switched.out_dir / "train.jsonl") >= 8 > mixed(dataset.out_dir / "train.jsonl")
    assert_same_held_out_splits(dataset, switched)
    # a switched turn is whole in its language: the reply follows the question's language
    for line in (switched.out_dir / "train.jsonl").read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        for turn in data["chat"].values():
            human = parse_section(turn["Human"], "Human")
            reply = parse_section(turn["MOSS"], "MOSS")
            if not re.search(r"[\u4e00-\u9fff]", human) and re.search(r"[A-Za-z]{3,}", human):
                assert not re.search(r"[\u4e00-\u9fff]{2}", reply), (human, reply)


def test_context_turns_put_an_earlier_turn_before_one_turn_training_conversations(
    dataset: DatasetInfo, tmp_path: Path
) -> None:
    context = generate_dataset(
        tmp_path / "context", seed=0, options=replace(PLAIN, context_turns=True), **SIZES
    )
    assert context.stats["context_turns"] is True and "context_turns" not in dataset.stats
    assert_same_held_out_splits(dataset, context)
    one_turn = ("calculate", "solve", "search", "text2image", "no_tool", "disabled")
    added, other_language, called, compressed, earlier_tools = 0, 0, 0, 0, set()
    for plain, record in zip(records(dataset, "train"), records(context, "train"), strict=True):
        if plain["num_turns"] == record["num_turns"]:
            assert plain == record  # untouched conversations stay as they were
            continue
        added += 1
        assert record["intent"] in one_turn and (plain["num_turns"], record["num_turns"]) == (1, 2)
        # the conversation's own turn is the same turn: the earlier turn draws from its own stream
        assert (
            record["chat"]["turn_2"] == plain["chat"]["turn_1"] and record["expect"][1] == plain["expect"][0]
        )
        assert record["family"] == plain["family"] and record["lang"] == plain["lang"]
        earlier, expect = turns(record)[0]
        enabled = parse_meta_instruction(record["meta_instruction"]).enabled
        assert enabled >= parse_meta_instruction(plain["meta_instruction"]).enabled
        calls = commands(earlier).invocations
        if calls:  # its tool is enabled: never the tool a disabled-tool turn needs off
            assert calls[0].name == expect["tool"] and expect["tool"] in enabled
            earlier_tools.add(expect["tool"])
            called += 1
            compressed += earlier["Tool Responses"] == "<|Results|>:\nNone\n<eor>\n"
        other_language += expect["family"][:2] != record["lang"]
    eligible = sum(r["intent"] in one_turn for r in records(dataset, "train"))
    assert 0.15 * eligible <= added <= 0.45 * eligible  # about 30 %
    assert 0.25 * added <= other_language <= 0.75 * added  # about half
    assert 0.5 * called <= compressed < called  # about 75 %, as the agent sends earlier turns
    assert earlier_tools >= {"Calculate", "Solve", "Search"}


def test_wrapped_requests_take_the_language_of_their_own_turn(tmp_path: Path) -> None:
    options = replace(PLAIN, context_turns=True, switch_languages=True, wrap_requests=True)
    info = generate_dataset(tmp_path / "wrapped", seed=0, options=options, **SIZES)
    mixed = 0
    for record in records(info, "train"):
        languages = {expect["family"][:2] for _, expect in turns(record)}
        mixed += len(languages) > 1
        for fields, expect in turns(record):
            human = parse_section(fields["Human"], "Human")
            if expect["family"].startswith("en."):  # no Chinese greeting or thanks around an English request
                assert not re.search(r"[\u4e00-\u9fff]", human), human
    assert mixed >= 20


def test_phrased_queries_follow_the_thoughts_and_keep_the_held_out_expectations(
    dataset: DatasetInfo, tmp_path: Path
) -> None:
    from moss_agent.train.heldout import heldout_suite

    phrased = generate_dataset(
        tmp_path / "phrased", seed=0, options=replace(PLAIN, phrase_queries=True), **SIZES
    )
    assert phrased.stats["phrase_queries"] is True and "phrase_queries" not in dataset.stats
    english = 0
    for _, a, b, _ in paired_turns(dataset, phrased, "Commands", "Tool Responses"):
        calls = [c for c in commands(a).invocations if c.name == "Search"]
        if not calls or not calls[0].args[0].isascii():
            assert a == b
            continue
        english += 1
        (old,), (new,) = calls[0].args, commands(b).invocations[0].args
        thoughts = parse_section(b["Inner Thoughts"], "Inner Thoughts")
        # "Cormouth population" -> "population of Cormouth", as the thoughts say it
        assert new != old and f" {new}" in thoughts and old.split()[0] in new.split(" of ", 1)[1]
    assert english >= 5
    # a held-out suite reads the same expectations (the entity's first word) from either query form
    suites = [
        heldout_suite(d.out_dir / "test.jsonl", d.out_dir / "corpus.jsonl", tmp_path / f"{i}.jsonl")
        for i, d in enumerate((dataset, phrased))
    ]
    expects = [[json.loads(line)["expect"] for line in s.read_text().splitlines()] for s in suites]
    assert expects[0] == expects[1]
    assert any("keywords" in e for e in expects[0])


def test_custom_decoys_declare_uncalled_tools_in_built_in_training_conversations(
    dataset: DatasetInfo, tmp_path: Path
) -> None:
    from moss_agent.protocol import builtin_plugins, parse_meta_instruction
    from moss_agent.train.data import NOT_DECOYS

    decoyed = generate_dataset(
        tmp_path / "decoys", seed=0, options=replace(PLAIN, custom_decoys=True), **SIZES
    )
    assert decoyed.stats["custom_decoys"] is True and "custom_decoys" not in dataset.stats
    assert_same_held_out_splits(dataset, decoyed)
    builtin = {p.name for p in builtin_plugins()}
    changed = 0
    for plain, other in zip(records(dataset, "train"), records(decoyed, "train"), strict=True):
        assert plain["chat"] == other["chat"]  # only the meta instruction may differ
        if plain["meta_instruction"] == other["meta_instruction"]:
            continue
        changed += 1
        meta = parse_meta_instruction(other["meta_instruction"])
        declared = [p for p in meta.plugins if p.name not in builtin]
        assert 1 <= len(declared) <= 2 and plain["intent"] != "custom"
        before = parse_meta_instruction(plain["meta_instruction"]).plugins
        assert not [p for p in before if p.name not in builtin]  # no custom tool before
        assert all(p.name in meta.enabled for p in declared)
        called = {c.name for turn, _ in turns(other) for c in commands(turn).invocations}
        assert called <= builtin  # never called
        labels = " ".join(p.label for p in declared).lower()
        assert not any(word in labels for word in ("dictionary", "population", "currency", "sum", "multipl"))
    assert 0.05 * SIZES["n_train"] < changed < 0.25 * SIZES["n_train"]
    assert NOT_DECOYS == {"currency", "population", "define"}


def test_wide_values_make_up_cities_and_spelled_words_the_request_then_holds(
    dataset: DatasetInfo, tmp_path: Path
) -> None:
    from moss_agent.protocol import builtin_plugins
    from moss_agent.train import _vocab

    wide = generate_dataset(
        tmp_path / "wide",
        seed=0,
        options=replace(PLAIN, wide_values=True),
        **{**SIZES, "n_train": 1200},
    )
    assert wide.stats["wide_values"] is True and "wide_values" not in dataset.stats
    assert_same_held_out_splits(dataset, wide)  # the held-out splits do not depend on n_train
    lists = ("CITIES_EN", "CITIES_ZH", "WORDS", "LANGS", "FOODS", "CAPITALS", "BOOKS", "PHRASES", "RATES")
    known = {str(value) for name in lists for value in getattr(_vocab, name)}
    builtin = {p.name for p in builtin_plugins()}
    made_up, listed = [], 0
    for record in records(wide, "train"):
        for turn, _ in turns(record):
            for call in commands(turn).invocations:
                if call.name in builtin:
                    continue
                for value in [*call.args, *call.kwargs.values()]:
                    if not isinstance(value, str) or len(value) < 3 or not value.isalpha():
                        continue
                    if value in known:
                        listed += 1
                    elif value[0].isupper() or value.endswith("市") or value.islower():
                        made_up.append((value, turn["Human"]))
    assert len(made_up) >= 10 and listed >= 10, (made_up, listed)  # about half and half
    assert all(value in human for value, human in made_up)  # the request holds what the call copies
    assert any(value.endswith("市") for value, _ in made_up) and any(v[0].isupper() for v, _ in made_up)
