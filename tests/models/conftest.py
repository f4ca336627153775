"""Tiny MOSS-format checkpoints built once per test session (nothing is downloaded)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from moss_agent.protocol import (
    COMMANDS_TAG,
    END_OF_COMMANDS,
    END_OF_HUMAN,
    END_OF_MESSAGE,
    END_OF_RESULTS,
    END_OF_THOUGHTS,
    HUMAN_TAG,
    INNER_THOUGHTS_TAG,
    MOSS_TAG,
    RESULTS_TAG,
)

META = (
    "You are an AI assistant whose name is MOSS.\n"
    "Capabilities and tools that MOSS can possess.\n"
    "- Inner thoughts: enabled.\n"
    "- Web search: enabled. API: Search(query)\n"
    "- Calculator: enabled. API: Calculate(expression)\n"
    "- Equation solver: disabled.\n"
)

#: The tiny "memorizing" model continues these texts greedily from any prefix.
PLUGIN_TURN = (
    f"{HUMAN_TAG}: What is 12 times 30?{END_OF_HUMAN}\n"
    f"{INNER_THOUGHTS_TAG}: I need the calculator for this{END_OF_THOUGHTS}\n"
    f'{COMMANDS_TAG}: Calculate("12*30"){END_OF_COMMANDS}\n'
    f"{RESULTS_TAG}:\nCalculate(\"12*30\") => '360'\n{END_OF_RESULTS}\n"
    f"{MOSS_TAG}: 12 times 30 is 360. Anything else?{END_OF_MESSAGE}\n"
)
CHAT_TURN = (
    f"{HUMAN_TAG}: 你好{END_OF_HUMAN}\n"
    f"{INNER_THOUGHTS_TAG}: None{END_OF_THOUGHTS}\n"
    f"{COMMANDS_TAG}: None{END_OF_COMMANDS}\n"
    f"{RESULTS_TAG}:\nNone\n{END_OF_RESULTS}\n"
    f"{MOSS_TAG}: 你好！我是MOSS，很高兴认识你。{END_OF_MESSAGE}\n"
)


def checkpoint_with_config(source: Path, folder: Path, tokenizer: Any = None, **entries: Any) -> Path:
    """A copy of the checkpoint ``source`` with ``entries`` added to its config.json (and
    ``tokenizer`` instead of its own): a checkpoint whose config and tokenizer disagree.
    """
    import shutil

    shutil.copytree(source, folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **entries}))
    return folder


def moss_lines() -> list[str]:
    """A few hundred lines of MOSS-format text to train the tiny tokenizer on."""
    topics = [
        "weather in Shanghai",
        "price of rice",
        "capital of France",
        "area of a circle",
        "history of tea",
    ]
    lines = [META, PLUGIN_TURN, CHAT_TURN]
    for i in range(60):
        a, b = 3 * i + 7, 11 * i + 2
        topic = topics[i % len(topics)]
        lines += [
            f"{HUMAN_TAG}: What is {a} plus {b}? Also tell me about the {topic}.{END_OF_HUMAN}",
            f"{INNER_THOUGHTS_TAG}: The user asks about {topic}; I should search and calculate{END_OF_THOUGHTS}",
            f'{COMMANDS_TAG}: Search("{topic}"), Calculate("{a}+{b}"){END_OF_COMMANDS}',
            f"{RESULTS_TAG}:\nSearch(\"{topic}\") =>\n<|1|>: 'Facts about the {topic}.'\n"
            f"Calculate(\"{a}+{b}\") => '{a + b}'\n{END_OF_RESULTS}",
            f"{MOSS_TAG}: {a} plus {b} is {a + b}. 关于{topic}，这是我找到的。{END_OF_MESSAGE}",
        ]
    return lines


@pytest.fixture(scope="session")
def turns() -> SimpleNamespace:
    """The MOSS texts of this file, and prompts cut from them (what the tiny model continues)."""

    def upto(text: str, marker: str) -> str:
        return text[: text.index(marker) + len(marker)]

    return SimpleNamespace(
        meta=META,
        plugin=PLUGIN_TURN,
        chat=CHAT_TURN,
        upto=upto,
        # prompts named by what the memorizing model writes next
        thoughts=upto(PLUGIN_TURN, f"{END_OF_HUMAN}\n"),
        plugin_reply=upto(PLUGIN_TURN, f"{MOSS_TAG}:"),
        chat_reply=upto(CHAT_TURN, f"{MOSS_TAG}:"),
    )


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from moss_agent.models.tiny import build_tiny_tokenizer

    return build_tiny_tokenizer(moss_lines(), vocab_size=600)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_tokenizer) -> Path:
    """A 2-layer MOSS-format checkpoint overfit on PLUGIN_TURN and CHAT_TURN."""
    from moss_agent.models.tiny import build_tiny_moss_checkpoint

    folder = tmp_path_factory.mktemp("tiny-moss")
    return build_tiny_moss_checkpoint(
        folder, tokenizer=tiny_tokenizer, memorize=[PLUGIN_TURN, CHAT_TURN], memorize_steps=120
    )


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory, tiny_tokenizer) -> Path:
    """A 2-layer MOSS-format checkpoint with random weights (long, arbitrary generations)."""
    from moss_agent.models.tiny import build_tiny_moss_checkpoint

    folder = tmp_path_factory.mktemp("random-moss")
    return build_tiny_moss_checkpoint(folder, tokenizer=tiny_tokenizer, seed=1)


@pytest.fixture(scope="session")
def tiny_loaded(tiny_checkpoint):
    from moss_agent.models.loading import load_model

    return load_model(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def random_loaded(random_checkpoint):
    from moss_agent.models.loading import load_model

    return load_model(random_checkpoint, device="cpu")


@pytest.fixture
def tiny_engine(tiny_loaded):
    from moss_agent.models.engine import GenerationEngine

    return GenerationEngine(tiny_loaded)


@pytest.fixture
def random_engine(random_loaded):
    from moss_agent.models.engine import GenerationEngine

    return GenerationEngine(random_loaded)


@pytest.fixture
def scripted_generate(random_engine, monkeypatch):
    """``script(respond)`` makes ``random_engine.generate`` answer ``respond(prompt)`` and returns
    the list that receives the keywords of every call (``constrain_calls``, ``call_types``, ...)."""
    from types import SimpleNamespace

    def script(respond):
        calls: list[dict[str, Any]] = []

        def generate(prompt: str, **keywords: Any) -> SimpleNamespace:
            calls.append(keywords)
            return SimpleNamespace(
                text=respond(prompt),
                stop="<eoc>",
                finish_reason="stop",
                prompt_tokens=1,
                completion_tokens=1,
                cached_tokens=0,
            )

        monkeypatch.setattr(random_engine, "generate", generate)
        return calls

    return script


@pytest.fixture
def greedy():
    from moss_agent.models.engine import SamplingParams

    return SamplingParams(do_sample=False, max_new_tokens=40)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread; two threads on a busy 2-core machine stall."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
