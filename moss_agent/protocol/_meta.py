"""The plugin switch block and the meta instruction: building and parsing it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from moss_agent.errors import ParseError, UsageError
from moss_agent.protocol._strings import CAPABILITIES_HEADER, INNER_THOUGHTS_LABEL


@dataclass(frozen=True)
class PluginDeclaration:
    """A line of the plugin switch block.

    Attributes:
        name: The API name the model calls, e.g. ``"Calculate"``.
        label: The switch-line label, e.g. ``"Calculator"``.
        api: The API text shown when enabled, e.g. ``"Calculate(expression)"``; ``None``
            for MOSS's built-in plugins that have no public API (image edition, speech).
    """

    name: str
    label: str
    api: str | None

    def switch_text(self, enabled: bool) -> str:
        """The line without its bullet and newline: ``Calculator: enabled. API: Calculate(expression)``."""
        if enabled and self.api:
            return f"{self.label}: enabled. API: {self.api}"
        return f"{self.label}: disabled."

    def switch_line(self, enabled: bool) -> str:
        """The line as the model was trained on it, with its trailing newline."""
        return f"- {self.switch_text(enabled)}\n"


def _read_prompt(name: str) -> str:
    return resources.files("moss_agent.prompts").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def default_meta_preamble() -> str:
    """MOSS's meta instruction up to the capabilities sentence."""
    return _read_prompt("meta_instruction.txt")


@lru_cache(maxsize=1)
def builtin_plugins() -> tuple[PluginDeclaration, ...]:
    """The six plugins of the switch block, in the trained order."""
    return tuple(PluginDeclaration(**p) for p in json.loads(_read_prompt("plugins.json")))


#: MOSS API names of the four plugins moss-agent runs.
DEFAULT_PLUGINS: tuple[str, ...] = ("Search", "Calculate", "Solve", "Text2Image")


def render_meta_instruction(
    enabled: Iterable[str] = DEFAULT_PLUGINS,
    *,
    custom: Sequence[PluginDeclaration] = (),
    inner_thoughts: bool = True,
    preamble: str | None = None,
    extra_instructions: str = "",
) -> str:
    """Build the meta instruction with the plugin switch block exactly as trained.

    Args:
        enabled: API names of the enabled plugins (built-in or custom).
        custom: Extra plugins, declared after the six built-in lines.
        inner_thoughts: Whether the ``- Inner thoughts: enabled.`` line says enabled.
        preamble: Text before the capabilities sentence; MOSS's own by default.
        extra_instructions: Text appended after the switch block (e.g. a system message);
            a trailing newline is added when missing.

    Raises:
        UsageError: An enabled name is neither built in nor declared in ``custom``.
    """
    enabled_set = set(enabled)
    known = {p.name for p in builtin_plugins()} | {p.name for p in custom}
    unknown = sorted(enabled_set - known)
    if unknown:
        raise UsageError(
            f"unknown plugin(s) {unknown}; built-in ones are {list(DEFAULT_PLUGINS)}, "
            "declare others with custom=[PluginDeclaration(...)]"
        )
    lines = [default_meta_preamble() if preamble is None else preamble, CAPABILITIES_HEADER]
    lines.append(f"- {INNER_THOUGHTS_LABEL}: {'enabled' if inner_thoughts else 'disabled'}.\n")
    for plugin in (*builtin_plugins(), *custom):
        lines.append(plugin.switch_line(plugin.name in enabled_set))
    if extra_instructions:
        lines.append(extra_instructions if extra_instructions.endswith("\n") else extra_instructions + "\n")
    return "".join(lines)


@dataclass(frozen=True)
class MetaInstruction:
    """A parsed meta instruction.

    Attributes:
        preamble: The text before the capabilities sentence.
        inner_thoughts: Whether inner thoughts are enabled.
        plugins: Every declared plugin line, in order.
        enabled: API names of the enabled plugins.
        extra_instructions: Text after the switch block.
    """

    preamble: str
    inner_thoughts: bool
    plugins: tuple[PluginDeclaration, ...]
    enabled: frozenset[str]
    extra_instructions: str = ""

    def render(self) -> str:
        """Render back to text; equal to the parsed text for well-formed input."""
        builtin = {p.name for p in builtin_plugins()}
        return render_meta_instruction(
            self.enabled,
            custom=[p for p in self.plugins if p.name not in builtin],
            inner_thoughts=self.inner_thoughts,
            preamble=self.preamble,
            extra_instructions=self.extra_instructions,
        )


_SWITCH_LINE = re.compile(
    r"- (?P<label>[^:\n]+): (?:(?P<on>enabled)\.(?: API: (?P<api>[^\n]*))?|disabled\.)\n"
)


def parse_meta_instruction(text: str) -> MetaInstruction:
    """Parse a meta instruction with a plugin switch block.

    Raises:
        ParseError: The capabilities sentence or the switch lines are missing.
    """
    head, sep, rest = text.partition(CAPABILITIES_HEADER)
    if not sep:
        raise ParseError("meta instruction has no capabilities sentence", text=text[:200], section="meta")
    by_label = {p.label: p for p in builtin_plugins()}
    inner_thoughts = True
    plugins: list[PluginDeclaration] = []
    enabled: set[str] = set()
    pos = 0
    seen_thoughts = False
    while m := _SWITCH_LINE.match(rest, pos):
        label, on, api = m.group("label"), bool(m.group("on")), m.group("api")
        if label == INNER_THOUGHTS_LABEL:
            inner_thoughts, seen_thoughts = on, True
        else:
            if label in by_label:
                plugin = by_label[label]
            else:
                name = (api or label).split("(")[0].strip()
                plugin = PluginDeclaration(name=name, label=label, api=api)
            plugins.append(plugin)
            if on:
                enabled.add(plugin.name)
        pos = m.end()
    if not seen_thoughts:
        raise ParseError(
            "meta instruction has no inner-thoughts switch line", text=rest[:200], section="meta"
        )
    return MetaInstruction(head, inner_thoughts, tuple(plugins), frozenset(enabled), rest[pos:])
