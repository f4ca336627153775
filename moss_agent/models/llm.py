"""``MossLLM``: a local MOSS checkpoint as a LangChain LLM (text in, text out)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.llms import LLM
from langchain_core.outputs import Generation as LCGeneration
from langchain_core.outputs import GenerationChunk, LLMResult
from pydantic import ConfigDict, PrivateAttr

from moss_agent.models.options import SAMPLING_FIELDS, MossModelOptions

if TYPE_CHECKING:
    from moss_agent.models.engine import Generation, GenerationEngine, SamplingParams

__all__ = ["MossLLM", "with_call_types"]

_SAMPLING_FIELDS = SAMPLING_FIELDS


class MossLLM(MossModelOptions, LLM):
    """A MOSS checkpoint (or any causal LM that speaks its protocol) run locally.

    The model loads on first use. Stops are honored token by token: generation ends at
    the first stop and the returned text excludes it. Keyword arguments of
    ``invoke``/``stream`` override the sampling fields for that call.

    Example:
        .. code-block:: python

            llm = MossLLM(model="fnlp/moss-moon-003-sft-plugin", temperature=0.7)
            llm.invoke(prompt, stop=["<eoc>"])
    """

    model: str = "moss-tiny-plugin"
    """Local checkpoint folder or Hugging Face hub id (e.g. ``fnlp/moss-moon-003-sft-plugin``); by default
    ``$MOSS_AGENT_MODEL``, else the embedded moss-tiny-plugin."""
    model_config = ConfigDict(protected_namespaces=())

    _engine: GenerationEngine | None = PrivateAttr(default=None)
    _load_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_engine(cls, engine: GenerationEngine, **fields: Any) -> MossLLM:
        """Wrap an engine that is already loaded (shares its model and cache).

        Args:
            engine: The engine.
            **fields: Other fields, e.g. sampling defaults.
        """
        fields.setdefault("model", engine.loaded.name or "moss")
        fields.setdefault("reuse_cache", engine.reuse_cache)
        llm = cls(**fields)
        llm._engine = engine
        return llm

    @property
    def engine(self) -> GenerationEngine:
        """The generation engine, loading the model on first access."""
        if self._engine is None:
            with self._load_lock:
                if self._engine is None:
                    from moss_agent.models.embedded import resolve_model
                    from moss_agent.models.engine import GenerationEngine
                    from moss_agent.models.loading import load_model

                    loaded = load_model(
                        resolve_model(self.model),
                        dtype=self.dtype,
                        device=self.device,
                        device_map=self.device_map,
                        load_in_8bit=self.load_in_8bit,
                        load_in_4bit=self.load_in_4bit,
                        trust_remote_code=self.trust_remote_code,
                        revision=self.revision,
                    )
                    self._engine = GenerationEngine(loaded, reuse_cache=self.reuse_cache)
        return self._engine

    def context_length(self) -> int:
        """The model's context length in tokens (``n_positions``), loading it if needed."""
        config = self.engine.loaded.config
        length = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
        return int(length) if length else 2048

    def get_num_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the model's own tokenizer (number slots applied)."""
        return self.engine.count_tokens(text)

    @property
    def _llm_type(self) -> str:
        return "moss"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dtype": self.dtype,
            "load_in_8bit": self.load_in_8bit,
            "load_in_4bit": self.load_in_4bit,
            **{name: getattr(self, name) for name in _SAMPLING_FIELDS},
            "constrain_calls": self.constrain_calls,
        }

    def _sampling(self, overrides: dict[str, Any]) -> SamplingParams:
        from moss_agent.models.engine import SamplingParams

        values = {name: getattr(self, name) for name in _SAMPLING_FIELDS}
        return SamplingParams(**values).replace(**overrides)

    def _constrain(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The engine's Commands-constraint keywords for this call.

        ``constrain_calls`` (keyword, else the field) switches it; ``call_types`` (keyword,
        tool → parameter → literal kinds, as ``ChatMoss`` passes for bound tools) types values.
        """
        value = overrides.pop("constrain_calls", None)
        types = overrides.pop("call_types", None)
        return {
            "constrain_calls": self.constrain_calls if value is None else bool(value),
            "call_types": types,
        }

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        constrain = self._constrain(kwargs)
        return self.engine.generate(prompt, stop=stop or (), params=self._sampling(kwargs), **constrain).text

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        constrain = self._constrain(kwargs)
        params = self._sampling(kwargs)
        if len(prompts) == 1:
            generations = [self.engine.generate(prompts[0], stop=stop or (), params=params, **constrain)]
        else:  # evals: many prompts in one padded batch
            generations = self.engine.generate_batch(prompts, stop=stop or (), params=params, **constrain)
        return LLMResult(
            generations=[[LCGeneration(text=g.text, generation_info=_info(g))] for g in generations],
            llm_output={"model": self.model},
        )

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        constrain = self._constrain(kwargs)
        stream = self.engine.stream(prompt, stop=stop or (), params=self._sampling(kwargs), **constrain)
        try:
            for delta in stream:
                chunk = GenerationChunk(text=delta)
                if run_manager is not None:
                    run_manager.on_llm_new_token(delta, chunk=chunk)
                yield chunk
        finally:
            stream.close()
        if stream.generation is not None:
            yield GenerationChunk(text="", generation_info=_info(stream.generation))

    async def _acall(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: self._call(prompt, stop, None, **kwargs))

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        # One worker thread owns the whole stream (the engine lock is per thread);
        # chunks cross to the event loop through a queue.
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[GenerationChunk | BaseException | None] = asyncio.Queue()
        cancelled = threading.Event()

        def produce() -> None:
            try:
                for chunk in self._stream(prompt, stop, None, **kwargs):
                    if cancelled.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except BaseException as error:  # handed to the consumer
                loop.call_soon_threadsafe(queue.put_nowait, error)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = loop.run_in_executor(None, produce)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                if run_manager is not None and item.text:
                    await run_manager.on_llm_new_token(item.text, chunk=item)
                yield item
        finally:
            cancelled.set()
            await worker


def _info(generation: Generation) -> dict[str, Any]:
    return {
        "finish_reason": generation.finish_reason,
        "stop": generation.stop,
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "cached_tokens": generation.cached_tokens,
    }


def with_call_types(llm: Any, llm_kwargs: dict[str, Any], types: dict[str, dict[str, str]]) -> dict[str, Any]:
    """``llm_kwargs`` plus ``call_types`` (tools' parameter kinds) when ``llm`` is a :class:`MossLLM`.

    ``ChatMoss`` and ``MossAgent`` type the values of their tools' calls through it. Another
    LangChain LLM would not know the keyword, so it does not get it; ``call_types`` the caller
    gives already are kept.
    """
    if not types or not isinstance(llm, MossLLM) or "call_types" in llm_kwargs:
        return llm_kwargs
    return {**llm_kwargs, "call_types": types}
