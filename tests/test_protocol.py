from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moss_agent.errors import ParseError, UsageError
from moss_agent.protocol import (
    DEFAULT_PLUGINS,
    Commands,
    PluginDeclaration,
    ResultLayout,
    Results,
    Snippet,
    ToolInvocation,
    ToolResult,
    Turn,
    parse_commands,
    parse_generation,
    parse_meta_instruction,
    parse_results,
    render_meta_instruction,
    render_results,
    render_turn,
    result_for,
    results_for,
)

SWITCH_ALL = (
    "Capabilities and tools that MOSS can possess.\n"
    "- Inner thoughts: enabled.\n"
    "- Web search: enabled. API: Search(query)\n"
    "- Calculator: enabled. API: Calculate(expression)\n"
    "- Equation solver: enabled. API: Solve(equation)\n"
    "- Text-to-image: enabled. API: Text2Image(description)\n"
    "- Image edition: disabled.\n"
    "- Text-to-speech: disabled.\n"
)


def test_meta_instruction_switch_block_is_exactly_as_trained():
    meta = render_meta_instruction()
    assert meta.startswith("You are an AI assistant whose name is MOSS.\n")
    assert meta.endswith(SWITCH_ALL)


def test_meta_instruction_disabled_plugins_and_thoughts():
    meta = render_meta_instruction(["Calculate"], inner_thoughts=False)
    assert "- Inner thoughts: disabled.\n- Web search: disabled.\n" in meta
    assert "- Calculator: enabled. API: Calculate(expression)\n- Equation solver: disabled.\n" in meta


def test_meta_instruction_custom_plugin_and_unknown_plugin():
    weather = PluginDeclaration("Weather", "Weather", "Weather(city)")
    meta = render_meta_instruction(["Weather"], custom=[weather])
    assert meta.endswith("- Text-to-speech: disabled.\n- Weather: enabled. API: Weather(city)\n")
    with pytest.raises(UsageError, match="unknown plugin"):
        render_meta_instruction(["Browse"])


@pytest.mark.parametrize("enabled", [(), ("Search",), DEFAULT_PLUGINS, ("Solve", "Text2Image")])
def test_meta_instruction_parse_round_trip(enabled):
    text = render_meta_instruction(enabled, extra_instructions="Answer briefly.")
    meta = parse_meta_instruction(text)
    assert meta.enabled == frozenset(enabled)
    assert meta.extra_instructions == "Answer briefly.\n"
    assert meta.render() == text


def test_meta_instruction_without_switch_block_is_a_parse_error():
    with pytest.raises(ParseError):
        parse_meta_instruction("You are MOSS.")


# --- Commands ---------------------------------------------------------------------------

COMMAND_CASES = [
    ('Search("上海 天气")', [("Search", "上海 天气")]),
    (
        'Calculate("5^3"), Calculate("6^3"), Calculate("6^3-5^3")',
        [("Calculate", "5^3"), ("Calculate", "6^3"), ("Calculate", "6^3-5^3")],
    ),
    ('Search("workers\' rights")', [("Search", "workers' rights")]),
    ('Search("he said \\"hi\\"")', [("Search", 'he said "hi"')]),
    ('Search("the "best" phone")', [("Search", 'the "best" phone')]),
    ("Search（“北京 天气”）", [("Search", "北京 天气")]),
    ('Search("a")，Search("b")', [("Search", "a"), ("Search", "b")]),
    (
        '1. Calculate("20/2")  # 半径\n2. Calculate("(4/3)*3.14")  # 体积',
        [("Calculate", "20/2"), ("Calculate", "(4/3)*3.14")],
    ),
    ('Solve("4/3*pi*r^3=13*x^3", "x")', [("Solve", "4/3*pi*r^3=13*x^3")]),
    ('Search("中国农村"), Search("教育"), None', [("Search", "中国农村"), ("Search", "教育")]),
    ("Calculate(2+3*4)", [("Calculate", "2+3*4")]),
    ('Text2Image("a cat, watercolor")', [("Text2Image", "a cat, watercolor")]),
    ("Calculate('1+1')", [("Calculate", "1+1")]),
]


@pytest.mark.parametrize(("text", "expected"), COMMAND_CASES)
def test_parse_commands_reads_messy_calls(text, expected):
    commands = parse_commands(text)
    assert [(inv.name, inv.argument) for inv in commands.invocations] == expected
    assert commands.errors == ()


@pytest.mark.parametrize(
    "text",
    [
        "None",
        "None.",
        "None (This question doesn't require any external API calls.)",
        "None. \n\n根据勾股定理，我们可以得到：\n直角边1 = (48 - 直角边2) / 2",
        "none",
    ],
)
def test_parse_commands_none_variants(text):
    commands = parse_commands(text)
    assert commands.invocations == () and commands.errors == ()


def test_parse_commands_keyword_syntax_is_parsed_not_evaluated():
    commands = parse_commands('book_flight(origin="PVG", passengers=2, dates=["2026-01-01"], vip=True)')
    (inv,) = commands.invocations
    assert inv.name == "book_flight"
    assert dict(inv.kwargs) == {"origin": "PVG", "passengers": 2, "dates": ["2026-01-01"], "vip": True}


def test_parse_commands_refuses_code_in_arguments(tmp_path):
    marker = tmp_path / "pwned"
    commands = parse_commands(f'Calculate(__import__("os").system("touch {marker}"))')
    assert not marker.exists()
    for inv in commands.invocations:
        assert all(isinstance(a, str) for a in inv.args)


@pytest.mark.parametrize("text", ["", "I will search for it", "Search(", 'Search("unclosed'])
def test_parse_commands_unreadable_text_is_a_typed_error(text):
    commands = parse_commands(text)
    assert commands.invocations == ()
    assert commands.errors and all(isinstance(e, ParseError) for e in commands.errors)


@pytest.mark.parametrize(
    ("text", "args", "kwargs"),
    [
        ('Search("unclosed', ("unclosed",), {}),
        ('Search("5" screen', ('5" screen',), {}),  # a stray quote: the rest is the string
        ('f("a", b="c', ("a",), {"b": "c"}),
        ('f(\' it said "hi"', (' it said "hi"',), {}),
    ],
)
def test_a_call_whose_section_ends_inside_its_string_is_closed(text, args, kwargs):
    """Constrained decoding lets Commands end inside a call's string; model output is read closed."""
    (invocation,) = parse_commands(text, close_open_string=True).invocations
    assert (invocation.args, dict(invocation.kwargs)) == (args, kwargs)
    assert parse_commands(text).invocations == ()  # a written suite or dataset is read strictly
    generation = parse_generation(f"<|Inner Thoughts|>: ok<eot>\n<|Commands|>: {text}")
    assert generation.commands is not None and generation.commands.invocations == (invocation,)


def test_canonical_commands_render():
    inv = ToolInvocation.call("Search", 'say "hi"')
    assert inv.text == 'Search("say \\"hi\\"")'
    assert parse_commands(inv.text).invocations[0].argument == 'say "hi"'
    assert Commands().render_text() == "None"
    kw = ToolInvocation.call("f", a=1, b="x")
    assert kw.text == 'f(a=1, b="x")'


# --- Generations ------------------------------------------------------------------------


def test_parse_generation_full_plugin_turn():
    text = (
        "<|Inner Thoughts|>: 这是一个鸡兔同笼问题，需要解方程<eot>\n"
        '<|Commands|>: Solve("x+y=35, 2x+4y=94")<eoc>'
    )
    gen = parse_generation(text)
    assert gen.thoughts == "这是一个鸡兔同笼问题，需要解方程"
    assert [(i.name, i.argument) for i in gen.invocations] == [("Solve", "x+y=35, 2x+4y=94")]
    assert gen.reply is None and gen.errors == ()


@pytest.mark.parametrize(
    "text",
    [
        '<|Inner Thoughts|>: thinking\n<|Commands|>: Calculate("1+1")',  # no end tokens
        '<|Inner Thoughts|>：thinking<eot><|Commands|>：Calculate("1+1")<eoc>',  # full-width colons
        '  <|Inner Thoughts|>:   thinking  <eot>\n\n<|Commands|>: Calculate("1+1")\n<eoc>\n',
    ],
)
def test_parse_generation_tolerates_missing_ends_and_fullwidth(text):
    gen = parse_generation(text)
    assert gen.thoughts == "thinking"
    assert [i.argument for i in gen.invocations] == ["1+1"]


def test_parse_generation_reply_and_cut_at_program_sections():
    gen = parse_generation("<|MOSS|>: 答案是23只鸡。<eom>")
    assert gen.reply == "答案是23只鸡。"
    gen = parse_generation('<|Commands|>: Search("x")<eoc>\n<|Results|>:\nSearch("x") =>\n<|1|>: \'made up\'')
    assert [i.name for i in gen.invocations] == ["Search"]
    assert any("Results" in str(e) for e in gen.errors)


def test_parse_generation_without_tags_becomes_reply():
    gen = parse_generation("Hello there!<eom>")
    assert gen.reply == "Hello there!" and gen.commands is None
    assert gen.errors


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_generation_never_raises(text):
    gen = parse_generation(text)
    assert all(isinstance(e, ParseError) for e in gen.errors)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("Search(Calculate)\"'“”（）,，# None\n1.=x\\")), max_size=80))
def test_parse_commands_never_raises_on_protocol_like_noise(text):
    commands = parse_commands(text)
    assert isinstance(commands.invocations, tuple)


# --- Results ----------------------------------------------------------------------------

QUERY = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), min_size=1, max_size=40
)


@settings(max_examples=200, deadline=None)
@given(QUERY)
def test_render_then_parse_call_round_trips(arg):
    inv = ToolInvocation.call("Search", arg)
    (parsed,) = parse_commands(inv.text).invocations
    assert parsed.argument == arg


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=50), min_size=1, max_size=4),
    st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=50), min_size=1, max_size=3),
)
def test_results_render_parse_round_trip(snips_a, snips_b):
    a, b = ToolInvocation.call("Search", "a"), ToolInvocation.call("Search", "b")
    calc = ToolInvocation.call("Calculate", "1+1")
    results = results_for(
        [
            result_for(a, snips_a, ResultLayout.HITS),
            result_for(calc, "2", ResultLayout.INLINE),
            result_for(b, snips_b, ResultLayout.HITS),
        ]
    )
    text = render_results(results)
    assert parse_results(text, [a, calc, b]) == results


def test_results_layouts_match_moss_data():
    search1, search2 = ToolInvocation.call("Search", "a"), ToolInvocation.call("Search", "b")
    solve = ToolInvocation.call("Solve", "x+y=35, 2x+4y=94")
    calc = ToolInvocation.call("Calculate", "400*(1-0.45)")
    results = results_for(
        [
            result_for(calc, "220.00000000000003", ResultLayout.INLINE),
            result_for(solve, "x = 23\ny = 12", ResultLayout.BLOCK),
            result_for(search1, ["one", "two"], ResultLayout.HITS),
            result_for(search2, ["it's three"], ResultLayout.HITS),
        ]
    )
    assert render_results(results) == (
        "<|Results|>:\n"
        "Calculate(\"400*(1-0.45)\") => '220.00000000000003'\n"
        'Solve("x+y=35, 2x+4y=94") =>\nx = 23\ny = 12\n'
        "Search(\"a\") =>\n<|1|>: 'one'\n<|2|>: 'two'\n"
        'Search("b") =>\n<|3|>: "it\'s three"\n'
        "<eor>\n"
    )


def test_results_no_call_text2image_and_failure():
    assert render_results(results_for([])) == "<|Results|>:\nNone\n<eor>\n"
    assert render_results(Results((), compact=True)) == "<|Results|>: None<eor>\n"
    image = ToolInvocation.call("Text2Image", "a cat")
    assert (
        render_results(results_for([result_for(image, "Image generated successfully.", ResultLayout.BLOCK)]))
        == "<|Results|>: Image generated successfully.<eor>\n"
    )
    search = ToolInvocation.call("Search", "x")
    failed = result_for(search, "No result.", ResultLayout.HITS)
    assert render_results(results_for([failed])) == '<|Results|>:\nSearch("x") =>\nNo result.\n<eor>\n'


def test_parse_results_rejects_garbage():
    with pytest.raises(ParseError):
        parse_results("<|Results|>:\nnonsense\n<eor>\n", [ToolInvocation.call("Search", "x")])
    with pytest.raises(ParseError):
        parse_results("no tag", [])


def test_unquoted_snippets_survive_verbatim():
    inv = ToolInvocation.call("Search", "沙特阿拉伯GDP")
    text = (
        '<|Results|>:\nSearch("沙特阿拉伯GDP") =>\n'
        "<|1|>: Saudi Arabia / Gross domestic product: '833.5 billion USD (2021)'\n<eor>\n"
    )
    results = parse_results(text, [inv])
    assert results.items[0].output == (
        Snippet("Saudi Arabia / Gross domestic product: '833.5 billion USD (2021)'", literal=False),
    )
    assert render_results(results) == text


def test_render_turn_in_protocol_order():
    turn = Turn(
        human="1+1?",
        thoughts="calc",
        commands=Commands((ToolInvocation.call("Calculate", "1+1"),)),
        results=results_for([ToolResult('Calculate("1+1")', "2", ResultLayout.INLINE)]),
        reply="2",
    )
    assert render_turn(turn) == (
        '<|Human|>: 1+1?<eoh>\n<|Inner Thoughts|>: calc<eot>\n<|Commands|>: Calculate("1+1")<eoc>\n'
        "<|Results|>:\nCalculate(\"1+1\") => '2'\n<eor>\n<|MOSS|>: 2<eom>\n"
    )


@pytest.mark.parametrize("text", ["Search(", "f(a=1", 'f(a=["x', 'f(a=1, b=("x'])
def test_only_a_string_argument_left_open_is_closed(text):
    commands = parse_commands(text, close_open_string=True)
    assert commands.invocations == () and commands.errors
