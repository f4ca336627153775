"""The ``moss-agent`` command line: a thin shell over the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from moss_agent.errors import MossAgentError

app = typer.Typer(
    name="moss-agent",
    help="Run the MOSS plugin model as a tool-using agent, run its tools, check MOSS data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Work with MOSS SFT conversation data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@app.command("tool")
def tool_command(
    name: Annotated[str, typer.Argument(help="Search, Calculate, Solve or Text2Image (any case).")],
    argument: Annotated[str, typer.Argument(help="The argument, as the model would pass it.")],
    corpus: Annotated[
        Path | None, typer.Option(help="Search a local JSONL corpus instead of the web.", exists=True)
    ] = None,
    image_model: Annotated[str | None, typer.Option(help="Text-to-image model id or folder.")] = None,
    output_dir: Annotated[Path | None, typer.Option(help="Where generated images are saved.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds the tool may run.")] = 60.0,
) -> None:
    """Run one tool and print exactly the Results block the model would read.

    Tool failures print ``No result.`` and exit 0; only usage errors exit non-zero.
    """
    from moss_agent.protocol import DEFAULT_PLUGINS, ToolInvocation, render_results, results_for
    from moss_agent.tools.registry import default_registry

    canonical = {p.lower(): p for p in DEFAULT_PLUGINS}.get(name.lower())
    if canonical is None:
        raise _fail(f"unknown tool {name!r}; choose one of {', '.join(DEFAULT_PLUGINS)}")
    backend = generator = None
    if corpus is not None:
        from moss_agent.tools.search_backends import LocalCorpusBackend

        backend = LocalCorpusBackend(corpus)
    if image_model is not None or output_dir is not None:
        from moss_agent.tools.text2image import ImageGenerator

        generator = ImageGenerator(model_id=image_model, output_dir=output_dir)
    registry = default_registry(search_backend=backend, image_generator=generator, timeout=timeout)
    record = registry.run(ToolInvocation.call(canonical, argument))
    typer.echo(render_results(results_for([record.result])), nl=False)
    if record.error and record.error != "no result":
        typer.secho(f"({canonical}: {record.error})", err=True, fg=typer.colors.YELLOW)
    if record.artifact and canonical == "Text2Image":
        typer.secho(f"(image saved to {record.artifact})", err=True)


@data_app.command("validate")
def validate_command(
    paths: Annotated[
        list[Path], typer.Argument(help="Files (.json, .jsonl) or folders of MOSS conversations.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    show: Annotated[int, typer.Option(help="How many failures to list.")] = 20,
) -> None:
    """Parse and round-trip MOSS SFT conversations; exit 1 on any failure."""
    from moss_agent.conversations import validate_paths

    try:
        summary = validate_paths(paths)
    except MossAgentError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        _print_validation(summary, show)
    if summary.failures or summary.conversations == 0:
        raise typer.Exit(1)


def _print_validation(summary: object, show: int) -> None:
    from rich.console import Console
    from rich.table import Table

    data = summary.as_dict()  # type: ignore[attr-defined]
    console = Console()
    table = Table(title="MOSS conversation data", show_header=False)
    for key in (
        "files",
        "conversations",
        "turns",
        "round_trip_exact",
        "no_call_turns",
        "command_parse_errors",
    ):
        table.add_row(key.replace("_", " "), str(data[key]))
    for tool, count in data["commands_by_tool"].items():
        table.add_row(f"commands: {tool}", str(count))
    table.add_row("failures", str(len(data["failures"])))
    console.print(table)
    for failure in data["failures"][:show]:
        where = failure["source"] + (f" {failure['turn']}" if failure["turn"] else "")
        console.print(f"[red]FAIL[/red] {where}: {failure['reason']}", markup=True, highlight=False)
    if len(data["failures"]) > show:
        console.print(f"… and {len(data['failures']) - show} more (use --show or --json)")
    if data["conversations"] == 0:
        console.print("[red]no conversations found[/red]")


def main() -> None:
    """Entry point of the ``moss-agent`` script."""
    try:
        app()
    except MossAgentError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2)


if __name__ == "__main__":
    main()
