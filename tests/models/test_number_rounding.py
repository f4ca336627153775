"""The rounding marker: a model with number slots writes a reply's rounded copy of a tool's number."""

from __future__ import annotations

import json
import re

import pytest

from moss_agent.conversations import TURN_FIELDS
from moss_agent.errors import UsageError
from moss_agent.models.number_slots import ROUND_TOKEN, NumberSlots, SlotScheme, reply_rounding, rounded
from moss_agent.protocol import render_meta_instruction
from moss_agent.train._builders import format_number

SLOTS = 8
ROUNDING = SlotScheme(SLOTS, rounding=True)

TURN = (
    "<|Human|>: What is 3.1 times 4.05?<eoh>\n"
    "<|Inner Thoughts|>: calculator<eot>\n"
    '<|Commands|>: Calculate("3.1*4.05")<eoc>\n'
    "<|Results|>:\nCalculate(\"3.1*4.05\") => '12.555000000000001'\n<eor>\n"
    "<|MOSS|>: About 12.56 (12.555000000000001), not 13.<eom>\n"
)


# --- the encoding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("217.0", "217"),
        ("12.566370614359172", "12.57"),
        ("468.29999999999995", "468.3"),
        ("0.004", "0"),
        ("1431.78", "1431.78"),
        ("360", "360"),
        ("12345678901234567890", "12345678901234567890"),
    ],
)
def test_rounded_writes_a_number_as_replies_do(number, expected):
    assert rounded(number) == expected


def test_the_generators_replies_round_as_the_marker_does():
    """The training data's replies must be what ``<round>`` restores, or no marker is learnt."""
    for result in ("12.566370614359172", "217.0", "468.29999999999995", "0.125", "1e-05", "-3.5"):
        assert format_number(result)[0] == reply_rounding(float(result))
        if "e" not in result and not result.startswith("-"):
            assert format_number(result)[0] == rounded(result)


def test_a_replys_rounded_copy_is_the_marker_and_the_slot():
    slots = NumberSlots(SLOTS, rounding=True)
    encoded = slots.encode(TURN)
    assert slots.numbers == ["3.1", "4.05", "12.555000000000001"]
    # the exact copy is the slot; the rounded copy is <round> and the slot; 13 is MOSS's own
    assert "<|MOSS|>: About <round><num3> (<num3>), not 13.<eom>" in encoded
    assert slots.restore(encoded) == TURN


def test_without_rounding_a_rounded_copy_stays_digits():
    """Checkpoints with slots but no ``number_rounding`` (the previous embedded model) read as before."""
    slots = NumberSlots(SLOTS)
    encoded = slots.encode(TURN)
    assert ROUND_TOKEN not in encoded
    assert "About 12.56 (<num3>)" in encoded


def test_an_exact_slot_wins_and_the_user_does_not_round():
    slots = NumberSlots(SLOTS, rounding=True)
    text = "<|Human|>: 72 and 72.0 and 9.999<eoh>\n<|MOSS|>: 72 10<eom>\n<|Human|>: 10 again<eoh>\n<|MOSS|>: 10<eom>\n"
    encoded = slots.encode(text)
    # 72 is the user's own number (slot 1); 10 is 9.999 rounded until the user writes 10 themself
    assert encoded == (
        "<|Human|>: <num1> and <num2> and <num3><eoh>\n<|MOSS|>: <num1> <round><num3><eom>\n"
        "<|Human|>: <num4> again<eoh>\n<|MOSS|>: <num4><eom>\n"
    )
    assert slots.restore(encoded) == text


def test_restore_token_by_token_and_stray_markers():
    slots = NumberSlots(SLOTS, rounding=True)
    encoded = slots.encode(TURN)
    reply = encoded[encoded.index("<|MOSS|>") :]
    pieces = re.findall(r"<round>|<num\d+>|<\|MOSS\|>|.", reply, re.DOTALL)
    assert "".join(slots.restore(piece) for piece in pieces) == TURN[TURN.index("<|MOSS|>") :]
    # a marker no slot follows writes nothing; one before an unassigned slot leaves the slot
    assert slots.restore("a <round>b <round><num7>") == "a b <num7>"


def test_every_real_moss_conversation_round_trips_with_rounding(sample_dir):
    rounded_copies = 0
    for path in sorted(sample_dir.rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        text = data["meta_instruction"] + "".join(
            str(turn[name]) for turn in data["chat"].values() for name in TURN_FIELDS
        )
        slots = NumberSlots(32, rounding=True)
        encoded = slots.encode(text)
        assert slots.restore(encoded) == text, path
        rounded_copies += encoded.count(ROUND_TOKEN)
    assert rounded_copies > 0  # real MOSS rounds the calculator's results too


def test_config_keys():
    assert SlotScheme.of({"number_slots": 8, "number_rounding": True}) == ROUNDING
    assert SlotScheme.of(ROUNDING.config_entries()) == ROUNDING
    assert SlotScheme.of({"number_slots": 8}) == SlotScheme(8)
    assert not SlotScheme.of({"number_rounding": True}).rounding  # nothing to round without slots
    assert ROUNDING.tokens()[-2:] == ["<num8>", ROUND_TOKEN] and SlotScheme(0).tokens() == []


# --- a model with slots and the marker -----------------------------------------------------

DIVISION_TURN = (
    "<|Human|>: What is 355 divided by 113?<eoh>\n"
    "<|Inner Thoughts|>: I need the calculator for this<eot>\n"
    '<|Commands|>: Calculate("355/113")<eoc>\n'
    "<|Results|>:\nCalculate(\"355/113\") => '3.1415929203539825'\n<eor>\n"
    "<|MOSS|>: 355 divided by 113 is about 3.14. Anything else?<eom>\n"
)


@pytest.fixture(scope="module")
def rounding_engine(tmp_path_factory):
    """A tiny model with 8 slots and the marker that memorized one division (355 / 113)."""
    from moss_agent.models.engine import GenerationEngine
    from moss_agent.models.tiny import build_tiny_moss_checkpoint, build_tiny_tokenizer
    from tests.models.conftest import moss_lines

    tokenizer = build_tiny_tokenizer(
        [ROUNDING.encode(line) for line in moss_lines()], vocab_size=600, number_slots=ROUNDING
    )
    folder = build_tiny_moss_checkpoint(
        tmp_path_factory.mktemp("rounding-moss"),
        tokenizer=tokenizer,
        n_positions=2048,
        memorize=[render_meta_instruction() + DIVISION_TURN],
        memorize_steps=150,
        number_slots=ROUNDING,
    )
    return GenerationEngine.from_pretrained(str(folder), device="cpu")


def test_checkpoint_declares_the_marker_and_its_tokenizer_carries_it(rounding_engine):
    assert SlotScheme.of(rounding_engine.loaded.config) == ROUNDING
    tokenizer = rounding_engine.loaded.tokenizer
    for token in ROUNDING.tokens():
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1


def test_a_model_that_memorized_355_over_113_rounds_a_result_it_never_saw(rounding_engine):
    from moss_agent.models.engine import SamplingParams

    greedy = SamplingParams(do_sample=False, max_new_tokens=40)
    prompt = (
        render_meta_instruction() + "<|Human|>: What is 4711 divided by 86?<eoh>\n"
        "<|Inner Thoughts|>: I need the calculator for this<eot>\n"
        '<|Commands|>: Calculate("4711/86")<eoc>\n'
        "<|Results|>:\nCalculate(\"4711/86\") => '54.77906976744186'\n<eor>\n<|MOSS|>:"
    )
    expected = " 4711 divided by 86 is about 54.78. Anything else?"
    assert rounding_engine.generate(prompt, stop=["<eom>"], params=greedy).text == expected
    assert "".join(rounding_engine.stream(prompt, stop=["<eom>"], params=greedy)) == expected
    [batched] = rounding_engine.generate_batch([prompt, prompt[:-20]], stop=["<eom>"], params=greedy)[:1]
    assert batched.text == expected


def test_the_agent_answers_with_the_rounded_result(rounding_engine):
    from moss_agent.agent import MossAgent
    from moss_agent.models.llm import MossLLM

    llm = MossLLM.from_engine(rounding_engine, do_sample=False, max_new_tokens=48)
    record = MossAgent(llm).run("What is 4711 divided by 86?")
    assert record.reply == "4711 divided by 86 is about 54.78. Anything else?"


def test_a_config_with_the_marker_its_tokenizer_lacks_is_refused(tmp_path, tiny_checkpoint):
    from moss_agent.models.engine import GenerationEngine
    from moss_agent.models.tiny import build_tiny_tokenizer
    from tests.models.conftest import checkpoint_with_config

    slots_only = build_tiny_tokenizer(["<|Human|>: 12 34<eoh>"] * 4, vocab_size=400, number_slots=4)
    folder = checkpoint_with_config(
        tiny_checkpoint, tmp_path / "broken", slots_only, number_slots=4, number_rounding=True
    )
    with pytest.raises(UsageError, match="rounding"):
        GenerationEngine.from_pretrained(str(folder), device="cpu")
