"""The MOSS plugin protocol: every MOSS string, rendering and parsing.

Pure text, no torch. This package is the single source of truth for the tags, end
tokens and layouts that moss-moon-003-sft-plugin was trained on:

- ``_strings``: tags, end tokens, fixed Results texts, stop lists;
- ``_meta``: the plugin switch block and the meta instruction;
- ``_objects``: typed calls, Commands, Results, turns, parsed generations;
- ``_render``: turns and Results as text;
- ``_parse``: model text and program-written Results back into objects.
"""

from __future__ import annotations

from moss_agent.protocol._meta import (
    DEFAULT_PLUGINS,
    MetaInstruction,
    PluginDeclaration,
    builtin_plugins,
    default_meta_preamble,
    parse_meta_instruction,
    render_meta_instruction,
)
from moss_agent.protocol._objects import (
    Commands,
    ParsedGeneration,
    ResultLayout,
    Results,
    Snippet,
    ToolInvocation,
    ToolResult,
    Turn,
)
from moss_agent.protocol._parse import (
    ReplyStreamFilter,
    parse_commands,
    parse_generation,
    parse_results,
    parse_section,
)
from moss_agent.protocol._render import (
    render_conversation,
    render_results,
    render_section,
    render_turn,
    result_for,
    results_for,
)
from moss_agent.protocol._strings import (
    CAPABILITIES_HEADER,
    COMMANDS_TAG,
    END_OF_COMMANDS,
    END_OF_HUMAN,
    END_OF_MESSAGE,
    END_OF_RESULTS,
    END_OF_TEXT,
    END_OF_THOUGHTS,
    FIRST_STOPS,
    HUMAN_TAG,
    IMAGE_GENERATED,
    INNER_THOUGHTS_LABEL,
    INNER_THOUGHTS_TAG,
    MISPLACED_ENDS,
    MOSS_TAG,
    NO_CALL,
    NO_RESULT,
    REPLY_STOPS,
    RESULTS_TAG,
    SECTIONS,
    SPECIAL_TOKENS,
    STOPS_AFTER_COMMANDS,
    STOPS_AFTER_REPLY,
)

__all__ = [
    "CAPABILITIES_HEADER",
    "COMMANDS_TAG",
    "Commands",
    "DEFAULT_PLUGINS",
    "END_OF_COMMANDS",
    "END_OF_HUMAN",
    "END_OF_MESSAGE",
    "END_OF_RESULTS",
    "END_OF_TEXT",
    "END_OF_THOUGHTS",
    "FIRST_STOPS",
    "HUMAN_TAG",
    "IMAGE_GENERATED",
    "INNER_THOUGHTS_LABEL",
    "INNER_THOUGHTS_TAG",
    "MISPLACED_ENDS",
    "MOSS_TAG",
    "MetaInstruction",
    "NO_CALL",
    "NO_RESULT",
    "ParsedGeneration",
    "PluginDeclaration",
    "REPLY_STOPS",
    "RESULTS_TAG",
    "ReplyStreamFilter",
    "ResultLayout",
    "Results",
    "SECTIONS",
    "SPECIAL_TOKENS",
    "STOPS_AFTER_COMMANDS",
    "STOPS_AFTER_REPLY",
    "Snippet",
    "ToolInvocation",
    "ToolResult",
    "Turn",
    "builtin_plugins",
    "default_meta_preamble",
    "parse_commands",
    "parse_generation",
    "parse_meta_instruction",
    "parse_results",
    "parse_section",
    "render_conversation",
    "render_meta_instruction",
    "render_results",
    "render_section",
    "render_turn",
    "result_for",
    "results_for",
]
