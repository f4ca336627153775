"""Constrained Commands decoding: only enabled tool names and declared parameter names get written."""

from __future__ import annotations

import pytest

from moss_agent.models.call_constraint import CallConstraint, CallGrammar
from moss_agent.models.engine import SamplingParams
from moss_agent.protocol import (
    COMMANDS_TAG,
    END_OF_HUMAN,
    HUMAN_TAG,
    INNER_THOUGHTS_TAG,
    STOPS_AFTER_COMMANDS,
    PluginDeclaration,
    render_meta_instruction,
)

WEATHER = PluginDeclaration("get_weather", "Weather at a place", "get_weather(location, unit=None)")
DICE = PluginDeclaration("roll_dice", "Roll a dice", "roll_dice()")
META = render_meta_instruction(["Calculate", "get_weather", "roll_dice"], custom=[WEATHER, DICE])
PROMPT = f"{META}{HUMAN_TAG}: Is it raining in Oslo?{END_OF_HUMAN}\n"

TOKENS = [
    " Calculate", "Calc", "ulate", "(", "(\"", "()", "(x", "(location", "Search", " None", "None",
    " get", "_weather", "_w", "location", "loc", "=", "unit", "weight", ")", "\"", "1", "2+", " ",
    "<eoc>", "<num1>", "Calculatex", ", ", "get_weather(weight", "\n", "ation", "\")", "<eor>",
]  # fmt: skip
STOP = [TOKENS.index("<eoc>")]


def allowed(completion: str, prompt: str = PROMPT) -> set[str] | None:
    constraint = CallConstraint.for_prompt(prompt, TOKENS, STOP)
    assert constraint is not None
    ids = constraint.allowed(completion)
    return None if ids is None else {TOKENS[i] for i in ids.tolist()}


def test_grammar_reads_enabled_tools_and_declared_parameters():
    grammar = CallGrammar.from_prompt(PROMPT)
    assert grammar is not None
    assert grammar.names == ("Calculate", "get_weather", "roll_dice")  # Search is not enabled
    assert grammar.params == {"get_weather": ("location", "unit"), "roll_dice": ()}
    assert grammar.required == {"get_weather": ("location",), "roll_dice": ()}  # unit has a default


def test_no_constraint_without_a_meta_instruction():
    assert CallConstraint.for_prompt("Once upon a time", TOKENS, STOP) is None


def test_outside_commands_anything_goes():
    assert allowed(f"{INNER_THOUGHTS_TAG}: I should call get_wea") is None


def test_a_call_starts_with_an_enabled_name_or_none():
    assert allowed(f"{INNER_THOUGHTS_TAG}: ok<eot>\n{COMMANDS_TAG}:") == {
        " Calculate", "Calc", " None", "None", " get", " ", "\n",
    }  # fmt: skip
    assert allowed(f"{COMMANDS_TAG}: Calc") == {"ulate"}
    # a built-in plugin's argument is free, so any token that opens it fits
    assert allowed(f"{COMMANDS_TAG}: Calculate") == {"(", '("', "(x", "()", "(location"}


def test_a_name_runs_into_checked_arguments():
    # "(location" opens get_weather's first argument with a declared name; "()" would leave it empty
    assert allowed(f"{COMMANDS_TAG}: get_weather") == {"(", '("', "(location"}
    # a tool without parameters may close at once, but takes no keyword
    assert allowed(f"{COMMANDS_TAG}: roll_dice") == {"(", '("', "()"}


def test_keywords_of_a_declared_tool_are_its_parameters():
    first = allowed(f"{COMMANDS_TAG}: get_weather(")
    assert first is not None
    assert {"location", "loc", "unit", '"', "1", "2+", " "} <= first
    assert not {"weight", ")", "_weather", " None", "<eoc>"} & first
    assert allowed(f"{COMMANDS_TAG}: get_weather(loc") == {"ation"}
    assert allowed(f"{COMMANDS_TAG}: get_weather(location") == {"=", " "}
    # values and later arguments (location given: nothing required is missing)
    assert allowed(f'{COMMANDS_TAG}: get_weather(location="Os') is None
    later = allowed(f'{COMMANDS_TAG}: get_weather("Oslo", ')
    assert later is not None and ")" in later and "unit" in later and "weight" not in later


def test_a_call_stays_open_until_it_has_its_required_parameters():
    # PROMPT's get_weather(location, unit=None): location is required, by keyword or position
    after_unit = allowed(f'{COMMANDS_TAG}: get_weather(unit="C", ')
    assert after_unit is not None and "location" in after_unit and not {")", "<eoc>"} & after_unit
    in_unit = allowed(f'{COMMANDS_TAG}: get_weather(unit="C')
    assert in_unit is not None and {")", "1"} <= in_unit and not {'")', "<eoc>", "<eor>"} & in_unit
    assert allowed(f'{COMMANDS_TAG}: get_weather(unit="C", location="Os') is None
    assert allowed(f'{COMMANDS_TAG}: get_weather("Oslo"') is None  # positional location: may close
    # with both required, the first value cannot close the call, in or after its quotes
    both = PluginDeclaration("get_weather", "Weather at a place", "get_weather(location, unit)")
    prompt = render_meta_instruction(["get_weather"], custom=[both]) + PROMPT[len(META) :]
    for text, closing in (('get_weather("Oslo"', ")"), ('get_weather(location="Os', '")')):
        inside = allowed(f"{COMMANDS_TAG}: {text}", prompt=prompt)
        assert inside is not None and closing not in inside and "<eoc>" not in inside
    assert allowed(f'{COMMANDS_TAG}: get_weather("Oslo", "C"', prompt=prompt) is None


def test_built_in_arguments_and_finished_calls_are_free():
    assert allowed(f"{COMMANDS_TAG}: Calculate(") is None
    assert allowed(f'{COMMANDS_TAG}: Calculate("1+1")') is None
    assert allowed(f"{COMMANDS_TAG}: None") is None
    after = allowed(f'{COMMANDS_TAG}: Calculate("1+1"), ')
    assert after is not None and "Search" not in after and "Calc" in after


def test_a_forced_call_in_the_prompt_is_continued_under_the_grammar():
    forced = f"{PROMPT}{INNER_THOUGHTS_TAG}: I will use get_weather.<eot>\n{COMMANDS_TAG}: get_weather("
    first = allowed("", prompt=forced)
    assert first is not None and "weight" not in first and "location" in first


def _commands(text: str) -> str | None:
    return text.split(COMMANDS_TAG, 1)[1].lstrip(":") if COMMANDS_TAG in text else None


NAME_TARGETS = ("Search(", "Calculate(", "None")


def _valid_start(commands: str) -> bool:
    """An independent check: the first call's text is on the way to an enabled name (or empty)."""
    text = commands.lstrip()
    return not text or any(t.startswith(text) or text.startswith(t) for t in NAME_TARGETS)


@pytest.mark.parametrize("seed", range(12))
def test_random_model_writes_only_enabled_names(random_engine, turns, seed):
    """A random-weight model writes anything; under the constraint its calls still name enabled tools."""
    prompt = turns.meta + turns.upto(turns.plugin, f"{COMMANDS_TAG}:")
    params = SamplingParams(temperature=1.5, top_p=1.0, max_new_tokens=6, seed=seed)
    text = random_engine.generate(prompt, stop=STOPS_AFTER_COMMANDS, params=params, constrain_calls=True).text
    assert _valid_start(text), text


def test_random_model_needs_the_constraint(random_engine, turns):
    """Without it the same model writes names of no tool (so the test above can fail)."""
    prompt = turns.meta + turns.upto(turns.plugin, f"{COMMANDS_TAG}:")
    texts = [
        random_engine.generate(
            prompt,
            stop=STOPS_AFTER_COMMANDS,
            params=SamplingParams(temperature=1.5, top_p=1.0, max_new_tokens=6, seed=seed),
        ).text
        for seed in range(12)
    ]
    assert not all(_valid_start(text) for text in texts)


def test_batched_generation_is_constrained_like_single(random_engine, turns):
    prompt = turns.meta + turns.upto(turns.plugin, f"{COMMANDS_TAG}:")
    other = turns.meta + turns.upto(turns.chat, f"{COMMANDS_TAG}:")
    greedy = SamplingParams(do_sample=False, max_new_tokens=8)
    single = [
        random_engine.generate(p, stop=STOPS_AFTER_COMMANDS, params=greedy, constrain_calls=True).text
        for p in (prompt, other)
    ]
    batch = random_engine.generate_batch(
        [prompt, other], stop=STOPS_AFTER_COMMANDS, params=greedy, constrain_calls=True
    )
    assert [g.text for g in batch] == single
    assert all(_valid_start(text) for text in single)


def test_pieces_of_characters_are_let_through_only_for_names_that_have_such_characters():
    tokens = ["天", "\ufffd", " Calculate", "x"]
    meta = render_meta_instruction(["Calculate"])
    constraint = CallConstraint.for_prompt(f"{meta}{HUMAN_TAG}: hi{END_OF_HUMAN}\n", tokens, [])
    assert constraint is not None
    assert constraint.allowed(f"{COMMANDS_TAG}:").tolist() == [2]  # type: ignore[union-attr]
    tool = PluginDeclaration("查天气", "Weather", "查天气(城市)")
    meta = render_meta_instruction(["查天气"], custom=[tool])
    constraint = CallConstraint.for_prompt(f"{meta}{HUMAN_TAG}: hi{END_OF_HUMAN}\n", tokens, [])
    assert constraint is not None
    assert constraint.allowed(f"{COMMANDS_TAG}:").tolist() == [1]  # type: ignore[union-attr]
