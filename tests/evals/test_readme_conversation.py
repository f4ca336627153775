"""``bench/readme_conversation.py``: the README's conversation, scored per turn."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "readme_conversation.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("readme_conversation", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_number_sets_pair_the_probe_in_order(bench):
    sets = bench.number_sets(40)
    assert len(sets) == 40 and sets[0] == ((23, 12), (1234, 5678))  # the README's own numbers first
    assert len(bench.number_sets(3)) == 3


def test_the_readme_conversation_is_right_with_the_embedded_model(bench):
    # the README's own numbers: both turns right, through real Solve and Calculate calls
    right = {
        "sets": 1,
        "cage call": 1,
        "cage answer": 1,
        "product call": 1,
        "product answer": 1,
        "product reply clean": 1,
        "both turns": 1,
    }
    assert bench.score(None, 1) == right
    assert bench.score(None, 1, one_by_one=True) == right  # as `ask` generates
