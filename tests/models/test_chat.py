from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from moss_agent.errors import UsageError
from moss_agent.models.chat import ChatMoss
from moss_agent.models.chat_prompt import messages_to_prompt, tools_to_plugins
from moss_agent.testing import ScriptedMossLLM, turn_generations


@tool
def get_weather(city: str) -> str:
    """Get the current weather of a city."""
    return f"{city}: sunny, 21 C"


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="Full name")
    age: int


class search_docs(BaseModel):  # noqa: N801 - the tool name
    """Search the docs."""

    query: str
    limit: int = 5
    section: str | None = None


def chat_with(*responses: str) -> tuple[ChatMoss, ScriptedMossLLM]:
    llm = ScriptedMossLLM(responses=list(responses))
    return ChatMoss(llm=llm), llm


def test_tool_call_round_trip_through_tool_message():
    chat, llm = chat_with(
        *turn_generations("I need the weather", 'get_weather("Paris")', "It is sunny in Paris.")
    )
    bound = chat.bind_tools([get_weather, multiply])
    msg = bound.invoke([SystemMessage("Answer briefly."), HumanMessage("Weather in Paris?")])
    assert msg.tool_calls[0]["name"] == "get_weather" and msg.tool_calls[0]["args"] == {"city": "Paris"}
    assert msg.tool_calls[0]["id"].startswith("call_")
    assert msg.additional_kwargs["reasoning_content"] == "I need the weather"
    assert {"type": "reasoning", "reasoning": "I need the weather"} in msg.content_blocks
    assert msg.usage_metadata["input_tokens"] > 0 and msg.usage_metadata["output_tokens"] > 0
    assert "- Get the current weather of a city: enabled. API: get_weather(city)\n" in llm.prompts[0]
    assert "Answer briefly.\n<|Human|>" in llm.prompts[0]
    observation = ToolMessage(
        get_weather.invoke(msg.tool_calls[0]["args"]), tool_call_id=msg.tool_calls[0]["id"]
    )
    final = bound.invoke([HumanMessage("Weather in Paris?"), msg, observation])
    assert final.content == "It is sunny in Paris." and final.tool_calls == []
    assert llm.prompts[1].endswith(
        '<|Commands|>: get_weather("Paris")<eoc>\n<|Results|>:\nget_weather("Paris") => \'Paris: sunny, 21 C\'\n<eor>\n'
    )


def test_keyword_call_and_invalid_calls():
    chat, _ = chat_with(*turn_generations("mul", 'multiply(a=3, b=4), fly(to="moon"), multiply(c=1)', "12"))
    msg = chat.bind_tools([multiply]).invoke("3 times 4?")
    assert [c["args"] for c in msg.tool_calls] == [{"a": 3, "b": 4}]
    assert [c["name"] for c in msg.invalid_tool_calls] == ["fly", "multiply"]
    assert len({c["id"] for c in msg.tool_calls + msg.invalid_tool_calls}) == 3


def test_plain_chat_without_tools_writes_no_call_turn():
    chat, llm = chat_with(*turn_generations("greeting", "None", "Hello!"))
    msg = chat.invoke("hi")
    assert msg.content == "Hello!" and msg.tool_calls == []
    assert "<|Commands|>: None<eoc>\n<|Results|>:\nNone\n<eor>\n" in llm.prompts[1]
    assert "- Web search: disabled.\n" in llm.prompts[0]


def test_streaming_chunks_and_last_chunk():
    chat, _ = chat_with(*turn_generations("greeting", "None", "Hello there, friend"))
    chunks = list(chat.stream("hi"))
    assert "".join(c.text for c in chunks) == "Hello there, friend"
    assert len(chunks) > 3
    assert chunks[-1].chunk_position == "last" and chunks[-1].usage_metadata["total_tokens"] > 0
    chat, _ = chat_with(*turn_generations("t", "multiply(a=2, b=5)", "10"))
    chunks = list(chat.bind_tools([multiply]).stream("2*5"))
    merged = chunks[0]
    for c in chunks[1:]:
        merged += c
    assert merged.tool_call_chunks[0]["name"] == "multiply"
    assert merged.tool_calls[0]["args"] == {"a": 2, "b": 5}


def test_stop_strings_are_honoured():
    chat, _ = chat_with(*turn_generations("t", "None", "one, two, three"))
    assert chat.invoke("count", stop=[", three"]).content == "one, two"


def test_tool_choice_forces_the_named_tool():
    llm = ScriptedMossLLM(responses=[turn_generations("no tool needed", "None", "x")[0], 'city="Rome")<eoc>'])
    chat = ChatMoss(llm=llm).bind_tools([get_weather, multiply], tool_choice="get_weather")
    msg = chat.invoke("Tell me about Rome")
    assert msg.tool_calls[0]["name"] == "get_weather" and msg.tool_calls[0]["args"] == {"city": "Rome"}
    assert llm.prompts[1].endswith("<|Commands|>: get_weather(")
    with pytest.raises(UsageError):
        ChatMoss(llm=llm).bind_tools([get_weather], tool_choice="nope")


def test_with_structured_output_pydantic():
    chat, _ = chat_with(*turn_generations("extract", 'Person(name="Ada Lovelace", age=36)', ""))
    person = chat.with_structured_output(Person).invoke("Ada Lovelace died at 36.")
    assert person == Person(name="Ada Lovelace", age=36)


def test_optional_parameters_are_written_with_their_default_in_the_api_line():
    from moss_agent.models.call_constraint import CallGrammar
    from moss_agent.protocol import render_meta_instruction

    (tool,) = tools_to_plugins([search_docs])
    assert tool.declaration.api == "search_docs(query, limit=5, section=None)"
    prompt = render_meta_instruction(["search_docs"], custom=[tool.declaration]) + "<|Human|>: hi<eoh>\n"
    grammar = CallGrammar.from_prompt(prompt)
    assert grammar is not None and grammar.required["search_docs"] == ("query",)
    assert grammar.params["search_docs"] == ("query", "limit", "section")


def test_messages_to_prompt_rules():
    tools = tools_to_plugins([get_weather])
    assert tools[0].single_text and tools[0].declaration.api == "get_weather(city)"
    with pytest.raises(UsageError):
        messages_to_prompt([HumanMessage("hi"), AIMessage("hello")])
    prompt = messages_to_prompt([HumanMessage("hi"), AIMessage("hello"), HumanMessage("again")])
    assert "<|Human|>: hi<eoh>\n<|Inner Thoughts|>: None<eot>\n<|Commands|>: None<eoc>\n" in prompt.text
    assert prompt.text.endswith("<|MOSS|>: hello<eom>\n<|Human|>: again<eoh>\n") and not prompt.after_results


def test_model_or_llm_is_required(monkeypatch):
    import moss_agent.models.embedded as embedded

    monkeypatch.delenv("MOSS_AGENT_MODEL", raising=False)
    monkeypatch.setattr(embedded, "embedded_model_path", lambda: None)
    with pytest.raises(UsageError):
        ChatMoss(model=None).invoke("hi")


def test_runs_in_langchain_create_agent_with_project_tools():
    from langchain.agents import create_agent

    from moss_agent.tools.calculator import calculator_tool
    from moss_agent.tools.solver import solver_tool

    llm = ScriptedMossLLM(
        responses=turn_generations("鸡兔同笼，列方程组", 'Solve("x+y=35, 2x+4y=94")', "鸡23只，兔12只。")
    )
    agent = create_agent(ChatMoss(llm=llm), tools=[calculator_tool(), solver_tool()])
    state = agent.invoke({"messages": [HumanMessage("35个头94只脚，鸡兔各几只？")]})
    messages = state["messages"]
    tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
    assert tool_messages[0].content == "x = 23\ny = 12"
    assert messages[-1].content == "鸡23只，兔12只。"
    assert "- Equation solver: enabled. API: Solve(equation)\n" in llm.prompts[0]


def test_bound_tools_parameter_types_reach_the_engines_constraint(random_engine, scripted_generate):
    """ChatMoss hands its tools' JSON-schema kinds to the engine, so constrained values are typed."""
    from moss_agent.models.llm import MossLLM

    calls = scripted_generate(lambda prompt: "<|Inner Thoughts|>: ok<eot>\n<|Commands|>: multiply(a=2, b=3)")
    chat = ChatMoss(llm=MossLLM.from_engine(random_engine))
    message = chat.bind_tools([multiply, get_weather]).invoke("What is 2 times 3?")
    assert message.tool_calls[0]["args"] == {"a": 2, "b": 3}
    typed = {"multiply": {"a": "int", "b": "int"}, "get_weather": {"city": "str"}}
    assert [(c["constrain_calls"], c["call_types"]) for c in calls] == [(True, typed)]
    # an LLM that is not moss-agent's own is not handed the keyword
    scripted = ScriptedMossLLM(responses=["<|Inner Thoughts|>: ok<eot>\n<|Commands|>: multiply(a=2, b=3)"])
    assert ChatMoss(llm=scripted).bind_tools([multiply]).invoke("2 times 3?").tool_calls[0]["args"] == {
        "a": 2,
        "b": 3,
    }


def test_tools_record_their_parameters_literal_kinds():
    (tool,) = tools_to_plugins([search_docs])
    assert tool.kinds == ("str", "int", "null|str")
