"""``ChatMoss``: MOSS as a LangChain chat model with tool calling.

The chat model renders messages into the MOSS protocol, lets the text model write the
inner thoughts and Commands, and returns the Commands as ``AIMessage.tool_calls``; tool
messages come back as the Results block and the model writes the reply. The text model
is a :class:`~moss_agent.models.llm.MossLLM` built from ``model`` (loaded lazily on first
use), or any LangChain LLM passed as ``llm`` (a scripted one in tests).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM, LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import InvalidToolCall, ToolCall, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, PrivateAttr

from moss_agent.errors import UsageError
from moss_agent.models.chat_prompt import (
    BoundTool,
    args_json,
    call_types,
    invocations_to_tool_calls,
    messages_to_prompt,
    no_call_continuation,
    tools_to_plugins,
)
from moss_agent.models.options import MossModelOptions
from moss_agent.protocol import (
    FIRST_STOPS,
    REPLY_STOPS,
    ParsedGeneration,
    ReplyStreamFilter,
    parse_generation,
    render_section,
)

__all__ = ["ChatMoss"]


@dataclass
class _Step:
    """Where a chat call stands after its first generation."""

    reply_prompt: str
    stops: list[str]
    parsed: ParsedGeneration | None = None
    thoughts: str | None = None
    reply: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0

    def usage(self) -> UsageMetadata:
        return UsageMetadata(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            total_tokens=self.input_tokens + self.output_tokens,
            input_token_details={},
            output_token_details={},
        )


class ChatMoss(MossModelOptions, BaseChatModel):
    """MOSS as a LangChain chat model, with ``bind_tools`` and structured output.

    Example:
        >>> chat = ChatMoss(model="fnlp/moss-moon-003-sft-plugin")  # doctest: +SKIP
        >>> chat.bind_tools([get_weather]).invoke("Weather in Paris?").tool_calls  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    model: str | None = Field(default_factory=lambda: os.environ.get("MOSS_AGENT_MODEL"), alias="model_name")
    """A checkpoint folder or hub id (MOSS format or any causal LM speaking the protocol);
    ``$MOSS_AGENT_MODEL`` by default, else the embedded moss-tiny-plugin."""
    llm: BaseLLM | None = Field(default=None, exclude=True)
    """A ready text model to use instead of loading ``model``."""
    inner_thoughts: bool = True
    """Whether the meta instruction enables inner thoughts."""
    plugins: list[str] | None = None
    """Plugins enabled in the meta instruction; by default the bound tools."""

    _text_model: BaseLLM | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "moss-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, **self.option_values(), "inner_thoughts": self.inner_thoughts}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "moss"
        params["ls_model_name"] = (
            kwargs.get("model") or self.model or (self.llm._llm_type if self.llm else "moss")
        )
        params["ls_temperature"] = kwargs.get("temperature", self.temperature)
        params["ls_max_tokens"] = kwargs.get("max_new_tokens", self.max_new_tokens)
        return params

    # --- the text model ------------------------------------------------------------------

    def _text_llm(self) -> BaseLLM:
        if self.llm is not None:
            return self.llm
        if self._text_model is None:
            from moss_agent.models.embedded import EMBEDDED_MODEL_NAME, resolve_model
            from moss_agent.models.llm import MossLLM

            path = resolve_model(self.model or EMBEDDED_MODEL_NAME)  # a clear error when there is none
            self._text_model = MossLLM(model=path, **self.option_values())
        return self._text_model

    def _complete(
        self, prompt: str, stop: Sequence[str], run_manager: CallbackManagerForLLMRun | None, **kwargs: Any
    ) -> tuple[str, int, int]:
        llm = self._text_llm()
        result = llm.generate([prompt], stop=list(stop), **kwargs)
        generation = result.generations[0][0]
        info = generation.generation_info or {}
        prompt_tokens = int(info.get("prompt_tokens") or llm.get_num_tokens(prompt))
        completion_tokens = int(info.get("completion_tokens") or llm.get_num_tokens(generation.text))
        return generation.text, prompt_tokens, completion_tokens

    # --- tools ---------------------------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | Literal["auto", "any", "required", "none"] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools: each becomes a plugin line the model can call.

        Args:
            tools: LangChain tools, pydantic models, functions or OpenAI tool dicts.
            tool_choice: ``"auto"`` (default), ``"none"``, ``"any"``/``"required"``/``True``
                (a call is forced), or a tool name (that tool is called).
            **kwargs: Bound as call options.
        """
        bound = tools_to_plugins(tools)
        names = [t.name for t in bound]
        if tool_choice is True:
            tool_choice = "any"
        if isinstance(tool_choice, dict):
            tool_choice = tool_choice.get("function", {}).get("name") or tool_choice.get("name")
        if tool_choice not in (None, False, "auto", "any", "required", "none") and tool_choice not in names:
            raise UsageError(f"tool_choice {tool_choice!r} is not one of the bound tools {names}")
        return super().bind(moss_tools=bound, tool_choice=tool_choice or None, **kwargs)

    # --- generation ----------------------------------------------------------------------

    def _first_generation(
        self,
        prompt: str,
        tools: list[BoundTool],
        tool_choice: str | None,
        run_manager: CallbackManagerForLLMRun | None,
        **kwargs: Any,
    ) -> tuple[str, ParsedGeneration, int, int]:
        from moss_agent.models.llm import with_call_types

        kwargs = with_call_types(self._text_llm(), kwargs, call_types(tools))
        text, prompt_tokens, completion_tokens = self._complete(prompt, FIRST_STOPS, run_manager, **kwargs)
        parsed = parse_generation(text)
        forced = None
        bound = {t.name for t in tools}
        if (
            tool_choice in ("any", "required")
            and tools
            and not any(i.name in bound for i in parsed.invocations)
        ):
            forced = tools[0].name
        elif tool_choice and tool_choice not in ("auto", "any", "required", "none"):
            if [i.name for i in parsed.invocations] != [tool_choice] * len(
                parsed.invocations
            ) or not parsed.invocations:
                forced = tool_choice
        if forced is not None:
            # Let the model write the arguments of the tool the caller chose.
            prefix = render_section("Inner Thoughts", parsed.thoughts or f"I will use {forced}.")
            prefix += f"<|Commands|>: {forced}("
            more, extra_prompt, extra_completion = self._complete(
                prompt + prefix, FIRST_STOPS, run_manager, **kwargs
            )
            text = prefix + more
            parsed = parse_generation(text)
            prompt_tokens += extra_prompt
            completion_tokens += extra_completion
        return text, parsed, prompt_tokens, completion_tokens

    def _prepare(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> _Step:
        """Run the first generation (unless the prompt ends with Results); say what is next."""
        tools: list[BoundTool] = kwargs.pop("moss_tools", None) or []
        tool_choice: str | None = kwargs.pop("tool_choice", None)
        kwargs.pop("ls_structured_output_format", None)
        requested = kwargs.pop("model", None)
        if requested is not None and requested != self.model:
            raise UsageError(
                f"this ChatMoss serves {self.model!r}; create another ChatMoss for {requested!r}"
            )
        enabled = [] if tool_choice == "none" else self.plugins
        prompt = messages_to_prompt(messages, tools, enabled=enabled, inner_thoughts=self.inner_thoughts)
        step = _Step(reply_prompt=prompt.text, stops=[*REPLY_STOPS, *(stop or [])])
        if prompt.after_results:
            return step
        _, parsed, step.input_tokens, step.output_tokens = self._first_generation(
            prompt.text, tools, tool_choice, run_manager, **kwargs
        )
        step.parsed, step.thoughts = parsed, parsed.thoughts
        if parsed.invocations:
            step.tool_calls, step.invalid_tool_calls = invocations_to_tool_calls(
                parsed.invocations, {t.name: t for t in tools}
            )
        elif parsed.reply is not None:
            step.reply = parsed.reply
        else:
            commands_text = parsed.commands.text if parsed.commands and parsed.commands.text else "None"
            step.reply_prompt = prompt.text + no_call_continuation(parsed.thoughts, commands_text)
        return step

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        step = self._prepare(messages, stop, run_manager, kwargs)
        if not step.tool_calls and not step.invalid_tool_calls and step.reply is None:
            text, prompt_tokens, completion_tokens = self._complete(
                step.reply_prompt, step.stops, run_manager, **kwargs
            )
            parsed_reply = parse_generation(text)
            step.reply = parsed_reply.reply if parsed_reply.reply is not None else text.strip()
            step.input_tokens += prompt_tokens
            step.output_tokens += completion_tokens
        message = AIMessage(
            content=step.reply or "",
            additional_kwargs={"reasoning_content": step.thoughts} if step.thoughts else {},
            tool_calls=step.tool_calls,
            invalid_tool_calls=step.invalid_tool_calls,
            usage_metadata=step.usage(),
            response_metadata=self._metadata(step),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        step = self._prepare(messages, stop, run_manager, kwargs)
        if step.tool_calls or step.invalid_tool_calls:
            chunk = AIMessageChunk(
                content="",
                additional_kwargs={"reasoning_content": step.thoughts} if step.thoughts else {},
                tool_call_chunks=[
                    tool_call_chunk(name=c["name"], args=args_json(c["args"]), id=c["id"], index=i)
                    for i, c in enumerate(step.tool_calls)
                ],
            )
            # Chunks rebuild tool calls from tool_call_chunks; unreadable calls travel separately.
            chunk.invalid_tool_calls = step.invalid_tool_calls
            yield ChatGenerationChunk(message=chunk)
        elif step.reply is not None:
            yield self._content_chunk(step.reply, step.thoughts, run_manager)
        else:
            llm = self._text_llm()
            filt = ReplyStreamFilter()
            thoughts = step.thoughts
            for piece in llm.stream(step.reply_prompt, stop=step.stops, **kwargs):
                visible = filt.feed(piece)
                if visible:
                    yield self._content_chunk(visible, thoughts, run_manager)
                    thoughts = None
            step.input_tokens += llm.get_num_tokens(step.reply_prompt)
            step.output_tokens += llm.get_num_tokens(filt.raw)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=step.usage(),
                response_metadata=self._metadata(step),
                chunk_position="last",
            )
        )

    def _metadata(self, step: _Step) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "finish_reason": "tool_calls" if step.tool_calls else "stop",
            "model_name": self.model or "moss",
            "model_provider": "moss",
        }
        if step.parsed is not None and step.parsed.errors:
            metadata["parse_errors"] = [str(e) for e in step.parsed.errors]
        return metadata

    def _content_chunk(
        self, text: str, thoughts: str | None, run_manager: CallbackManagerForLLMRun | None
    ) -> ChatGenerationChunk:
        chunk = ChatGenerationChunk(
            message=AIMessageChunk(
                content=text, additional_kwargs={"reasoning_content": thoughts} if thoughts else {}
            )
        )
        if run_manager:
            run_manager.on_llm_new_token(text, chunk=chunk)
        return chunk
