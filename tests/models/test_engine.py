"""The generation engine on tiny MOSS-format checkpoints: stops, streaming, cache reuse, batching."""

from __future__ import annotations

import threading

import pytest

from moss_agent.errors import UsageError
from moss_agent.models.engine import GenerationEngine, SamplingParams, _IncrementalDecoder, _Stops
from moss_agent.protocol import (
    END_OF_COMMANDS,
    END_OF_MESSAGE,
    MISPLACED_ENDS,
    STOPS_AFTER_COMMANDS,
    STOPS_AFTER_REPLY,
)

GREEDY = SamplingParams(do_sample=False, max_new_tokens=40)


# --- stops -------------------------------------------------------------------------------


def test_misplaced_end_stops_when_asked(tiny_engine, turns):
    generation = tiny_engine.generate(
        turns.thoughts, stop=STOPS_AFTER_COMMANDS + MISPLACED_ENDS, params=GREEDY
    )
    # The memorized turn ends its thoughts with <eot> before any <eoc>.
    assert generation.text == "<|Inner Thoughts|>: I need the calculator for this"
    assert (generation.stop, generation.finish_reason) == ("<eot>", "stop")


def test_token_level_stop_ends_generation_right_there(tiny_engine, turns):
    prompt = turns.thoughts
    generation = tiny_engine.generate(prompt, stop=STOPS_AFTER_COMMANDS, params=GREEDY)
    expected = turns.plugin[len(prompt) : turns.plugin.index(END_OF_COMMANDS)]
    assert generation.text == expected
    assert generation.stop == END_OF_COMMANDS
    assert generation.finish_reason == "stop"
    tokenizer = tiny_engine.loaded.tokenizer
    # Exactly the tokens of the text, plus the stop token: nothing generated after it.
    assert generation.completion_tokens == len(tokenizer(expected)["input_ids"]) + 1
    assert generation.completion_tokens < GREEDY.max_new_tokens


def test_reply_stops_at_end_of_message(tiny_engine, turns):
    prompt = turns.plugin_reply
    generation = tiny_engine.generate(prompt, stop=STOPS_AFTER_REPLY, params=GREEDY)
    assert generation.text == " 12 times 30 is 360. Anything else?"
    assert generation.stop == END_OF_MESSAGE


def test_eos_stops_even_when_not_asked(tiny_engine, turns):
    prompt = turns.plugin_reply
    generation = tiny_engine.generate(prompt, params=GREEDY)
    assert generation.text == " 12 times 30 is 360. Anything else?"
    assert (generation.stop, generation.finish_reason) == (END_OF_MESSAGE, "stop")


def test_string_stop_is_trimmed_and_ends_generation(tiny_engine, turns):
    prompt = turns.plugin_reply
    generation = tiny_engine.generate(prompt, stop=["360"], params=GREEDY)
    assert generation.text == " 12 times 30 is "
    assert generation.stop == "360"
    assert generation.completion_tokens < len(
        tiny_engine.loaded.tokenizer(" 12 times 30 is 360. Anything")["input_ids"]
    )


def test_string_stop_inside_a_token_is_found(tiny_engine, turns):
    prompt = turns.plugin_reply
    generation = tiny_engine.generate(prompt, stop=["imes 3"], params=GREEDY)
    assert generation.text == " 12 t"


def test_earliest_stop_wins(tiny_engine, turns):
    prompt = turns.plugin_reply
    generation = tiny_engine.generate(prompt, stop=["else", "times"], params=GREEDY)
    assert (generation.text, generation.stop) == (" 12 ", "times")


def test_length_finish(random_engine):
    generation = random_engine.generate(
        "<|Human|>: hi", params=SamplingParams(do_sample=False, max_new_tokens=7)
    )
    assert generation.finish_reason == "length"
    assert generation.stop is None
    assert generation.completion_tokens == 7


def test_special_token_stops_are_matched_by_id(tiny_tokenizer):
    stops = _Stops(tiny_tokenizer, ["<eoc>", "\n\n", "Results"], eos_ids=set())
    assert set(stops.token_stops.values()) == {"<eoc>"}
    assert stops.find("abc\n\nd", 0) == (3, "\n\n")
    assert stops.holdback("text <eo") == 3
    assert stops.holdback("text\n") == 1
    assert stops.holdback("Resul") == 5
    assert stops.holdback("plain") == 0


# --- streaming ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt_name", "stop"),
    [
        ("thoughts", STOPS_AFTER_COMMANDS),
        ("chat_reply", STOPS_AFTER_REPLY),
        ("plugin_reply", ["is 3", "else"]),
    ],
)
def test_stream_concatenates_to_generate(tiny_engine, turns, prompt_name, stop):
    prompt = getattr(turns, prompt_name)
    expected = tiny_engine.generate(prompt, stop=stop, params=GREEDY)
    stream = tiny_engine.stream(prompt, stop=stop, params=GREEDY)
    deltas = list(stream)
    assert "".join(deltas) == expected.text
    assert stream.generation is not None
    assert stream.generation.text == expected.text
    assert stream.generation.stop == expected.stop
    assert len(deltas) > 3  # token by token, not all at the end
    assert all("\ufffd" not in delta for delta in deltas)


def test_stream_never_emits_part_of_a_stop(tiny_engine, turns):
    prompt = turns.plugin_reply
    deltas = list(tiny_engine.stream(prompt, stop=["360."], params=GREEDY))
    assert "".join(deltas) == " 12 times 30 is "
    assert not any("3" in delta and "0" in delta for delta in deltas[-2:])


def test_chinese_stream_never_splits_a_character(tiny_engine, tiny_tokenizer, turns):
    prompt = turns.chat_reply
    reply = " 你好！我是MOSS，很高兴认识你。"
    # The tiny byte-level BPE spells some of these characters with several byte tokens.
    assert len(tiny_tokenizer(reply)["input_ids"]) > len(reply) - 4
    deltas = list(tiny_engine.stream(prompt, stop=STOPS_AFTER_REPLY, params=GREEDY))
    assert "".join(deltas) == reply
    assert all("\ufffd" not in delta for delta in deltas)


def test_incremental_decoder_holds_back_partial_utf8(tiny_tokenizer):
    ids = tiny_tokenizer("高兴认识你 abc")["input_ids"]
    decoder = _IncrementalDecoder(tiny_tokenizer)
    pieces = [decoder.push(token) for token in ids]
    assert "".join(pieces) + decoder.flush() == "高兴认识你 abc"
    assert all("\ufffd" not in piece for piece in pieces)


def test_closing_a_stream_releases_the_engine(tiny_engine, turns):
    stream = tiny_engine.stream(turns.thoughts, stop=STOPS_AFTER_COMMANDS, params=GREEDY)
    next(stream)
    with pytest.raises(UsageError, match="stream"):
        tiny_engine.generate("<|Human|>: hi", params=GREEDY)
    stream.close()
    assert tiny_engine.generate("<|Human|>: hi", params=GREEDY).completion_tokens >= 1


# --- KV-cache reuse ------------------------------------------------------------------------


def plugin_conversation(engine: GenerationEngine, turns) -> list[tuple[str, str]]:
    """Run a two-turn plugin conversation; return (prompt, generated text) per call."""
    calls = []
    prompt = turns.meta + turns.thoughts
    for turn_end in range(2):
        first = engine.generate(prompt, stop=STOPS_AFTER_COMMANDS, params=GREEDY)
        calls.append((prompt, first.text))
        prompt += (
            first.text + END_OF_COMMANDS + "\n<|Results|>:\nCalculate(\"12*30\") => '360'\n<eor>\n<|MOSS|>:"
        )
        second = engine.generate(prompt, stop=STOPS_AFTER_REPLY, params=GREEDY)
        calls.append((prompt, second.text))
        prompt += second.text + END_OF_MESSAGE + "\n" + ("<|Human|>: 你好<eoh>\n" if turn_end == 0 else "")
    return calls


@pytest.mark.parametrize("engine_name", ["tiny_engine", "random_engine"])
def test_cache_reuse_gives_identical_greedy_output(request, turns, engine_name):
    with_reuse = request.getfixturevalue(engine_name)
    without = GenerationEngine(with_reuse.loaded, reuse_cache=False)
    assert plugin_conversation(with_reuse, turns) == plugin_conversation(without, turns)
    assert without.reused_tokens == 0
    assert with_reuse.reused_tokens > 0


def test_cache_reuse_encodes_only_the_new_suffix(tiny_engine, turns):
    tokenizer = tiny_engine.loaded.tokenizer
    prompt = turns.meta + turns.thoughts
    first = tiny_engine.generate(prompt, stop=STOPS_AFTER_COMMANDS, params=GREEDY)
    assert first.cached_tokens == 0
    follow_up = prompt + first.text + END_OF_COMMANDS + "\n<|Results|>:\nNone\n<eor>\n<|MOSS|>:"
    second = tiny_engine.generate(follow_up, stop=STOPS_AFTER_REPLY, params=GREEDY)
    ids = tokenizer(follow_up)["input_ids"]
    # Everything up to the end of the first generation came from the cache.
    assert second.cached_tokens >= first.prompt_tokens + first.completion_tokens - 2
    assert second.cached_tokens < len(ids)
    assert tiny_engine.reused_tokens == second.cached_tokens


def test_same_prompt_twice_reencodes_only_the_last_token(tiny_engine, turns):
    prompt = turns.plugin_reply
    first = tiny_engine.generate(prompt, params=GREEDY)
    again = tiny_engine.generate(prompt, params=GREEDY)
    assert again.text == first.text
    assert again.cached_tokens == again.prompt_tokens - 1


def test_cache_survives_an_unrelated_prompt(tiny_engine, turns):
    prompt = turns.plugin_reply
    baseline = tiny_engine.generate(prompt, params=GREEDY, reuse_cache=False).text
    tiny_engine.generate("<|Human|>: something else entirely", params=GREEDY)
    assert tiny_engine.generate(prompt, params=GREEDY).text == baseline


def test_a_closed_stream_leaves_a_usable_cache(tiny_engine, turns):
    prompt = turns.plugin_reply
    baseline = tiny_engine.generate(prompt, params=GREEDY, reuse_cache=False).text
    stream = tiny_engine.stream(prompt, params=GREEDY)
    next(stream)
    stream.close()
    assert tiny_engine.generate(prompt, params=GREEDY).text == baseline


# --- batching -------------------------------------------------------------------------------


def batch_prompts(turns) -> list[str]:
    return [
        turns.thoughts,
        turns.plugin_reply,
        turns.chat_reply,
        "<|Human|>: hi",
        turns.meta + turns.thoughts,
    ]


@pytest.mark.parametrize("engine_name", ["tiny_engine", "random_engine"])
@pytest.mark.parametrize("stop", [STOPS_AFTER_COMMANDS, ("is", "\n")])
def test_batch_equals_one_by_one(request, turns, engine_name, stop):
    engine = request.getfixturevalue(engine_name)
    prompts = batch_prompts(turns)
    singles = [engine.generate(p, stop=stop, params=GREEDY, reuse_cache=False) for p in prompts]
    batch = engine.generate_batch(prompts, stop=stop, params=GREEDY)
    assert [g.text for g in batch] == [g.text for g in singles]
    assert [(g.stop, g.finish_reason, g.completion_tokens, g.prompt_tokens) for g in batch] == [
        (g.stop, g.finish_reason, g.completion_tokens, g.prompt_tokens) for g in singles
    ]


def test_batch_in_chunks_keeps_prompt_order(tiny_engine, turns):
    prompts = batch_prompts(turns)
    whole = tiny_engine.generate_batch(prompts, stop=STOPS_AFTER_COMMANDS, params=GREEDY)
    chunked = tiny_engine.generate_batch(prompts, stop=STOPS_AFTER_COMMANDS, params=GREEDY, batch_size=2)
    assert [g.text for g in chunked] == [g.text for g in whole]


# --- sampling and safety ---------------------------------------------------------------------


def test_seeded_sampling_is_reproducible(random_engine):
    params = SamplingParams(max_new_tokens=20, seed=7)
    first = random_engine.generate("<|Human|>: hi", params=params).text
    assert random_engine.generate("<|Human|>: hi", params=params).text == first


def test_temperature_zero_is_greedy(random_engine):
    greedy = random_engine.generate("<|Human|>: hi", params=GREEDY).text
    assert (
        random_engine.generate("<|Human|>: hi", params=SamplingParams(temperature=0, max_new_tokens=40)).text
        == greedy
    )


def test_sampling_params_validate():
    assert SamplingParams() == SamplingParams(512, 0.7, 0.8, None, 1.02, True, None)
    assert SamplingParams().replace(temperature=0.2, top_k=None).temperature == 0.2
    with pytest.raises(UsageError, match="Unknown sampling parameter"):
        SamplingParams().replace(temprature=0.2)
    with pytest.raises(UsageError, match="top_p"):
        SamplingParams(top_p=0)


def test_prompt_longer_than_the_model_reads(tiny_engine):
    with pytest.raises(UsageError, match="at most 512"):
        tiny_engine.generate("1 " * 600, params=GREEDY)


def test_threads_take_turns(tiny_engine, turns):
    prompt = turns.plugin_reply
    expected = tiny_engine.generate(prompt, params=GREEDY, reuse_cache=False).text
    results: list[str] = []

    def worker() -> None:
        results.append(tiny_engine.generate(prompt, params=GREEDY).text)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 4
