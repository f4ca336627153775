from __future__ import annotations

import pytest
from langchain_core.tools import StructuredTool

from moss_agent.agent import (
    CommandEvent,
    MossAgent,
    ReplyTokenEvent,
    ResultEvent,
    ThoughtsEvent,
    TurnEndEvent,
)
from moss_agent.conversations import iter_conversation_files, load_conversations, parse_conversation
from moss_agent.errors import UsageError
from moss_agent.protocol import ResultLayout
from moss_agent.testing import ScriptedMossLLM, turn_generations
from moss_agent.tools.registry import ToolRegistry, default_registry
from moss_agent.tools.search_backends import RecordedBackend


@pytest.fixture
def registry() -> ToolRegistry:
    backend = RecordedBackend(
        {"上海 天气": ["上海今天晴，最高气温 25 度。", "明天多云。"], "北京 天气": ["北京小雨。"]}
    )
    return default_registry(search_backend=backend, timeout=20)


def test_chickens_and_rabbits_turn_runs_the_real_solver(registry):
    llm = ScriptedMossLLM(
        responses=turn_generations(
            "这是鸡兔同笼问题，设鸡x只兔y只。", 'Solve("x+y=35, 2x+4y=94")', "鸡有23只，兔有12只。"
        )
    )
    agent = MossAgent(llm, tools=registry)
    record = agent.run("笼子里有35个头，94只脚，鸡和兔各几只？")
    assert record.thoughts == "这是鸡兔同笼问题，设鸡x只兔y只。"
    assert record.tools_used == ["Solve"]
    assert record.tool_calls[0].result.output == "x = 23\ny = 12"
    assert record.reply == "鸡有23只，兔有12只。"
    assert record.parse_errors == ()
    # The second generation saw the Results exactly as MOSS was trained.
    assert llm.prompts[1].endswith(
        '<|Commands|>: Solve("x+y=35, 2x+4y=94")<eoc>\n<|Results|>:\nSolve("x+y=35, 2x+4y=94") =>\n'
        "x = 23\ny = 12\n<eor>\n"
    )
    assert llm.prompts[1].startswith(llm.prompts[0])  # the reply prompt extends the first: KV reuse works
    assert llm.stops[0] is not None and "<eoc>" in llm.stops[0]
    assert set(record.timings) >= {"first_generation", "tools", "reply", "total"}


def test_several_commands_search_numbering_and_calculator(registry):
    llm = ScriptedMossLLM(
        responses=turn_generations(
            "需要查天气并计算",
            'Search("上海 天气"), Search("北京 天气"), Calculate("25-18")',
            "上海25度，北京小雨，温差7度。",
        )
    )
    record = MossAgent(llm, tools=registry).run("上海和北京天气怎样？")
    assert record.tools_used == ["Search", "Search", "Calculate"]
    assert (
        "<|1|>: '上海今天晴，最高气温 25 度。'\n<|2|>: '明天多云。'\nSearch(\"北京 天气\") =>\n<|3|>: '北京小雨。'"
        in llm.prompts[1]
    )
    assert "Calculate(\"25-18\") => '7'" in llm.prompts[1]
    assert record.tool_calls[0].result.layout is ResultLayout.HITS


def test_no_call_turn_and_disabled_tool(registry):
    llm = ScriptedMossLLM(
        responses=[
            *turn_generations("打招呼，不需要工具", "None", "你好！"),
            *turn_generations("计算", 'Calculate("2+2")', "是4。"),
        ]
    )
    agent = MossAgent(llm, tools=registry, plugins=["Search"])
    first = agent.run("你好")
    assert first.invocations == () and "<|Results|>:\nNone\n<eor>\n" in llm.prompts[1]
    second = agent.run("2+2=?")
    assert second.tools_used == ["Calculate"]
    assert second.tool_calls[0].result.output == "No result."
    assert any("disabled" in e for e in second.parse_errors)


def test_at_most_four_commands_run(registry):
    calls = ", ".join(f'Calculate("{i}+1")' for i in range(6))
    llm = ScriptedMossLLM(responses=turn_generations("many", calls, "done"))
    record = MossAgent(llm, tools=registry).run("count")
    assert len(record.tool_calls) == 4
    assert any("only the first 4" in e for e in record.parse_errors)


def test_unreadable_commands_do_not_crash(registry):
    llm = ScriptedMossLLM(
        responses=["<|Inner Thoughts|>: hmm<eot>\n<|Commands|>: I shall compute(<eoc>", "<|MOSS|>: ok<eom>"]
    )
    record = MossAgent(llm, tools=registry).run("x")
    assert record.invocations == () and record.reply == "ok"
    assert record.parse_errors


def test_model_without_tags_and_early_reply(registry):
    llm = ScriptedMossLLM(responses=["<|Inner Thoughts|>: easy<eot>\n<|MOSS|>: 42<eom>"])
    record = MossAgent(llm, tools=registry).run("answer?")
    assert record.reply == "42" and len(llm.prompts) == 1


def test_streaming_events_in_order(registry):
    llm = ScriptedMossLLM(responses=turn_generations("t", 'Calculate("6*7")', "答案是42。"), chunk_size=2)
    events = list(MossAgent(llm, tools=registry).stream("6*7?"))
    kinds = [type(e) for e in events]
    assert kinds[0] is ThoughtsEvent and kinds[1] is CommandEvent and kinds[2] is ResultEvent
    assert kinds[-1] is TurnEndEvent
    tokens = "".join(e.text for e in events if isinstance(e, ReplyTokenEvent))
    assert tokens.strip() == "答案是42。" == events[-1].record.reply
    assert sum(isinstance(e, ReplyTokenEvent) for e in events) > 2


async def test_async_run(registry):
    llm = ScriptedMossLLM(responses=turn_generations("t", 'Calculate("2^10")', "1024"))
    record = await MossAgent(llm, tools=registry).arun("2^10?")
    assert record.tool_calls[0].result.output == "1024" and record.reply == "1024"


def test_history_compresses_results_and_trims_oldest(registry):
    llm = ScriptedMossLLM(
        responses=[
            *turn_generations("a", 'Calculate("1+1")', "2"),
            *turn_generations("b", 'Calculate("2+2")', "4"),
            *turn_generations("c", "None", "ok"),
        ]
    )
    agent = MossAgent(llm, tools=registry)
    agent.run("first")
    agent.run("second")
    # Earlier Results are replaced by None in later prompts.
    assert "<|Human|>: first<eoh>" in llm.prompts[2]
    assert "Calculate(\"1+1\") => '2'" not in llm.prompts[2]
    agent.max_context_tokens = llm.get_num_tokens(agent.meta_instruction) + agent.reserve_tokens + 60
    agent.run("third")
    assert "<|Human|>: first<eoh>" not in llm.prompts[-2]
    assert "<|Human|>: third<eoh>" in llm.prompts[-2]


def test_custom_langchain_tool_as_plugin(registry):
    def weather(city: str, unit: str = "C") -> str:
        """Weather of a city."""
        return f"{city}: 21 {unit}"

    registry.register(StructuredTool.from_function(weather), api="Weather(city, unit)", name="Weather")
    llm = ScriptedMossLLM(responses=turn_generations("天气", 'Weather(city="Paris", unit="F")', "21F"))
    agent = MossAgent(llm, tools=registry, plugins=["Weather", "Calculate"])
    assert "- Weather: enabled. API: Weather(city, unit)\n" in agent.meta_instruction
    record = agent.run("Paris?")
    assert record.tool_calls[0].result.output == "Paris: 21 F"


def test_broken_tool_becomes_no_result(registry):
    def explode(text: str) -> str:
        """Always fails."""
        raise RuntimeError("boom")

    registry.register(StructuredTool.from_function(explode), name="Explode")
    llm = ScriptedMossLLM(responses=turn_generations("t", 'Explode("x")', "sorry"))
    record = MossAgent(llm, tools=registry, plugins=["Explode"]).run("x")
    assert record.tool_calls[0].result.output == "No result."
    assert "boom" in (record.tool_calls[0].error or "")


def test_bad_query_and_unregistered_plugin(registry):
    with pytest.raises(UsageError):
        MossAgent(ScriptedMossLLM(), tools=registry).run("  ")
    with pytest.raises(UsageError):
        MossAgent(ScriptedMossLLM(), tools=registry, plugins=["Nope"])


def test_replaying_sample_conversations(sample_dir, registry):
    """Replay MOSS's own turns: the agent reads the same calls and the reply comes through."""
    files = sorted(iter_conversation_files([sample_dir / "calculator", sample_dir / "equation_solver"]))[:30]
    replayed = 0
    for path in files:
        ((source, data),) = list(load_conversations(path))
        record = parse_conversation(data, source)
        responses = []
        for key in sorted(data["chat"], key=lambda k: int(k.split("_")[1])):
            fields = data["chat"][key]
            responses += [fields["Inner Thoughts"] + fields["Commands"], fields["MOSS"]]
        llm = ScriptedMossLLM(responses=responses)
        agent = MossAgent(llm, tools=registry, plugins=sorted(record.meta.enabled))
        for turn in record.turns:
            result = agent.run(turn.human)
            assert [i.name for i in result.invocations] == [i.name for i in turn.commands.invocations]
            assert result.reply == turn.reply.strip()
            replayed += 1
    assert replayed >= 30


def test_run_batch_matches_one_by_one(registry):
    from moss_agent.agent import run_batch

    def respond(prompt: str) -> str:
        query = prompt.rsplit("<|Human|>: ", 1)[1].split("<eoh>", 1)[0]
        if "<|Results|>" in prompt.rsplit("<|Human|>: ", 1)[1]:
            return "<|MOSS|>: done " + query + "<eom>"
        if query.startswith("calc"):
            return f'<|Inner Thoughts|>: c<eot>\n<|Commands|>: Calculate("{query[4:]}")<eoc>'
        return "<|Inner Thoughts|>: none<eot>\n<|Commands|>: None<eoc>"

    llm = ScriptedMossLLM(respond=respond)
    queries = ["calc2+2", "hello", "calc3*3"]
    agents = [MossAgent(llm, tools=registry) for _ in queries]
    records = run_batch(list(zip(agents, queries)))
    assert [r.tools_used for r in records] == [["Calculate"], [], ["Calculate"]]
    assert [r.tool_calls[0].result.output for r in records if r.tool_calls] == ["4", "9"]
    assert [r.reply for r in records] == ["done calc2+2", "done hello", "done calc3*3"]
    assert all(len(a.history) == 1 for a in agents)
    with pytest.raises(UsageError):
        run_batch([(agents[0], "x"), (MossAgent(ScriptedMossLLM(), tools=registry), "y")])
