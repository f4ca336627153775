"""Plugin-accuracy evals: suites, scoring, a resumable runner, reports and run comparison.

Example:
    .. code-block:: python

        from moss_agent.evals import run_eval
        from moss_agent.models.llm import MossLLM

        run = run_eval("evals/suites/smoke.jsonl", "runs/smoke", target=MossLLM(model="…", do_sample=False))
        print(run.summary["end_to_end_accuracy"])
"""

from __future__ import annotations

from moss_agent.evals.compare import Comparison, compare_results, compare_runs
from moss_agent.evals.report import regenerate_reports, render_report, write_reports
from moss_agent.evals.runner import EvalRun, EvalTarget, as_target, build_target, read_results, run_eval
from moss_agent.evals.scoring import (
    CallRecord,
    CaseResult,
    CaseScore,
    Scorer,
    mcnemar_exact,
    score_case,
    summarize,
    wilson_interval,
)
from moss_agent.evals.suite import EvalCase, Expectation, Suite, load_suite

__all__ = [
    "CallRecord",
    "CaseResult",
    "CaseScore",
    "Comparison",
    "EvalCase",
    "EvalRun",
    "EvalTarget",
    "Expectation",
    "Scorer",
    "Suite",
    "as_target",
    "build_target",
    "compare_results",
    "compare_runs",
    "load_suite",
    "mcnemar_exact",
    "read_results",
    "regenerate_reports",
    "render_report",
    "run_eval",
    "score_case",
    "summarize",
    "wilson_interval",
    "write_reports",
]
