"""Turn the generator's held-out test split into an eval suite for ``moss-agent eval``.

Each turn of each test conversation becomes a case: the earlier turns are its history,
the generator's ``expect`` record gives the right tool, the argument check and the
answer. The search corpus is copied beside the suite, where the runner looks for it.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

from moss_agent.protocol import builtin_plugins, parse_commands, parse_meta_instruction, parse_section

__all__ = ["after_call_suite", "heldout_suite", "novel_name_suite"]


def _keyword(tool: str, argument: str) -> str:
    if tool == "Search":
        # the entity's first word: "Cormouth population", or "population of Cormouth" (phrase_queries)
        words = argument.split()
        if len(words) > 2 and words[1] == "of":
            return words[2]
        if len(words) > 3 and words[2] == "of":  # "founding year of X"
            return words[3]
        return words[0]
    return re.split(r"[，,]", argument)[0].strip() or argument


def _argument_check(tool: str | None, argument: str | None, kwargs: dict[str, Any] | None) -> dict[str, Any]:
    from moss_agent.tools.calculator import CalculationError, evaluate_expression
    from moss_agent.tools.solver import solve

    if tool is None:
        return {}
    if tool == "Calculate" and argument:
        try:
            return {"value": evaluate_expression(argument)}
        except CalculationError:
            return {}
    if tool == "Solve" and argument:
        lines = [line.split(" = ", 1)[1] for line in solve(argument).splitlines() if " = " in line]
        return {"solution_values": lines} if lines else {}
    if tool in ("Search", "Text2Image") and argument:
        return {"keywords": [_keyword(tool, argument)]}
    if kwargs is not None:
        return {"args": kwargs}
    return {}


def _custom_tools(meta_text: str, results: dict[str, str]) -> list[dict[str, Any]]:
    builtin = {p.name for p in builtin_plugins()}
    tools = []
    for plugin in parse_meta_instruction(meta_text).plugins:
        if plugin.name in builtin or not plugin.api:
            continue
        params = [p.strip() for p in plugin.api.split("(", 1)[1].rstrip(")").split(",") if p.strip()]
        tools.append(
            {
                "name": plugin.name,
                "description": plugin.label,
                "parameters": {"type": "object", "properties": {p: {} for p in params}},
                "result": results.get(plugin.name, "Done."),
            }
        )
    return tools


def _inline_values(results_text: str) -> dict[str, str]:
    """Tool name → the quoted value of its inline Results line (``name(…) => 'v'``)."""
    values = {}
    for match in re.finditer(r"^([A-Za-z_]\w*)\(.*\) => '(.*)'$", results_text, flags=re.M):
        values[match.group(1)] = match.group(2)
    return values


def _write_suite(cases: list[dict[str, Any]], out_file: Path, corpus: Path | None) -> Path:
    """Write the cases as a JSONL suite, its corpus (if any) beside it, where the runner looks."""
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases), encoding="utf-8")
    if corpus is not None:
        shutil.copy2(corpus, out_file.with_name(out_file.stem + ".corpus.jsonl"))
    return out_file


def heldout_suite(test_file: Path, corpus: Path, out_file: Path) -> Path:
    """Write the eval suite of a generated test split; return its path."""
    cases = []
    for line in test_file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        meta = parse_meta_instruction(data["meta_instruction"])
        turns = [data["chat"][k] for k in sorted(data["chat"], key=lambda k: int(k.split("_")[1]))]
        history: list[dict[str, str]] = []
        for index, (turn, expect) in enumerate(zip(turns, data["expect"])):
            human = parse_section(turn["Human"], "Human")
            tool = expect.get("tool")
            results = _inline_values(turn["Tool Responses"])
            cases.append(
                {
                    "id": f"heldout-{data['conversation_id']}-t{index + 1}",
                    "messages": [*history, {"role": "user", "content": human}],
                    "plugins": sorted(meta.enabled),
                    "tools": _custom_tools(data["meta_instruction"], results),
                    "expect": {
                        "tool": tool,
                        **_argument_check(tool, expect.get("argument"), expect.get("kwargs")),
                    },
                    "answer": [a for a in expect.get("answer") or [] if a.strip()],
                    "lang": data.get("lang"),
                    "category": expect.get("intent") or data.get("intent"),
                    "family": expect.get("family"),
                }
            )
            history += [
                {"role": "user", "content": human},
                {"role": "assistant", "content": parse_section(turn["MOSS"], "MOSS")},
            ]
    return _write_suite(cases, out_file, corpus)


def _novel_names(old: list[str], rng: random.Random) -> dict[str, str]:
    """A distinct made-up name for each old name, clear of banned text."""
    from moss_agent.train._custom import novel_identifier
    from moss_agent.train.data import is_clean

    names: dict[str, str] = {}
    for name in old:
        names[name] = novel_identifier(rng, lambda n: n in names.values() or not is_clean(n))
    return names


def _rename(pattern: re.Pattern[str], names: dict[str, str], text: str) -> str:
    return pattern.sub(lambda match: names[match.group(1)], text)


def novel_name_suite(suite_file: Path, out_file: Path, seed: int = 0) -> Path:
    """Write the cases of a suite that declare custom tools, each tool renamed to made-up words.

    The generator draws its custom tools' names from a small vocabulary (``convert_currency``),
    which a model can recall instead of reading; a tool bound through LangChain has a name the
    model never saw (``magic_function``). Here every declared tool gets a made-up name
    (``zorvak_plim``) in the tool list, the expected call and the user's words, so tool choice on
    this suite measures whether the model copies names from the switch line. Parameter names,
    argument values and answers stay as they were. The corpus is copied beside the new suite.
    """
    cases = []
    for line in Path(suite_file).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        case = json.loads(line)
        if not case.get("tools"):
            continue
        names = _novel_names([tool["name"] for tool in case["tools"]], random.Random(f"{seed}:{case['id']}"))
        pattern = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])")
        case["tools"] = [{**tool, "name": names[tool["name"]]} for tool in case["tools"]]
        case["plugins"] = [names.get(plugin, plugin) for plugin in case["plugins"]]
        case["messages"] = [{**m, "content": _rename(pattern, names, m["content"])} for m in case["messages"]]
        if case["expect"].get("tool") in names:
            case["expect"]["tool"] = names[case["expect"]["tool"]]
        case["id"] += "-novel"
        cases.append(case)
    corpus = Path(suite_file).with_name(Path(suite_file).stem + ".corpus.jsonl")
    return _write_suite(cases, Path(out_file), corpus if corpus.is_file() else None)


#: The built-in tools whose calls :func:`after_call_suite` puts before a case.
_EARLIER_TOOLS = ("Calculate", "Solve", "Search", "Text2Image")


def _call_turns(test_file: Path) -> list[dict[str, Any]]:
    """Every built-in call turn of a generated split: its language, tool and earlier-turn messages."""
    turns = []
    for line in test_file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        for key, expect in zip(sorted(data["chat"], key=lambda k: int(k.split("_")[1])), data["expect"]):
            turn = data["chat"][key]
            commands = parse_commands(parse_section(turn["Commands"], "Commands"))
            if expect.get("tool") not in _EARLIER_TOOLS or len(commands.invocations) != 1:
                continue
            turns.append(
                {
                    "lang": str(expect["family"]).split(".", 1)[0],
                    "tool": expect["tool"],
                    "messages": [
                        {"role": "user", "content": parse_section(turn["Human"], "Human")},
                        {
                            "role": "assistant",
                            "content": parse_section(turn["MOSS"], "MOSS"),
                            "thoughts": parse_section(turn["Inner Thoughts"], "Inner Thoughts"),
                            "calls": [commands.invocations[0].text],
                        },
                    ],
                }
            )
    return turns


def after_call_suite(suite_file: Path, test_file: Path, out_file: Path, seed: int = 0) -> Path:
    """Write the one-turn cases of a suite, each after an earlier turn that called a built-in tool.

    A case's earlier turns in a suite are no-call turns; in a conversation with the agent the turn
    before often called a tool, and a small model can copy from that call (``Calculate("1234+5678")``
    for "What is 1234 multiplied by 5678?" right after a 鸡兔同笼 ``Solve`` call). Here every case
    with one user message gets one earlier turn drawn from the call turns of ``test_file`` (the
    generated split the suite came from): a tool the case enables, in the other language half of
    the time, written with its thoughts and calls (``Message.calls``). Expectations and answers stay
    as they were and ids only gain ``-after-call``, so a case's score can be paired with the plain one.
    Cases that enable no built-in tool are left out. The corpus is copied beside the new suite.
    """
    earlier = _call_turns(Path(test_file))
    cases = []
    for line in Path(suite_file).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        case = json.loads(line)
        if len(case["messages"]) != 1:
            continue
        rng = random.Random(f"{seed}:{case['id']}")
        lang = case.get("lang") or "en"
        if rng.random() < 0.5:
            lang = "zh" if lang == "en" else "en"
        fitting = [t for t in earlier if t["tool"] in case["plugins"]]
        if not fitting:
            continue
        same_language = [t for t in fitting if t["lang"] == lang]
        chosen = rng.choice(same_language or fitting)
        case["messages"] = [*chosen["messages"], *case["messages"]]
        case["id"] += "-after-call"
        case["earlier_tool"] = chosen["tool"]
        cases.append(case)
    corpus = Path(suite_file).with_name(Path(suite_file).stem + ".corpus.jsonl")
    return _write_suite(cases, Path(out_file), corpus if corpus.is_file() else None)
