from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from moss_agent.evals.suite import load_suite
from moss_agent.tools.calculator import evaluate_expression
from moss_agent.tools.solver import solve

SUITES = Path(__file__).resolve().parents[2] / "evals" / "suites"
README = Path(__file__).resolve().parents[2] / "README.md"


def _generator():
    spec = importlib.util.spec_from_file_location("make_readme_probe", SUITES / "make_readme_probe.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_probe_is_what_its_generator_writes() -> None:
    generated = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in _generator().cases())
    assert (SUITES / "readme-probe.jsonl").read_text(encoding="utf-8") == generated


def test_probe_keeps_the_readme_wording_and_right_answers() -> None:
    module = _generator()
    cases = [
        json.loads(line) for line in (SUITES / "readme-probe.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    readme = README.read_text(encoding="utf-8")
    first_cage = next(c for c in cases if c["category"] == "solve")["messages"][0]["content"]
    first_product = next(c for c in cases if c["category"] == "calculate")["messages"][0]["content"]
    assert f'moss-agent ask "{first_cage}" "{first_product}"' in readme  # the README's own questions first
    cage = re.compile(re.escape(module.CAGE).replace(r"\{heads\}", r"\d+").replace(r"\{legs\}", r"\d+"))
    product = re.compile(re.escape(module.PRODUCT).replace(r"\{a\}", r"\d+").replace(r"\{b\}", r"\d+"))
    for case in cases:
        text = case["messages"][0]["content"]
        if case["category"] == "solve":
            assert cage.fullmatch(text)
            values = [line.split(" = ")[1] for line in solve(case["reference"]).splitlines()]
            assert sorted(values) == sorted(case["expect"]["solution_values"])
            assert all(v.isdigit() and int(v) > 0 for v in values)
        else:
            assert product.fullmatch(text)
            assert evaluate_expression(case["reference"]) == case["expect"]["value"]
    suite = load_suite(SUITES / "readme-probe.jsonl")
    assert len(suite.cases) == 80 and suite.warnings == []
