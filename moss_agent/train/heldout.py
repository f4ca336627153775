"""Turn the generator's held-out test split into an eval suite for ``moss-agent eval``.

Each turn of each test conversation becomes a case: the earlier turns are its history,
the generator's ``expect`` record gives the right tool, the argument check and the
answer. The search corpus is copied beside the suite, where the runner looks for it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from moss_agent.protocol import builtin_plugins, parse_meta_instruction, parse_section

__all__ = ["heldout_suite"]


def _keyword(tool: str, argument: str) -> str:
    if tool == "Search":
        return argument.split()[0]
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
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases), encoding="utf-8")
    shutil.copy2(corpus, out_file.with_name(out_file.stem + ".corpus.jsonl"))
    return out_file
