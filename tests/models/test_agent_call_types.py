"""MossAgent hands its enabled custom tools' parameter kinds to moss-agent's own LLM."""

from __future__ import annotations

from langchain_core.tools import StructuredTool

from moss_agent.agent import MossAgent, run_batch
from moss_agent.models.llm import MossLLM
from moss_agent.testing import ScriptedMossLLM, turn_generations
from moss_agent.tools.registry import default_registry


def weather(city: str, days: int = 1) -> str:
    """Weather of a city."""
    return f"{city}: sunny for {days} days"


def _registry():
    registry = default_registry(timeout=20)
    registry.register(StructuredTool.from_function(weather), name="Weather", api="Weather(city, days=1)")
    return registry


def test_custom_tools_kinds_reach_the_engine_and_only_moss_agents_own_llm(
    random_engine, scripted_generate, monkeypatch
):
    def respond(prompt: str) -> str:
        if "<|Results|>" in prompt.rsplit("<|Human|>", 1)[1]:
            return "<|MOSS|>: Sunny."
        return '<|Inner Thoughts|>: weather<eot>\n<|Commands|>: Weather(city="Oslo", days=2)'

    calls = scripted_generate(respond)
    monkeypatch.setattr(random_engine, "stream", None)  # the reply is generated, not streamed, below
    llm = MossLLM.from_engine(random_engine)
    agent = MossAgent(llm, tools=_registry(), plugins=["Weather", "Calculate"])
    assert agent.call_types == {"Weather": {"city": "str", "days": "int"}}  # built-ins are free text
    records = run_batch([(agent, "Weather in Oslo for two days?")])
    assert records[0].tool_calls[0].result.output == "Oslo: sunny for 2 days"
    assert calls[0]["call_types"] == {"Weather": {"city": "str", "days": "int"}}
    assert MossAgent(llm, tools=_registry(), plugins=["Calculate"]).call_types == {}  # Weather not enabled
    # another LangChain LLM is not given the keyword
    scripted = ScriptedMossLLM(responses=turn_generations("weather", 'Weather(city="Oslo")', "Sunny."))
    record = MossAgent(scripted, tools=_registry(), plugins=["Weather"]).run("Oslo?")
    assert record.tool_calls[0].result.output == "Oslo: sunny for 1 days"
