from __future__ import annotations

import subprocess
import sys

import moss_agent

EXPECTED_ALL = [
    "ChatMoss",
    "ModelOutputError",
    "MossAgent",
    "MossAgentError",
    "MossLLM",
    "ParsedGeneration",
    "PluginDeclaration",
    "ScriptedMossLLM",
    "ToolInvocation",
    "ToolRegistry",
    "Turn",
    "TurnRecord",
    "UsageError",
    "__version__",
    "default_registry",
    "parse_generation",
    "render_meta_instruction",
]

HEAVY = ("torch", "transformers", "diffusers", "ddgs", "bm25s", "sympy", "gradio", "fastapi")


def test_all_is_pinned():
    assert sorted(moss_agent.__all__) == sorted(EXPECTED_ALL)
    for name in moss_agent.__all__:
        assert getattr(moss_agent, name) is not None


def _imported_after(statement: str) -> list[str]:
    code = f"import sys\n{statement}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_import_moss_agent_is_light():
    assert _imported_after("import moss_agent") == []


def test_protocol_agent_registry_and_cli_do_not_import_heavy_packages():
    statement = "import moss_agent.protocol, moss_agent.agent, moss_agent.tools.registry, moss_agent.cli"
    assert _imported_after(statement) == []
