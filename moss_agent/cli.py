"""The ``moss-agent`` command line: a thin shell over the library."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Annotated, Any

import typer

from moss_agent.errors import MossAgentError, UsageError
from moss_agent.train.options import DataOptions
from moss_agent.train.recipe import RecipeConfig

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
    from rich.markup import escape
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
        console.print(
            f"[red]FAIL[/red] {escape(where)}: {escape(str(failure['reason']))}", markup=True, highlight=False
        )
    if len(data["failures"]) > show:
        console.print(f"… and {len(data['failures']) - show} more (use --show or --json)")
    if data["conversations"] == 0:
        console.print("[red]no conversations found[/red]")


# --- ask / chat ------------------------------------------------------------------------

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Checkpoint folder or hub id; default: $MOSS_AGENT_MODEL, else the embedded model.",
    ),
]
DtypeOption = Annotated[str, typer.Option(help="auto, float16, bfloat16 or float32.")]
DeviceOption = Annotated[str, typer.Option(help="cpu, cuda or auto.")]
DeviceMapOption = Annotated[str | None, typer.Option(help="'auto' spreads the model over several GPUs.")]
ConstrainOption = Annotated[
    bool,
    typer.Option(
        "--constrain-calls/--free-calls",
        help="Let Commands name only enabled tools and declared parameters (constrained decoding).",
    ),
]
CopyBiasOption = Annotated[
    float | None,
    typer.Option(
        "--copy-bias",
        min=0.0,
        help="In Commands, favour the token that continues the span of the user's turns a call "
        "copies (log-score bonus; 0: off); default: the model's own (4 for the embedded model).",
    ),
]
#: The ``--plugins`` default of ask and chat: every built-in plugin.
_ALL_PLUGINS = "Search,Calculate,Solve,Text2Image"
PluginsOption = Annotated[
    str,
    typer.Option(help="Comma-separated enabled plugins (Search, Calculate, Solve, Text2Image) or 'none'."),
]


def _build_agent(
    model: str | None,
    *,
    dtype: str = "auto",
    device: str = "auto",
    device_map: str | None = None,
    load_in_8bit: bool = False,
    load_in_4bit: bool = False,
    trust_remote_code: bool = False,
    max_new_tokens: int = 512,
    temperature: float = 0.7,
    top_p: float = 0.8,
    repetition_penalty: float = 1.02,
    greedy: bool | None = None,
    seed: int | None = None,
    plugins: str = _ALL_PLUGINS,
    corpus: Path | None = None,
    keep_results: bool = False,
    constrain_calls: bool = True,
    copy_bias: float | None = None,
) -> object:
    """The agent `ask` and `chat` run (the defaults are theirs)."""
    from moss_agent.agent import MossAgent
    from moss_agent.models.embedded import resolve_model
    from moss_agent.models.llm import MossLLM
    from moss_agent.protocol import DEFAULT_PLUGINS
    from moss_agent.tools.registry import default_registry

    enabled = (
        [] if plugins.strip().lower() == "none" else [p.strip() for p in plugins.split(",") if p.strip()]
    )
    canonical = {p.lower(): p for p in DEFAULT_PLUGINS}
    unknown = [p for p in enabled if p.lower() not in canonical]
    if unknown:
        raise _fail(f"unknown plugin(s) {unknown}; choose from {', '.join(DEFAULT_PLUGINS)}")
    from moss_agent.models.embedded import embedded_model_path

    path = resolve_model(model)
    is_embedded = path == str(embedded_model_path())
    if greedy is None:  # the embedded model is a protocol demo: deterministic by default
        greedy = is_embedded
    llm = MossLLM(
        model=path,
        dtype=dtype,
        device=device,
        device_map=device_map,
        load_in_8bit=load_in_8bit,
        load_in_4bit=load_in_4bit,
        trust_remote_code=trust_remote_code,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        do_sample=not greedy,
        seed=seed,
        constrain_calls=constrain_calls,
        copy_bias=copy_bias,
    )
    backend: object | None = None
    if corpus is not None:
        from moss_agent.tools.search_backends import LocalCorpusBackend

        backend = LocalCorpusBackend(corpus)
    elif (embedded := _embedded_corpus()) is not None:
        backend = embedded
    registry = default_registry(search_backend=backend)
    return MossAgent(
        llm,
        tools=registry,
        plugins=[canonical[p.lower()] for p in enabled],
        max_context_tokens=llm.context_length(),
        # Earlier turns' Results go back as None, as MOSS's own backend sent them. The embedded model
        # was trained on both kinds of history, and with the full Results it answered the README's
        # second question right in 2 of 40 number sets, against 38 with them compressed.
        compress_history=not keep_results,
    )


def _embedded_corpus() -> object | None:
    """The embedded model's search corpus, when no web search is configured."""
    import os

    from moss_agent.models.embedded import embedded_corpus_path

    path = embedded_corpus_path()
    if path is None or os.environ.get("MOSS_AGENT_SEARCH_CORPUS"):
        return None
    from moss_agent.tools.search_backends import LocalCorpusBackend

    return LocalCorpusBackend(path)


def _run_turn(agent: object, query: str, show_thoughts: bool) -> None:
    from rich.console import Console

    from moss_agent.agent import (
        CommandEvent,
        MossAgent,
        ReplyTokenEvent,
        ResultEvent,
        ThoughtsEvent,
        TurnEndEvent,
    )
    from moss_agent.protocol import render_results, results_for

    assert isinstance(agent, MossAgent)
    err = Console(stderr=True, highlight=False)
    for event in agent.stream(query):
        if isinstance(event, ThoughtsEvent) and show_thoughts:
            err.print(f"💭 {event.text}", style="dim", markup=False)
        elif isinstance(event, CommandEvent):
            err.print(f"⚙ {event.invocation.text}", style="cyan", markup=False)
        elif isinstance(event, ResultEvent) and show_thoughts:
            err.print(render_results(results_for([event.record.result])).rstrip(), style="dim", markup=False)
        elif isinstance(event, ReplyTokenEvent):
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, TurnEndEvent):
            sys.stdout.write("\n")
            if event.record.parse_errors and show_thoughts:
                err.print(f"({'; '.join(event.record.parse_errors)})", style="yellow", markup=False)


def converse_command(
    questions: Annotated[
        list[str] | None,
        typer.Argument(help="Questions, asked in turn in one conversation; none: chat interactively."),
    ] = None,
    model: ModelOption = None,
    dtype: DtypeOption = "auto",
    device: DeviceOption = "auto",
    device_map: DeviceMapOption = None,
    load_in_8bit: Annotated[bool, typer.Option(help="8-bit weights (CUDA, bitsandbytes).")] = False,
    load_in_4bit: Annotated[bool, typer.Option(help="4-bit weights (CUDA, bitsandbytes).")] = False,
    trust_remote_code: Annotated[bool, typer.Option(help="Run code shipped in the checkpoint.")] = False,
    max_new_tokens: Annotated[int, typer.Option(help="Most tokens per generation.")] = 512,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling.")] = 0.8,
    repetition_penalty: Annotated[float, typer.Option(help="Repetition penalty.")] = 1.02,
    greedy: Annotated[
        bool | None,
        typer.Option(
            "--greedy/--sample", help="Greedy or sampled decoding; default: greedy for the embedded model."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    plugins: PluginsOption = _ALL_PLUGINS,
    corpus: Annotated[Path | None, typer.Option(help="Search this local JSONL corpus.", exists=True)] = None,
    keep_results: Annotated[
        bool,
        typer.Option(help="Keep earlier turns' Results in the prompt (default: None, as MOSS sent them)."),
    ] = False,
    show_thoughts: Annotated[bool, typer.Option(help="Show inner thoughts and Results.")] = False,
    constrain_calls: ConstrainOption = True,
    copy_bias: CopyBiasOption = None,
) -> None:
    """Ask questions (replies stream as generated); with none, chat: 'clear' starts over, 'stop' leaves."""
    from moss_agent.agent import MossAgent

    agent = _build_agent(
        model,
        dtype=dtype,
        device=device,
        device_map=device_map,
        load_in_8bit=load_in_8bit,
        load_in_4bit=load_in_4bit,
        trust_remote_code=trust_remote_code,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        greedy=greedy,
        seed=seed,
        plugins=plugins,
        corpus=corpus,
        keep_results=keep_results,
        constrain_calls=constrain_calls,
        copy_bias=copy_bias,
    )
    assert isinstance(agent, MossAgent)
    if questions:
        for index, question in enumerate(questions):
            if len(questions) > 1:
                typer.secho(f"{'' if index == 0 else chr(10)}> {question}", err=True, bold=True)
            _run_turn(agent, question, show_thoughts)
        return
    _chat_loop(agent, show_thoughts)


def _chat_loop(agent: object, show_thoughts: bool) -> None:
    from moss_agent.agent import MossAgent

    assert isinstance(agent, MossAgent)
    typer.secho("moss-agent chat — 'clear' starts over, 'stop' leaves.", err=True, dim=True)
    while True:
        try:
            query = input("<|Human|>: ")
        except (EOFError, KeyboardInterrupt):
            typer.echo("", err=True)
            break
        command = query.strip().lower()
        if command == "stop":
            break
        if command == "clear":
            agent.reset()
            typer.secho("(conversation cleared)", err=True, dim=True)
            continue
        if not command:
            continue
        sys.stdout.write("<|MOSS|>: ")
        _run_turn(agent, query, show_thoughts)


app.command("ask")(converse_command)
app.command(
    "chat",
    help="Multi-turn chat: 'clear' starts over, 'stop' or Ctrl-D leaves (given questions, it asks them).",
)(converse_command)


# --- training --------------------------------------------------------------------------

train_app = typer.Typer(
    help="Build training data and train models that speak the MOSS protocol.", no_args_is_help=True
)
app.add_typer(train_app, name="train")


# SFT option that `finetune` and `train recipe` both take.
_LossWeight = Annotated[
    list[str] | None,
    typer.Option(
        help="SECTION=WEIGHT: loss weight of a turn section (human, thoughts, commands, results, reply; "
        "1 where not named; repeatable), e.g. --loss-weight commands=4.",
    ),
]


@app.command("finetune")
def finetune_command(
    model: Annotated[str, typer.Option(help="Checkpoint folder or hub id to start from.")],
    data: Annotated[
        list[Path], typer.Option(help="MOSS SFT conversation files/folders (repeatable).", exists=True)
    ],
    out: Annotated[Path, typer.Option(help="Output folder (checkpoints, log, final model).")],
    eval_data: Annotated[
        list[Path] | None, typer.Option(help="Held-out conversations for the eval loss.", exists=True)
    ] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the data.")] = 1.0,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    max_minutes: Annotated[float | None, typer.Option(help="Stop (and save) after this much time.")] = None,
    learning_rate: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 2e-5,
    batch_size: Annotated[int, typer.Option(help="Examples per step and device.")] = 8,
    grad_accum: Annotated[int, typer.Option(help="Gradient accumulation steps.")] = 1,
    max_length: Annotated[int, typer.Option(help="Most tokens per example.")] = 1024,
    save_steps: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 200,
    eval_steps: Annotated[
        int | None,
        typer.Option(
            help="Eval loss at the checkpoints of every N steps and the last one; default: every checkpoint.",
            min=1,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    mask_human: Annotated[bool, typer.Option(help="Also mask the user's messages.")] = False,
    loss_weight: _LossWeight = None,
    protect_circuit: Annotated[
        bool, typer.Option(help="Keep a hand-written induction circuit (named in config.json) fixed.")
    ] = True,
    mixed_precision: Annotated[
        str, typer.Option(help="no, fp16, bf16, or auto (bf16 where the CPU or GPU computes it natively).")
    ] = "no",
    resume: Annotated[bool, typer.Option(help="Resume from the latest checkpoint in --out.")] = True,
    trust_remote_code: Annotated[bool, typer.Option(help="Run code shipped in the checkpoint.")] = False,
) -> None:
    """Fine-tune a causal LM on MOSS conversations (loss masked as MOSS's own script).

    Several GPUs: ``accelerate launch -m moss_agent.cli finetune …``.
    """
    from moss_agent.train.sft import SFTConfig, finetune, parse_loss_weights

    config = SFTConfig(
        model=model,
        data=[str(p) for p in data],
        output_dir=str(out),
        eval_data=[str(p) for p in eval_data or []],
        max_length=max_length,
        batch_size=batch_size,
        grad_accum=grad_accum,
        learning_rate=learning_rate,
        epochs=epochs,
        max_steps=max_steps,
        max_minutes=max_minutes,
        save_steps=save_steps,
        eval_steps=eval_steps,
        seed=seed,
        mask_human=mask_human,
        loss_weights=parse_loss_weights(loss_weight or []),
        protect_circuit=protect_circuit,
        mixed_precision=mixed_precision,
        resume=resume,
        trust_remote_code=trust_remote_code,
    )
    final = finetune(config)
    typer.echo(f"model saved to {final}")


_RECIPE = RecipeConfig(out="")  # the recipe's defaults, shown by --help
# Data options that `train data` and `train recipe` both take.
_SwitchThoughts = Annotated[
    bool,
    typer.Option(help="Inner Thoughts quote the needed tool's switch line ('Calculator: enabled; …')."),
]
_RestateSolutions = Annotated[
    bool, typer.Option(help="Cage-problem replies restate the solver's 'x = …，y = …' before the names.")
]
_MorePhrasings = Annotated[
    bool, typer.Option(help="Add the extra phrasing families (about 8 more per request kind).")
]
_WidePhrasings = Annotated[
    bool,
    typer.Option(help="Add the wide phrasing families (12 more per tool request kind, 6 per chat kind)."),
]
_WrapRequests = Annotated[
    bool, typer.Option(help="Wrap half of the training requests in greetings, fillers or thanks.")
]
_QuoteCounts = Annotated[
    bool, typer.Option(help="Cage-problem Inner Thoughts first quote the two counts ('已知35个头，94只脚').")
]
_PairSolutions = Annotated[
    bool,
    typer.Option(
        help="Cage-problem replies name each animal right after its solver line ('x = 23，即鸡有23只')."
    ),
]
_SharedPhrasings = Annotated[
    bool,
    typer.Option(
        help="Phrase some training additions/multiplications as requests for the custom sum/product tools."
    ),
]
_QuoteApi = Annotated[
    bool,
    typer.Option(
        help="Custom-tool Inner Thoughts first quote the tool's switch line ('…: enabled. API: f(x)')."
    ),
]
_NovelNames = Annotated[
    bool,
    typer.Option(help="Rename half of the training custom tools to made-up words, so names are copied."),
]
_ApiThoughts = Annotated[
    bool,
    typer.Option(
        help="Custom-call Inner Thoughts name the tool by its API text ('…matches API: f(x), so…')."
    ),
]
_SwitchLanguages = Annotated[
    bool,
    typer.Option(help="Ask about a third of later multi-turn training turns in the other language."),
]
_ContextTurns = Annotated[
    bool,
    typer.Option(
        help="Put an earlier turn (any tool, often the other language) before 30 % of training turns."
    ),
]
_PhraseQueries = Annotated[
    bool,
    typer.Option(help="English Search queries follow the thoughts' words ('population of Cormouth')."),
]
_CustomDecoys = Annotated[
    bool,
    typer.Option(
        help="Some training built-in conversations also declare custom tools that they do not call."
    ),
]
_WideValues = Annotated[
    bool,
    typer.Option(
        help="Half of the training custom-tool cities, and words whose letters a tool counts, are made up."
    ),
]
_MixClauses = Annotated[
    bool,
    typer.Option(help="Phrase most training requests by splicing the clauses of two families of a kind."),
]


def _data_options(flags: dict[str, Any]) -> DataOptions:
    """The generator's options from a command's parameters, which hold one flag per DataOptions field."""
    return DataOptions(**{f.name: flags[f.name] for f in fields(DataOptions)})


@train_app.command("data")
def train_data_command(
    out: Annotated[Path, typer.Option(help="Output folder for train/valid/test JSONL and the corpus.")],
    n_train: Annotated[int, typer.Option(help="Training conversations.")] = _RECIPE.n_train,
    n_valid: Annotated[int, typer.Option(help="Validation conversations.")] = _RECIPE.n_valid,
    n_test: Annotated[int, typer.Option(help="Held-out test conversations.")] = _RECIPE.n_test,
    seed: Annotated[int, typer.Option(help="Seed (same seed, same bytes).")] = _RECIPE.seed,
    switch_thoughts: _SwitchThoughts = _RECIPE.switch_thoughts,
    restate_solutions: _RestateSolutions = _RECIPE.restate_solutions,
    more_phrasings: _MorePhrasings = _RECIPE.more_phrasings,
    wide_phrasings: _WidePhrasings = _RECIPE.wide_phrasings,
    wrap_requests: _WrapRequests = _RECIPE.wrap_requests,
    mix_clauses: _MixClauses = _RECIPE.mix_clauses,
    quote_counts: _QuoteCounts = _RECIPE.quote_counts,
    pair_solutions: _PairSolutions = _RECIPE.pair_solutions,
    shared_phrasings: _SharedPhrasings = _RECIPE.shared_phrasings,
    quote_api: _QuoteApi = _RECIPE.quote_api,
    novel_names: _NovelNames = _RECIPE.novel_names,
    api_thoughts: _ApiThoughts = _RECIPE.api_thoughts,
    switch_languages: _SwitchLanguages = _RECIPE.switch_languages,
    context_turns: _ContextTurns = _RECIPE.context_turns,
    phrase_queries: _PhraseQueries = _RECIPE.phrase_queries,
    custom_decoys: _CustomDecoys = _RECIPE.custom_decoys,
    wide_values: _WideValues = _RECIPE.wide_values,
) -> None:
    """Generate synthetic MOSS plugin dialogues (Chinese and English) with real tool results."""
    from moss_agent.train.data import generate_dataset

    options = _data_options(locals())
    info = generate_dataset(out, n_train=n_train, n_test=n_test, n_valid=n_valid, seed=seed, options=options)
    typer.echo(
        json.dumps(
            info if isinstance(info, dict) else getattr(info, "__dict__", str(info)),
            ensure_ascii=False,
            default=str,
        )[:2000]
    )


@train_app.command("recipe")
def train_recipe_command(
    out: Annotated[Path, typer.Option(help="Working folder; a re-run resumes where it stopped.")],
    seed: Annotated[int, typer.Option(help="Seed of everything.")] = 0,
    steps: Annotated[int, typer.Option(help="SFT optimizer steps.")] = _RECIPE.max_steps,
    batch_size: Annotated[int, typer.Option(help="SFT examples per step.", min=1)] = _RECIPE.batch_size,
    minutes: Annotated[float, typer.Option(help="Safety limit on SFT wall time.")] = _RECIPE.max_minutes,
    mixed_precision: Annotated[
        str,
        typer.Option(
            help="SFT precision: auto (bf16 with float32 attention where the CPU or GPU computes bf16 "
            "natively, else no), no, bf16 or fp16.",
        ),
    ] = _RECIPE.mixed_precision,
    n_train: Annotated[int, typer.Option(help="Training conversations.")] = _RECIPE.n_train,
    learning_rate: Annotated[
        float, typer.Option(help="Peak learning rate of SFT (cosine decay).", min=0.0)
    ] = _RECIPE.learning_rate,
    induction_circuit: Annotated[
        bool, typer.Option(help="Start from the hand-written copy circuit (moss_agent.train.induction).")
    ] = _RECIPE.induction_circuit,
    bigram_heads: Annotated[
        int, typer.Option(help="Two-token induction heads in that circuit.", min=0)
    ] = _RECIPE.bigram_heads,
    layers: Annotated[int, typer.Option(help="Transformer layers of the model.", min=2)] = _RECIPE.n_layer,
    width: Annotated[
        int,
        typer.Option(
            help="Hidden size of the model (a multiple of its 8 heads; 160 to 256 with the circuit).",
            min=32,
        ),
    ] = _RECIPE.n_embd,
    mask_human: Annotated[
        bool, typer.Option(help="No loss on the user's turns (learn only MOSS's own text).")
    ] = _RECIPE.mask_human,
    loss_weight: _LossWeight = None,
    switch_thoughts: _SwitchThoughts = _RECIPE.switch_thoughts,
    restate_solutions: _RestateSolutions = _RECIPE.restate_solutions,
    more_phrasings: _MorePhrasings = _RECIPE.more_phrasings,
    wide_phrasings: _WidePhrasings = _RECIPE.wide_phrasings,
    wrap_requests: _WrapRequests = _RECIPE.wrap_requests,
    mix_clauses: _MixClauses = _RECIPE.mix_clauses,
    quote_counts: _QuoteCounts = _RECIPE.quote_counts,
    pair_solutions: _PairSolutions = _RECIPE.pair_solutions,
    shared_phrasings: _SharedPhrasings = _RECIPE.shared_phrasings,
    quote_api: _QuoteApi = _RECIPE.quote_api,
    novel_names: _NovelNames = _RECIPE.novel_names,
    api_thoughts: _ApiThoughts = _RECIPE.api_thoughts,
    switch_languages: _SwitchLanguages = _RECIPE.switch_languages,
    context_turns: _ContextTurns = _RECIPE.context_turns,
    phrase_queries: _PhraseQueries = _RECIPE.phrase_queries,
    custom_decoys: _CustomDecoys = _RECIPE.custom_decoys,
    wide_values: _WideValues = _RECIPE.wide_values,
    cjk_chars: Annotated[
        bool, typer.Option(help="Tokenizer: every Chinese character its own token (no merges across them).")
    ] = _RECIPE.cjk_chars,
    name_spaces: Annotated[
        bool,
        typer.Option(
            help="Tokenizer: a space before a capital letter is its own token, so a name has the "
            'same tokens after a space as after (" in a call.'
        ),
    ] = _RECIPE.name_spaces,
    name_min_count: Annotated[
        int,
        typer.Option(
            help="Tokenizer: a capitalized word (a name) is one token only if seen this often; rarer names "
            "are spelt with syllable tokens shared by many names (0: names merge like other words).",
            min=0,
        ),
    ] = _RECIPE.name_min_count,
    number_slots: Annotated[
        int,
        typer.Option(
            help="Number slots: the model reads and writes each multi-digit number of the user and the "
            "tools as one token (<num1>…); 0: digit by digit.",
            min=0,
        ),
    ] = _RECIPE.number_slots,
    number_rounding: Annotated[
        bool,
        typer.Option(
            help="With number slots: the model writes a reply's rounded copy of a tool's number "
            "(12.57 for 12.566370614359172) as <round> and the slot.",
        ),
    ] = _RECIPE.number_rounding,
    digit_slots: Annotated[
        bool,
        typer.Option(
            help="With number slots: single digits of the user and the tools get slots too "
            "(written <numk> and the digit in their text).",
        ),
    ] = _RECIPE.digit_slots,
    members: Annotated[
        int,
        typer.Option(
            help="Train this many models on the same data and tokenizer (member k from seed SEED+k) and "
            "run them as one ensemble that averages their next-token distributions.",
            min=1,
        ),
    ] = _RECIPE.members,
    ensemble_dtype: Annotated[
        str | None,
        typer.Option(help="With --members > 1: store the members' weights as float16, bfloat16 or float32."),
    ] = _RECIPE.ensemble_dtype,
    copy_bias: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="The model's default copy bias (written to its generation_config.json): in Commands, "
            "favour the token that continues the span of the user's turns a call copies; 0: off.",
        ),
    ] = _RECIPE.copy_bias,
) -> None:
    """Train moss-tiny-plugin from scratch: data, tokenizer, model, SFT (one command, fixed seed)."""
    from moss_agent.train.recipe import run_recipe
    from moss_agent.train.sft import parse_loss_weights

    options = _data_options(locals())
    final = run_recipe(
        RecipeConfig(
            out=str(out),
            seed=seed,
            max_steps=steps,
            batch_size=batch_size,
            max_minutes=minutes,
            mixed_precision=mixed_precision,
            n_train=n_train,
            learning_rate=learning_rate,
            induction_circuit=induction_circuit,
            bigram_heads=bigram_heads,
            n_layer=layers,
            n_embd=width,
            mask_human=mask_human,
            loss_weights=parse_loss_weights(loss_weight or []),
            **asdict(options),
            cjk_chars=cjk_chars,
            name_spaces=name_spaces,
            name_min_count=name_min_count,
            number_slots=number_slots,
            number_rounding=number_rounding,
            digit_slots=digit_slots,
            members=members,
            ensemble_dtype=ensemble_dtype,
            copy_bias=copy_bias,
        )
    )
    typer.echo(f"model saved to {final}")


# --- eval --------------------------------------------------------------------------------

eval_app = typer.Typer(
    help="Plugin-accuracy evals: `eval --suite FILE --out DIR` runs (or resumes) a suite.",
    invoke_without_command=True,
)
app.add_typer(eval_app, name="eval")


@eval_app.callback()
def eval_command(
    ctx: typer.Context,
    suite: Annotated[Path | None, typer.Option(help="JSONL suite, MOSS conversations, or a folder.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder; re-running resumes it.")] = None,
    model: ModelOption = None,
    chat: Annotated[bool, typer.Option(help="Evaluate through ChatMoss (tool calling) instead.")] = False,
    limit: Annotated[int | None, typer.Option(help="Only the suite's first N cases.")] = None,
    concurrency: Annotated[int, typer.Option(help="Chat-model cases run at once.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Agent cases generated as one batch.")] = 8,
    force: Annotated[bool, typer.Option(help="Delete the folder's earlier run and start over.")] = False,
    execute_images: Annotated[bool, typer.Option(help="Really run Text2Image.")] = False,
    sample: Annotated[bool, typer.Option(help="Sample with MOSS's defaults (default: greedy).")] = False,
    max_new_tokens: Annotated[int, typer.Option(help="Most tokens per generation.")] = 256,
    dtype: DtypeOption = "auto",
    device: DeviceOption = "auto",
    device_map: DeviceMapOption = None,
    load_in_8bit: Annotated[bool, typer.Option(help="8-bit weights (CUDA, bitsandbytes).")] = False,
    load_in_4bit: Annotated[bool, typer.Option(help="4-bit weights (CUDA, bitsandbytes).")] = False,
    constrain_calls: ConstrainOption = True,
    copy_bias: CopyBiasOption = None,
) -> None:
    """Run (or resume) an eval suite; subcommands compare runs and rebuild reports."""
    if ctx.invoked_subcommand is not None:
        return
    if suite is None or out is None:
        raise _fail("give --suite and --out (or a subcommand: compare, report)")
    from moss_agent.evals.runner import run_eval_cli

    try:
        run_eval_cli(
            suite,
            out,
            model=model,
            chat=chat,
            limit=limit,
            concurrency=concurrency,
            batch_size=batch_size,
            force=force,
            execute_images=execute_images,
            sample=sample,
            max_new_tokens=max_new_tokens,
            loading={
                **_changed_loading(dtype, device, device_map, load_in_8bit, load_in_4bit),
                **({} if constrain_calls else {"constrain_calls": False}),
                **({} if copy_bias is None else {"copy_bias": copy_bias}),
            },
        )
    except MossAgentError as exc:
        raise _fail(str(exc)) from exc


def _changed_loading(
    dtype: str, device: str, device_map: str | None, load_in_8bit: bool, load_in_4bit: bool
) -> dict[str, Any]:
    """The loading options given on the command line (the defaults left out)."""
    given = {
        "dtype": dtype if dtype != "auto" else None,
        "device": device if device != "auto" else None,
        "device_map": device_map,
        "load_in_8bit": load_in_8bit or None,
        "load_in_4bit": load_in_4bit or None,
    }
    return {key: value for key, value in given.items() if value is not None}


@eval_app.command("compare")
def eval_compare_command(
    run_a: Annotated[Path, typer.Argument(help="Run folder A (the baseline).")],
    run_b: Annotated[Path, typer.Argument(help="Run folder B.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Compare two runs case by case: metric deltas, McNemar p-values, flipped cases."""
    from moss_agent.evals.compare import compare_cli

    try:
        compare_cli(run_a, run_b, as_json=as_json)
    except MossAgentError as exc:
        raise _fail(str(exc)) from exc


@eval_app.command("report")
def eval_report_command(run: Annotated[Path, typer.Argument(help="Run folder.")]) -> None:
    """Rebuild summary.json, report.md and confusion.png from a run's results.jsonl."""
    from moss_agent.evals.report import report_cli

    try:
        report_cli(run)
    except MossAgentError as exc:
        raise _fail(str(exc)) from exc


@train_app.command("suite")
def train_suite_command(
    data: Annotated[
        Path, typer.Option(help="A generated dataset folder (test.jsonl, corpus.jsonl).", exists=True)
    ],
    out: Annotated[Path, typer.Option(help="The eval suite to write (JSONL; its corpus goes beside it).")],
    made_up_names: Annotated[
        bool,
        typer.Option(help="Also write OUT's custom-tool cases with every tool renamed to made-up words."),
    ] = False,
    after_call: Annotated[
        bool,
        typer.Option(
            help="Also write OUT's one-turn cases, each after an earlier turn that called a built-in tool."
        ),
    ] = False,
) -> None:
    """Turn a dataset's held-out test split into an eval suite for `moss-agent eval`."""
    from moss_agent.train.heldout import after_call_suite, heldout_suite, novel_name_suite

    for name in ("test.jsonl", "corpus.jsonl"):
        if not (data / name).is_file():
            raise UsageError(f"{data} has no {name}: pass the folder `moss-agent train data` wrote")
    suite = heldout_suite(data / "test.jsonl", data / "corpus.jsonl", out)
    typer.echo(f"wrote {suite}")
    if made_up_names:
        novel = novel_name_suite(suite, out.with_name(out.stem + ".made-up-names.jsonl"))
        typer.echo(f"wrote {novel}")
    if after_call:
        after = after_call_suite(suite, data / "test.jsonl", out.with_name(out.stem + ".after-call.jsonl"))
        typer.echo(f"wrote {after}")


@train_app.command("install")
def train_install_command(
    run: Annotated[Path, typer.Option(help="The recipe's working folder.", exists=True)],
    suite: Annotated[
        Path | None, typer.Option(help="Also score this eval suite for the card.", exists=True)
    ] = None,
    destination: Annotated[
        Path | None, typer.Option(help="Install folder; default: inside the package.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Score from scratch: drop the run's earlier eval results (needed when they were made "
            "under other eval settings).",
        ),
    ] = False,
) -> None:
    """Score a recipe's model on its held-out split, write its card, install it as the embedded model.

    Scoring resumes the run's earlier eval folders (``eval-heldout``, ...) where their settings match.
    """
    from moss_agent.models.embedded import EMBEDDED_MODEL_NAME
    from moss_agent.train.recipe import evaluate_and_install

    target = destination or Path(__file__).parent / "assets" / EMBEDDED_MODEL_NAME
    installed = evaluate_and_install(run, target, suite=suite, force=force)
    typer.echo(f"installed {installed}")


@train_app.command("rescore")
def train_rescore_command(
    data: Annotated[
        Path,
        typer.Option(help="The dataset the model was trained on (its recipe's data folder).", exists=True),
    ],
    work: Annotated[Path, typer.Option(help="Folder for the suites and eval runs (resumed).")],
    suite: Annotated[
        Path | None, typer.Option(help="Also score this eval suite for the card.", exists=True)
    ] = None,
    destination: Annotated[
        Path | None, typer.Option(help="The installed model; default: the embedded one.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Drop earlier eval results in WORK.")] = False,
) -> None:
    """Score an installed model again and rewrite its card's scores and scores.json (no retraining).

    For a change of its decoding defaults, e.g. its copy bias. The data folder must be the one it was
    trained on (regenerate it with `moss-agent train data` and the recipe's seed and options).
    """
    from moss_agent.models.embedded import EMBEDDED_MODEL_NAME
    from moss_agent.train.recipe import rescore_installed

    target = destination or Path(__file__).parent / "assets" / EMBEDDED_MODEL_NAME
    try:
        scores = rescore_installed(target, data, work, suite=suite, force=force)
    except MossAgentError as exc:
        raise _fail(str(exc)) from exc
    heldout = scores.heldout or {}
    rates = ", ".join(
        f"{label} {heldout.get(key) or 0:.1%}"
        for label, key in (
            ("tool choice", "trigger_accuracy"),
            ("arguments", "argument_accuracy"),
            ("end to end", "end_to_end_accuracy"),
        )
    )
    typer.echo(f"rescored {target}: held-out {rates}")


def main() -> None:
    """Entry point of the ``moss-agent`` script."""
    try:
        app()
    except MossAgentError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2)


if __name__ == "__main__":
    main()
