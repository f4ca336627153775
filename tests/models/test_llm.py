"""MossLLM, the LangChain LLM, on the tiny MOSS-format checkpoint."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from moss_agent.errors import UsageError
from moss_agent.models.llm import MossLLM
from moss_agent.protocol import END_OF_COMMANDS, END_OF_MESSAGE, STOPS_AFTER_COMMANDS

GREEDY: dict[str, Any] = {"do_sample": False, "max_new_tokens": 40}


class TokenRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


class AsyncTokenRecorder(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


@pytest.fixture
def llm(tiny_engine) -> MossLLM:
    return MossLLM.from_engine(tiny_engine, **GREEDY)


def test_invoke(llm, turns):
    assert llm.invoke(turns.plugin_reply) == " 12 times 30 is 360. Anything else?"


def test_lazy_loading_from_a_path(tiny_checkpoint, turns):
    llm = MossLLM(model=str(tiny_checkpoint), device="cpu", **GREEDY)
    assert llm._engine is None
    assert llm.invoke(turns.plugin_reply) == " 12 times 30 is 360. Anything else?"
    assert llm.engine.loaded.name == str(tiny_checkpoint)


def test_stop_is_honored_and_ends_generation(llm, turns):
    full = llm.invoke(turns.plugin_reply, max_new_tokens=60)
    stop = "30 is"
    assert stop in full
    result = llm.generate([turns.plugin_reply], stop=[stop])
    generation = result.generations[0][0]
    assert generation.text == full[: full.index(stop)]
    info = generation.generation_info
    assert info["finish_reason"] == "stop"
    assert info["stop"] == stop
    assert info["completion_tokens"] < GREEDY["max_new_tokens"]


def test_protocol_stop_token(llm, turns):
    expected = turns.plugin[len(turns.thoughts) : turns.plugin.index(END_OF_COMMANDS)]
    assert llm.invoke(turns.thoughts, stop=list(STOPS_AFTER_COMMANDS)) == expected


def test_stream_fires_callbacks_and_matches_invoke(llm, turns):
    expected = llm.invoke(turns.chat_reply)
    recorder = TokenRecorder()
    chunks = list(llm.stream(turns.chat_reply, config={"callbacks": [recorder]}))
    assert "".join(chunks) == expected
    assert "".join(recorder.tokens) == expected
    assert len(recorder.tokens) > 3
    assert END_OF_MESSAGE not in "".join(chunks)


def test_kwargs_override_sampling(llm, turns):
    full = llm.invoke(turns.plugin_reply)
    short = llm.invoke(turns.plugin_reply, max_new_tokens=3)
    assert full.startswith(short)
    assert len(short) < len(full)
    result = llm.generate([turns.plugin_reply], max_new_tokens=3).generations[0][0]
    assert result.generation_info["finish_reason"] == "length"
    assert result.generation_info["completion_tokens"] == 3


def test_unknown_kwarg_is_a_usage_error(llm, turns):
    with pytest.raises(UsageError, match="temprature"):
        llm.invoke(turns.plugin_reply, temprature=0.1)


async def test_ainvoke_and_astream(llm, turns):
    expected = llm.invoke(turns.plugin_reply)
    assert await llm.ainvoke(turns.plugin_reply) == expected
    recorder = AsyncTokenRecorder()
    chunks = [chunk async for chunk in llm.astream(turns.plugin_reply, config={"callbacks": [recorder]})]
    assert "".join(chunks) == expected
    assert "".join(recorder.tokens) == expected


async def test_astream_stopped_early_releases_the_engine(llm, turns):
    async for _ in llm.astream(turns.chat_reply):
        break
    assert await llm.ainvoke(turns.plugin_reply) == " 12 times 30 is 360. Anything else?"


def test_batch_matches_invoke(llm, turns):
    prompts = [turns.plugin_reply, turns.chat_reply, turns.thoughts]
    expected = [llm.invoke(prompt, stop=[END_OF_COMMANDS]) for prompt in prompts]
    assert llm.batch(prompts, stop=[END_OF_COMMANDS]) == expected


def test_identifying_params_and_type(llm):
    assert llm._llm_type == "moss"
    params = llm._identifying_params
    assert params["do_sample"] is False
    assert params["temperature"] == 0.7
    assert params["top_p"] == 0.8
    assert params["repetition_penalty"] == 1.02


def test_defaults_are_moss_sampling():
    llm = MossLLM(model="unused")
    assert (llm.temperature, llm.top_p, llm.repetition_penalty, llm.max_new_tokens, llm.do_sample) == (
        0.7,
        0.8,
        1.02,
        512,
        True,
    )
    assert llm._engine is None  # nothing loaded until used
