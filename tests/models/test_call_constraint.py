"""Constrained Commands decoding: only enabled tool names and declared parameter names get written."""

from __future__ import annotations

import ast

import pytest

from moss_agent.models.call_constraint import CallConstraint, CallGrammar, literal_kinds
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
    # a tool without parameters may close at once, but takes no argument
    assert allowed(f"{COMMANDS_TAG}: roll_dice") == {"(", "()"}


def test_a_declared_call_takes_one_space_at_a_time_and_no_line_break():
    # a tool without parameters: ")" or a space, then only ")" (a model once wrote 64 newlines here)
    assert allowed(f"{COMMANDS_TAG}: roll_dice(") == {")", " "}
    assert allowed(f"{COMMANDS_TAG}: roll_dice( ") == {")"}
    for text in ("get_weather(", "get_weather(location=", 'get_weather("Oslo",', 'get_weather("Oslo"'):
        first = allowed(f"{COMMANDS_TAG}: {text}")
        assert first is not None and " " in first and "\n" not in first
        again = allowed(f"{COMMANDS_TAG}: {text} ")
        assert again is not None and not {" ", "\n"} & again
    assert "\n" in allowed(f'{COMMANDS_TAG}: get_weather("Os')  # type: ignore[operator]  # a string is free


def test_keywords_of_a_declared_tool_are_its_parameters():
    first = allowed(f"{COMMANDS_TAG}: get_weather(")
    assert first is not None
    assert {"location", "loc", "unit", '"', "1", " ", " None"} <= first  # None is a literal
    # "2+" is no literal, "ation" no parameter
    assert not {"weight", ")", "_weather", "<eoc>", "2+", "ation"} & first
    assert allowed(f"{COMMANDS_TAG}: get_weather(loc") == {"ation"}
    assert allowed(f"{COMMANDS_TAG}: get_weather(location") == {"=", " "}
    # in a string value anything goes but another section's end; location given, the Commands
    # may end there (the parser closes the string and the call)
    in_value = allowed(f'{COMMANDS_TAG}: get_weather(location="Os')
    assert in_value is not None and {'")', '"', "1", "Calculatex", "<eoc>"} <= in_value
    assert "<eor>" not in in_value
    assert "<eoc>" not in allowed(f"{COMMANDS_TAG}: get_weather(location=1")  # type: ignore[operator]
    later = allowed(f'{COMMANDS_TAG}: get_weather("Oslo", ')
    assert later is not None and "unit" in later and not {"weight", ")"} & later  # no empty argument


def test_a_call_stays_open_until_it_has_its_required_parameters():
    # PROMPT's get_weather(location, unit=None): location is required, by keyword or position
    after_unit = allowed(f'{COMMANDS_TAG}: get_weather(unit="C", ')
    assert after_unit is not None and "location" in after_unit and not {")", "<eoc>"} & after_unit
    in_unit = allowed(f'{COMMANDS_TAG}: get_weather(unit="C')
    assert in_unit is not None and {")", "1"} <= in_unit and not {'")', "<eoc>", "<eor>"} & in_unit
    assert '")' in allowed(f'{COMMANDS_TAG}: get_weather(unit="C", location="Os')  # type: ignore[operator]
    after_location = allowed(f'{COMMANDS_TAG}: get_weather("Oslo"')  # positional location: may close
    assert after_location is not None and {")", ", "} <= after_location and '"' not in after_location
    # with both required, the first value cannot close the call, in or after its quotes
    both = PluginDeclaration("get_weather", "Weather at a place", "get_weather(location, unit)")
    prompt = render_meta_instruction(["get_weather"], custom=[both]) + PROMPT[len(META) :]
    for text, closing in (('get_weather("Oslo"', ")"), ('get_weather(location="Os', '")')):
        inside = allowed(f"{COMMANDS_TAG}: {text}", prompt=prompt)
        assert inside is not None and closing not in inside and "<eoc>" not in inside
    both_given = allowed(f'{COMMANDS_TAG}: get_weather("Oslo", "C"', prompt=prompt)
    assert both_given is not None and ")" in both_given and ", " not in both_given  # no third argument


def test_built_in_arguments_are_free_but_for_a_section_end_and_finished_calls_are_free():
    inside = allowed(f"{COMMANDS_TAG}: Calculate(")
    assert inside is not None and {'"', "2+", ")", "Calculatex", "weight"} <= inside
    assert not {"<eoc>", "<eor>"} & inside
    assert allowed(f'{COMMANDS_TAG}: Calculate("1+1")') is None
    assert allowed(f"{COMMANDS_TAG}: None") is None
    after = allowed(f'{COMMANDS_TAG}: Calculate("1+1"), ')
    assert after is not None and "Search" not in after and "Calc" in after


MAGIC = PluginDeclaration("magic", "A magic function", "magic(input)")
PAIR = PluginDeclaration("pair", "Two things", "pair(a, b)")
LITERAL_PROMPT = (
    f"{render_meta_instruction(['magic', 'pair'], custom=[MAGIC, PAIR])}{HUMAN_TAG}: hi{END_OF_HUMAN}\n"
)
VALUE_TOKENS = [
    '"', "'", "3", '3"', '")', ")", ",", ", ", "-", ".", "5", "True", "Tr", "ue", "x", "半", "=", " ",
    "<eoc>", "<num1>", "<round>", "]", "[", "input", "a", "b", "e",
]  # fmt: skip


def allowed_values(completion: str) -> set[str]:
    constraint = CallConstraint.for_prompt(LITERAL_PROMPT, VALUE_TOKENS, [VALUE_TOKENS.index("<eoc>")])
    assert constraint is not None
    ids = constraint.allowed(f"{COMMANDS_TAG}: {completion}")
    assert ids is not None
    return {VALUE_TOKENS[i] for i in ids.tolist()}


def test_a_declared_tools_values_are_python_literals():
    first = allowed_values("magic(")
    assert {'"', "'", "3", "-", "True", "Tr", "<num1>", "[", "input", " "} <= first
    assert not {")", ",", "x", "半", "=", "]", "<eoc>", "e"} & first
    # a number runs on or ends the call; a quote, a letter or a second argument cannot follow it
    assert {"5", ".", ")", "<num1>"} <= allowed_values("magic(input=3")
    assert not {'"', '3"', '")', ",", ", ", "x", "Tr"} & allowed_values("magic(input=3")
    assert allowed_values("magic(input=-") >= {"3", "<num1>"}
    assert ")" not in allowed_values("magic(input=-")  # "-" alone is no number
    assert allowed_values("magic(input=Tr") == {"ue"}
    assert {")", " "} <= allowed_values("magic(input=True")
    assert not {"x", '"', "3", "<eoc>"} & allowed_values('magic(input="ab" ')
    assert allowed_values("magic(input=[1, x") >= {"x", "]", '"'}  # inside brackets only the end is barred
    assert "<eoc>" not in allowed_values("magic(input=[1, x")


def test_arguments_are_each_parameter_once_positional_first():
    assert {",", ", "} <= allowed_values("pair(a=1")
    assert ")" not in allowed_values("pair(a=1")  # b is required
    after_a = allowed_values("pair(a=1, ")
    assert "b" in after_a and not {"a", '"', "3"} & after_a  # a again, or a positional after a keyword
    assert not {",", ", "} & allowed_values("pair(1, 2")  # no third parameter
    assert ")" in allowed_values("pair(1, 2")
    assert not {")", ","} & allowed_values("pair(1, ")  # no empty argument


@pytest.mark.parametrize("seed", range(8))
def test_random_model_closes_declared_calls_as_python_literal_calls(random_engine, turns, seed):
    """A random model forced into a declared call writes, under the constraint, a call ast reads as literals."""
    meta = f"{turns.meta}- Two things: enabled. API: pair(a, b)\n"
    prompt = f"{meta}{HUMAN_TAG}: hi{END_OF_HUMAN}\n{INNER_THOUGHTS_TAG}: ok<eot>\n{COMMANDS_TAG}: pair("
    params = SamplingParams(temperature=1.5, top_p=1.0, max_new_tokens=24, seed=seed)
    text = random_engine.generate(prompt, stop=STOPS_AFTER_COMMANDS, params=params, constrain_calls=True).text
    assert "<|" not in text and "<eoc>" not in text  # no section ends inside the open call
    scanner_text = "pair(" + text
    close = _close_of(scanner_text)
    if close is not None:  # it closed: the call is Python with literal arguments for pair's parameters
        call = ast.parse(scanner_text[: close + 1], mode="eval").body
        assert isinstance(call, ast.Call)
        values = [*call.args, *(k.value for k in call.keywords)]
        assert len(values) == 2 and all(ast.literal_eval(v) is not ... for v in values)
        assert {k.arg for k in call.keywords} <= {"a", "b"}


def _close_of(text: str) -> int | None:
    """Index of the ``)`` that closes the call opened by the first ``(`` (quotes respected)."""
    depth, quote = 0, None
    for at, char in enumerate(text):
        if quote:
            quote = None if char == quote and text[at - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return at
    return None


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


@pytest.mark.parametrize(
    ("schema", "kinds"),
    [
        ({"type": "integer", "exclusiveMinimum": -1000}, "int"),
        ({"type": "number"}, "num"),
        ({"type": "string"}, "str"),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}, "int|null"),
        ({"type": ["string", "null"]}, "null|str"),
        ({"enum": ["C", "F"]}, "str"),
        ({"const": True}, "bool"),
        ({"type": "array", "items": {"type": "integer"}}, "list"),
        ({}, ""),  # no type: any literal
        ({"$ref": "#/$defs/Point"}, ""),
        ({"anyOf": [{"$ref": "#/$defs/Point"}, {"type": "null"}]}, ""),
    ],
)
def test_literal_kinds_of_json_schemas(schema, kinds):
    assert literal_kinds(schema) == kinds


TYPED = {"magic": {"input": "int"}, "pair": {"a": "str", "b": "bool|null"}}


def allowed_typed(completion: str) -> set[str]:
    tokens = VALUE_TOKENS
    constraint = CallConstraint.for_prompt(LITERAL_PROMPT, tokens, [tokens.index("<eoc>")], types=TYPED)
    assert constraint is not None
    ids = constraint.allowed(f"{COMMANDS_TAG}: {completion}")
    assert ids is not None
    return {tokens[i] for i in ids.tolist()}


def test_typed_parameters_take_only_their_kind_of_literal():
    grammar = CallGrammar.from_prompt(LITERAL_PROMPT)
    assert grammar is not None and grammar.typed(TYPED).kinds == {
        "magic": ("int",),
        "pair": ("str", "bool|null"),
    }
    integer = allowed_typed("magic(")
    assert {"3", "-", "<num1>", "input"} <= integer and not {'"', "'", "True", "Tr", "["} & integer
    assert "." not in allowed_typed("magic(input=3")  # an integer has no decimals
    assert {'"', "'"} <= allowed_typed("pair(") and not {"3", "True", "-"} & allowed_typed("pair(")
    boolean = allowed_typed('pair("x", ')
    assert {"True", "Tr", "b"} <= boolean and not {'"', "3"} & boolean
    assert allowed_typed('pair("x", b=') >= {"True", "Tr"}
    # untyped, the same positions take any literal
    assert {"3", '"', "True"} <= allowed_values("magic(") and "." in allowed_values("magic(input=3")


def test_a_keyword_may_be_chinese_and_a_value_is_still_a_literal():
    tool = PluginDeclaration("查天气", "Weather", "查天气(城市)")
    tokens = ["城", "市", "城市=", '"', "北京", '")', ")", "3"]
    meta = render_meta_instruction(["查天气"], custom=[tool])
    constraint = CallConstraint.for_prompt(f"{meta}{HUMAN_TAG}: hi{END_OF_HUMAN}\n", tokens, [])
    assert constraint is not None

    def allowed_after(text: str) -> set[str]:
        ids = constraint.allowed(f"{COMMANDS_TAG}: {text}")
        assert ids is not None
        return {tokens[i] for i in ids.tolist()}

    assert allowed_after("查天气(") == {"城", "城市=", '"', '")', "3"}  # a bare 北京 is no literal
    assert allowed_after("查天气(城") == {"市"}
    assert allowed_after('查天气(城市="北京') >= {'")', '"', "北京"}


def test_what_real_moss_wrote_in_its_commands_passes_but_calls_of_tools_it_was_not_given(sample_dir):
    """Every real MOSS Commands section, character by character, is let through by the constraint
    built from its own meta instruction, but calls numbered as a list (``1. Calculate(…)``) and
    calls of a tool the meta instruction does not enable (``Count(…)``)."""
    import json
    import re

    from moss_agent.protocol import END_OF_COMMANDS

    turns_checked, blocked = 0, []
    for path in sorted(sample_dir.rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        history = data["meta_instruction"]
        for turn in data["chat"].values():
            prompt = history + turn["Human"]
            head = turn["Inner Thoughts"] + f"{COMMANDS_TAG}:"
            body = turn["Commands"][len(COMMANDS_TAG) + 1 : turn["Commands"].index(END_OF_COMMANDS)]
            vocabulary = [*sorted(set(body)), END_OF_COMMANDS]  # one token per character
            constraint = CallConstraint.for_prompt(prompt, vocabulary, [len(vocabulary) - 1])
            assert constraint is not None
            for at in range(len(body) + 1):
                ids = constraint.allowed(head + body[:at])
                following = body[at] if at < len(body) else END_OF_COMMANDS
                if ids is not None and vocabulary.index(following) not in ids.tolist():
                    blocked.append((path.name, constraint.grammar.names, body[at:]))
                    break
            turns_checked += 1
            history = prompt + "".join(
                turn[f] for f in ("Inner Thoughts", "Commands", "Tool Responses", "MOSS")
            )
    assert turns_checked > 900
    for name, enabled, rest in blocked:
        listed = re.match(r"\d{1,3}\. ", rest) is not None
        called = re.match(r"(\w+)\(", rest)
        assert listed or (called is not None and called.group(1) not in enabled), (name, rest[:80])
    assert len(blocked) <= 3, blocked  # 2 numbered lists and one Count(…) in the 1001 turns
