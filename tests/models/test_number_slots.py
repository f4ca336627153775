"""Number slots: the text encoding, and a model that copies numbers it never saw as one token each."""

from __future__ import annotations

import json

import pytest

from moss_agent.conversations import TURN_FIELDS
from moss_agent.errors import UsageError
from moss_agent.models.number_slots import NumberSlots, SlotScheme, number_slots_of, slot_tokens
from moss_agent.protocol import render_meta_instruction

SLOTS = 8


# --- the encoding --------------------------------------------------------------------------


def test_user_and_tool_numbers_get_slots_in_order_and_reuse_them_everywhere():
    slots = NumberSlots(SLOTS)
    text = (
        "<|Human|>: 底是144厘米，高是177厘米，面积？ 144!<eoh>\n"
        "<|Inner Thoughts|>: 需要计算144*177/2<eot>\n"
        '<|Commands|>: Calculate("144*177/2")<eoc>\n'
        "<|Results|>:\nCalculate(\"144*177/2\") => '12744.0'\n<eor>\n"
        "<|MOSS|>: 面积是12744.0平方厘米，约12745。<eom>\n"
    )
    encoded = slots.encode(text)
    assert slots.numbers == ["144", "177", "12744.0"]
    assert "<|Human|>: 底是<num1>厘米，高是<num2>厘米，面积？ <num1>!" in encoded
    assert 'Calculate("<num1>*<num2>/2")' in encoded  # the single digit 2 stays a digit
    assert "=> '<num3>'" in encoded
    # a number first written by MOSS itself gets no slot: the model could not have read it
    assert "面积是<num3>平方厘米，约12745。" in encoded
    assert slots.restore(encoded) == text


def test_meta_instruction_numbers_stay_digits_and_the_limit_holds():
    slots = NumberSlots(2)
    encoded = slots.encode("Model moss-moon-003.\n<|Human|>: 10, 20, 30, 003<eoh>\n")
    assert encoded == "Model moss-moon-003.\n<|Human|>: <num1>, <num2>, 30, 003<eoh>\n"
    assert slots.numbers == ["10", "20"]


def test_encoding_is_decided_left_to_right():
    """Appending text never changes how the earlier text encodes (the KV cache relies on it)."""
    first = "<|Human|>: 12 and 345<eoh>\n<|MOSS|>: 12+345<eom>\n"
    more = '<|Human|>: and 345 with 6789?<eoh>\n<|Commands|>: Calculate("12+345+6789")<eoc>\n'
    whole = NumberSlots(SLOTS).encode(first + more)
    assert whole.startswith(NumberSlots(SLOTS).encode(first))
    streamed = NumberSlots(SLOTS)
    assert streamed.encode(first) + streamed.encode(more) == whole


def test_slot_tokens_in_the_text_are_kept_and_unknown_slots_restore_as_written():
    slots = NumberSlots(SLOTS)
    assert slots.encode("<|Human|>: <num12> 42<eoh>") == "<|Human|>: <num12> <num1><eoh>"
    assert slots.restore("<num1> <num2> <num0>") == "42 <num2> <num0>"
    assert slots.unassigned([100, 101, 102]) == [101, 102]


def test_every_real_moss_conversation_round_trips(sample_dir):
    files = sorted(sample_dir.rglob("*.json"))
    assert len(files) >= 400
    with_slots = 0
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        text = data["meta_instruction"] + "".join(
            str(turn[name]) for turn in data["chat"].values() for name in TURN_FIELDS
        )
        slots = NumberSlots(32)
        assert slots.restore(slots.encode(text)) == text, path
        with_slots += bool(slots.numbers)
        every = SlotScheme(32, rounding=True, digits=True).new()
        assert every.restore(every.encode(text)) == text, path
    assert with_slots > 100  # the calculator and solver samples are full of numbers


def test_digit_slots_copy_single_digits_and_keep_them_visible_to_the_model():
    slots = SlotScheme(SLOTS, rounding=True, digits=True).new()
    text = (
        "<|Human|>: 7个小时走完735公里，打5折. 5.5 and 5.<eoh>\n"
        '<|Commands|>: Calculate("735/7")<eoc>\n'
        "<|Results|>:\nCalculate(\"735/7\") => '105.0'\n<eor>\n"
        "<|MOSS|>: 每小时105公里，共7小时，2x。<eom>\n"
    )
    encoded = slots.encode(text)
    assert slots.numbers == ["7", "735", "5", "5.5", "105.0"]
    # the user's and the tools' digits: the slot, then the digit; the model's own: the slot alone
    assert "<|Human|>: <num1>7个小时走完<num2>公里，打<num3>5折. <num4> and <num3>5.<eoh>" in encoded
    assert 'Calculate("<num2>/<num1>")' in encoded and 'Calculate("<num2>/<num1>7")' in encoded
    assert "每小时<round><num5>公里，共<num1>小时，2x。" in encoded  # 2 is MOSS's own
    assert slots.restore(encoded) == text
    assert slots.restore("<num3>") == "5"  # generated: the slot alone


def test_config_key():
    assert number_slots_of({"number_slots": 16}) == 16
    assert number_slots_of({}) == 0
    assert SlotScheme.of({"number_slots": 16, "digit_slots": True}) == SlotScheme(16, digits=True)
    assert SlotScheme(16, digits=True).config_entries() == {"number_slots": 16, "digit_slots": True}
    with pytest.raises(ValueError):
        NumberSlots(0)


# --- a model with slots --------------------------------------------------------------------

PLUGIN_TURN = (
    "<|Human|>: What is 12 times 30?<eoh>\n"
    "<|Inner Thoughts|>: I need the calculator for this<eot>\n"
    '<|Commands|>: Calculate("12*30")<eoc>\n'
    "<|Results|>:\nCalculate(\"12*30\") => '360'\n<eor>\n"
    "<|MOSS|>: 12 times 30 is 360. Anything else?<eom>\n"
)


@pytest.fixture(scope="module")
def slot_checkpoint(tmp_path_factory):
    """A tiny model with 8 slots that memorized one calculator turn (12 × 30) after the real meta."""
    from moss_agent.models.tiny import build_tiny_moss_checkpoint, build_tiny_tokenizer
    from tests.models.conftest import moss_lines

    tokenizer = build_tiny_tokenizer(
        [NumberSlots(SLOTS).encode(line) for line in moss_lines()], vocab_size=600, number_slots=SLOTS
    )
    return build_tiny_moss_checkpoint(
        tmp_path_factory.mktemp("slot-moss"),
        tokenizer=tokenizer,
        n_positions=2048,
        memorize=[render_meta_instruction() + PLUGIN_TURN],
        memorize_steps=150,
        number_slots=SLOTS,
    )


@pytest.fixture(scope="module")
def slot_engine(slot_checkpoint):
    from moss_agent.models.engine import GenerationEngine

    return GenerationEngine.from_pretrained(str(slot_checkpoint), device="cpu")


def test_checkpoint_declares_its_slots_and_its_tokenizer_carries_them(slot_checkpoint, slot_engine):
    assert json.loads((slot_checkpoint / "config.json").read_text())["number_slots"] == SLOTS
    tokenizer = slot_engine.loaded.tokenizer
    for token in slot_tokens(SLOTS):
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1
    # the engine counts the tokens the model reads: 4-digit numbers are one token each
    assert slot_engine.count_tokens("<|Human|>: 1234 5678<eoh>") == slot_engine.count_tokens(
        "<|Human|>: 12 56<eoh>"
    )


def test_a_model_that_memorized_12_times_30_copies_numbers_it_never_saw(slot_engine):
    from moss_agent.models.engine import SamplingParams

    greedy = SamplingParams(do_sample=False, max_new_tokens=40)
    prompt = render_meta_instruction() + "<|Human|>: What is 4711 times 86?<eoh>\n"
    first = slot_engine.generate(prompt, stop=["<eoc>"], params=greedy)
    assert first.text.endswith('<|Commands|>: Calculate("4711*86")')
    second_prompt = (
        prompt + first.text + "<eoc>\n<|Results|>:\nCalculate(\"4711*86\") => '405146'\n<eor>\n<|MOSS|>:"
    )
    streamed = slot_engine.stream(second_prompt, stop=["<eom>"], params=greedy)
    text = "".join(streamed)
    assert text == " 4711 times 86 is 405146. Anything else?"
    assert streamed.generation is not None and streamed.generation.cached_tokens > 0  # the cache was reused
    [batched] = slot_engine.generate_batch([second_prompt], stop=["<eom>"], params=greedy)
    assert batched.text == text


def test_slots_no_number_has_are_never_generated(slot_engine):
    """The memorized reply names slot 3 (the result); with no Results it cannot be written."""
    from moss_agent.models.engine import SamplingParams

    greedy = SamplingParams(do_sample=False, max_new_tokens=12)
    prompt = render_meta_instruction() + "<|Human|>: What is 4711 times 86?<eoh>\n<|MOSS|>: 4711 times 86 is"
    for generation in (
        slot_engine.generate(prompt, params=greedy),
        *slot_engine.generate_batch([prompt], params=greedy),
    ):
        assert "<num" not in generation.text
        assert "405146" not in generation.text


def test_the_agent_answers_through_the_real_calculator(slot_engine):
    from moss_agent.agent import MossAgent
    from moss_agent.models.llm import MossLLM

    llm = MossLLM.from_engine(slot_engine, do_sample=False, max_new_tokens=48)
    record = MossAgent(llm).run("What is 4711 times 86?")
    assert record.reply == "4711 times 86 is 405146. Anything else?"


def test_a_config_with_slots_its_tokenizer_lacks_is_refused(tmp_path, tiny_checkpoint):
    from moss_agent.models.engine import GenerationEngine
    from tests.models.conftest import checkpoint_with_config

    folder = checkpoint_with_config(tiny_checkpoint, tmp_path / "broken", number_slots=4)
    with pytest.raises(UsageError, match="number slots"):
        GenerationEngine.from_pretrained(str(folder), device="cpu")
