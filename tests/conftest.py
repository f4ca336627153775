from __future__ import annotations

from pathlib import Path

import pytest

#: The MOSS sample conversations shipped beside the repository (CC BY-NC; read, never copied).
SAMPLE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "moss-sft-sample"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not SAMPLE_DIR.is_dir():
        pytest.skip(f"MOSS sample conversations not found at {SAMPLE_DIR} (../shared/moss-sft-sample)")
    return SAMPLE_DIR
