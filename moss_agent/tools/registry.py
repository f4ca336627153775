"""The plugin registry: MOSS API names → tools, and running a model's calls safely.

Any LangChain tool can be a plugin. The registry invokes it with a tool call, so tools
with ``response_format="content_and_artifact"`` hand back their artifact (the search
snippets, the saved image path). A tool that raises, hangs past its time limit or is
unknown never stops the agent: the model reads ``No result.``.
"""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moss_agent.errors import UsageError
from moss_agent.protocol import (
    DEFAULT_PLUGINS,
    NO_RESULT,
    PluginDeclaration,
    ResultLayout,
    ToolInvocation,
    ToolResult,
    builtin_plugins,
    result_for,
)

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = ["Plugin", "ToolCallRecord", "ToolRegistry", "default_registry"]

#: Seconds a single tool call may take before the model reads ``No result.``.
DEFAULT_TOOL_TIMEOUT_S = 30.0
#: Results text longer than this is cut: a tool cannot flood the model's context.
MAX_TOOL_OUTPUT_CHARS = 4_000
#: Seconds a Text2Image call may run.
DEFAULT_IMAGE_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Plugin:
    """A tool the model can call.

    Attributes:
        declaration: Name, switch-line label and API text.
        tool: The LangChain tool that runs it.
        layout: How its output is written in Results.
        timeout: Seconds one call may run; the registry's timeout when ``None``.
    """

    declaration: PluginDeclaration
    tool: BaseTool
    layout: ResultLayout = ResultLayout.INLINE
    timeout: float | None = None

    @property
    def name(self) -> str:
        """The API name the model calls."""
        return self.declaration.name


@dataclass(frozen=True)
class ToolCallRecord:
    """What happened when one call ran.

    Attributes:
        invocation: The call as the model wrote it.
        result: The Results entry the model reads.
        artifact: The tool's artifact (search snippets, image path), if any.
        error: Why the call failed, if it did.
        seconds: Wall time of the call.
    """

    invocation: ToolInvocation
    result: ToolResult
    artifact: Any = None
    error: str | None = None
    seconds: float = 0.0


@dataclass
class ToolRegistry:
    """Maps MOSS API names to plugins and runs calls with limits.

    Attributes:
        plugins: Registered plugins by API name.
        timeout: Seconds one call may run.
        max_concurrency: Calls of one turn run at most this many at a time.
    """

    plugins: dict[str, Plugin] = field(default_factory=dict)
    timeout: float = DEFAULT_TOOL_TIMEOUT_S
    max_concurrency: int = 4

    def register(
        self,
        tool: BaseTool,
        *,
        name: str | None = None,
        label: str | None = None,
        api: str | None = None,
        layout: ResultLayout = ResultLayout.INLINE,
        timeout: float | None = None,
    ) -> Plugin:
        """Register a LangChain tool as a plugin.

        Args:
            tool: Any LangChain tool.
            name: API name the model calls; the tool's name by default.
            label: Switch-line label; the name by default.
            api: API text of the switch line, e.g. ``"Weather(city)"``; built from the
                tool's arguments by default.
            layout: How its output is written in Results.
            timeout: Seconds one call may run; the registry's timeout by default.
        """
        name = name or tool.name
        if not name.isidentifier():
            raise UsageError(f"plugin name {name!r} must be a Python identifier the model can call")
        builtin = {p.name: p for p in builtin_plugins()}
        if name in builtin and label is None and api is None:
            declaration = builtin[name]
        else:
            params = ", ".join(tool.args) if tool.args else ""
            declaration = PluginDeclaration(name, label or name, api or f"{name}({params})")
        plugin = Plugin(declaration, tool, layout, timeout)
        self.plugins[name] = plugin
        return plugin

    def __contains__(self, name: object) -> bool:
        return name in self.plugins

    def timeout_for(self, name: str) -> float:
        """Seconds a call of ``name`` may run."""
        plugin = self.plugins.get(name)
        return plugin.timeout if plugin is not None and plugin.timeout is not None else self.timeout

    def declarations(self, enabled: Iterable[str] | None = None) -> list[PluginDeclaration]:
        """Declarations of the custom (non built-in) plugins, for the meta instruction."""
        builtin = {p.name for p in builtin_plugins()}
        names = set(self.plugins) if enabled is None else set(enabled)
        return [p.declaration for n, p in self.plugins.items() if n in names and n not in builtin]

    def run(self, invocation: ToolInvocation, enabled: Iterable[str] | None = None) -> ToolCallRecord:
        """Run one call; never raises. Disabled or unknown tools read ``No result.``."""
        started = time.perf_counter()
        plugin = self.plugins.get(invocation.name)
        if plugin is None or (enabled is not None and invocation.name not in set(enabled)):
            reason = "not registered" if plugin is None else "disabled"
            return ToolCallRecord(
                invocation,
                ToolResult(invocation.text, NO_RESULT),
                None,
                f"tool {invocation.name!r} is {reason}",
            )
        try:
            content, artifact = _invoke(plugin.tool, _tool_args(plugin.tool, invocation))
        except Exception as exc:  # a broken tool must not stop the agent
            return ToolCallRecord(
                invocation,
                result_for(invocation, NO_RESULT, _failed(plugin.layout)),
                None,
                f"{type(exc).__name__}: {exc}",
                time.perf_counter() - started,
            )
        output: str | Sequence[str]
        if plugin.layout is ResultLayout.HITS and isinstance(artifact, list) and artifact:
            output = [str(s)[:MAX_TOOL_OUTPUT_CHARS] for s in artifact]
        else:
            output = content[:MAX_TOOL_OUTPUT_CHARS]
        error = "no result" if output == NO_RESULT else None
        layout = _failed(plugin.layout) if isinstance(output, str) else plugin.layout
        return ToolCallRecord(
            invocation, result_for(invocation, output, layout), artifact, error, time.perf_counter() - started
        )

    def run_all(
        self, invocations: Sequence[ToolInvocation], enabled: Iterable[str] | None = None
    ) -> list[ToolCallRecord]:
        """Run the calls of one turn concurrently, each within the time limit, in order."""
        if not invocations:
            return []
        enabled_list = None if enabled is None else list(enabled)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(invocations)))
        try:
            futures = [pool.submit(self.run, inv, enabled_list) for inv in invocations]
            records = []
            started = time.monotonic()
            for inv, future in zip(invocations, futures):
                limit = self.timeout_for(inv.name)
                try:
                    records.append(future.result(timeout=max(0.0, started + limit - time.monotonic())))
                except concurrent.futures.TimeoutError:
                    records.append(
                        ToolCallRecord(
                            inv, ToolResult(inv.text, NO_RESULT), None, f"timed out after {limit:g} s", limit
                        )
                    )
            return records
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def _failed(layout: ResultLayout) -> ResultLayout:
    """Failures are written on the call line for inline tools, else as a block."""
    return ResultLayout.INLINE if layout is ResultLayout.INLINE else ResultLayout.BLOCK


def _tool_args(tool: BaseTool, invocation: ToolInvocation) -> dict[str, Any]:
    params = list(tool.args)
    args: dict[str, Any] = dict(invocation.kwargs)
    for param, value in zip([p for p in params if p not in args], invocation.args):
        args[param] = value
    return args


def _invoke(tool: BaseTool, args: dict[str, Any]) -> tuple[str, Any]:
    """Invoke a tool as a tool call so content-and-artifact tools return both."""
    from langchain_core.messages import ToolMessage

    message = tool.invoke(
        {"type": "tool_call", "name": tool.name, "args": args, "id": f"call_{uuid.uuid4().hex}"}
    )
    if isinstance(message, ToolMessage):
        content = message.content if isinstance(message.content, str) else str(message.content)
        return content, message.artifact
    return str(message), None


def default_registry(
    *,
    search_backend: Any = None,
    image_generator: Any = None,
    timeout: float = DEFAULT_TOOL_TIMEOUT_S,
    image_timeout: float = DEFAULT_IMAGE_TIMEOUT_S,
    extra_tools: Sequence[BaseTool] = (),
) -> ToolRegistry:
    """The four MOSS plugins with real tools, plus any extra LangChain tools.

    Args:
        search_backend: A :class:`~moss_agent.tools.search.SearchBackend`; the default
            picks a local corpus (``MOSS_AGENT_SEARCH_CORPUS``) or ddgs.
        image_generator: An :class:`~moss_agent.tools.text2image.ImageGenerator`.
        timeout: Seconds one call may run.
        image_timeout: Seconds a Text2Image call may run (loading a pipeline and generating
            on a CPU takes minutes).
        extra_tools: LangChain tools registered as custom plugins under their own names.
    """
    from moss_agent.tools.calculator import calculator_tool
    from moss_agent.tools.search import search_tool
    from moss_agent.tools.solver import solver_tool
    from moss_agent.tools.text2image import text2image_tool

    registry = ToolRegistry(timeout=timeout)
    timeouts = {"Text2Image": max(timeout, image_timeout)}
    factories: dict[str, tuple[Callable[[], BaseTool], ResultLayout]] = {
        "Search": (lambda: search_tool(search_backend), ResultLayout.HITS),
        "Calculate": (calculator_tool, ResultLayout.INLINE),
        "Solve": (solver_tool, ResultLayout.BLOCK),
        "Text2Image": (lambda: text2image_tool(image_generator), ResultLayout.BLOCK),
    }
    for name in DEFAULT_PLUGINS:
        factory, layout = factories[name]
        registry.register(factory(), name=name, layout=layout, timeout=timeouts.get(name))
    for tool in extra_tools:
        registry.register(tool)
    return registry
