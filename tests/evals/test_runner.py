from __future__ import annotations

import json
import shutil

import pytest

from moss_agent.errors import UsageError
from moss_agent.evals.runner import EvalTarget, as_target, read_results, run_eval
from moss_agent.evals.suite import load_suite
from moss_agent.testing import ScriptedMossLLM


def test_smoke_run_scores_exactly_as_scripted(smoke_suite, smoke_llm, tmp_path, h):
    run = run_eval(smoke_suite, tmp_path / "run", target=smoke_llm, progress=False)
    assert {r.id: r.error_type for r in run.results} == h.errors
    s = run.summary
    assert s["n"] == 12 and run.executed == 12 and run.reused == 0
    assert s["trigger_accuracy"] == pytest.approx(9 / 12)
    assert s["argument_accuracy"] == pytest.approx(6 / 7)
    assert s["answer_accuracy"] == pytest.approx(6 / 8)
    assert s["end_to_end_accuracy"] == pytest.approx(6 / 12)
    assert s["format_error_rate"] == pytest.approx(1 / 12)
    assert s["per_tool"]["Calculate"] == {
        "precision": pytest.approx(4 / 6),
        "recall": 1.0,
        "f1": 0.8,
        "support": 4,
    }
    assert s["per_tool"]["None"]["support"] == 3
    assert s["by_language"]["zh"]["n"] == 4
    assert s["by_category"]["multi-turn"]["answer_accuracy"] == 0.0
    assert s["tokens_per_case"] > 0 and s["latency_s"]["p95"] >= s["latency_s"]["p50"]
    # Every case: two generations (commands, then reply); the reply sees the real tool output.
    assert len(smoke_llm.prompts) == 24
    by_id = {r.id: r for r in run.results}
    assert by_id["calc-en-01"].calls[0].output == "7006652"
    assert by_id["solve-en-01"].calls[0].output == "x = 23\ny = 12"
    assert "330 metres" in by_id["search-en-01"].calls[0].output
    assert by_id["image-en-01"].calls[0].output == "Image generated successfully."
    assert by_id["disabled-en-01"].calls[0].error == "tool 'Calculate' is disabled"
    assert by_id["calc-en-01"].case["category"] == "arithmetic"
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["suite"]["sha256"] == load_suite(smoke_suite).sha256 and config["target"] == "agent"


def test_history_turns_are_rendered_as_moss_no_call_turns(smoke_suite, smoke_llm, tmp_path, h):
    run_eval(smoke_suite, tmp_path / "run", target=smoke_llm, progress=False)
    prompt = next(p for p in smoke_llm.prompts if h.last_human(p).startswith("If I buy 7"))
    assert (
        "<|Human|>: I bought 3 notebooks at 4.5 dollars each.<eoh>\n<|Inner Thoughts|>: None<eot>\n"
        "<|Commands|>: None<eoc>\n<|Results|>:\nNone\n<eor>\n<|MOSS|>: Then you paid 13.5 dollars in total.<eom>\n"
    ) in prompt
    disabled = next(p for p in smoke_llm.prompts if h.last_human(p) == "What is 88 times 77?")
    assert "- Calculator: disabled.\n" in disabled and "- Web search: enabled." in disabled


def test_batches_share_generation_calls(smoke_suite, tmp_path, h):
    batches: list[int] = []

    class CountingLLM(ScriptedMossLLM):
        def _generate(self, prompts, stop=None, run_manager=None, **kwargs):
            batches.append(len(prompts))
            return super()._generate(prompts, stop, run_manager, **kwargs)

    llm = CountingLLM(respond=h.moss_responder(lambda q: h.script[q]))
    run_eval(smoke_suite, tmp_path / "run", target=llm, batch_size=5, progress=False)
    assert batches == [5, 5, 5, 5, 2, 2]


def test_resume_runs_only_the_rest(smoke_suite, tmp_path, h):
    out = tmp_path / "run"
    first = h.smoke_llm()
    run = run_eval(smoke_suite, out, target=first, limit=5, progress=False)
    assert run.executed == 5 and len(first.prompts) == 10 and run.summary["n"] == 5
    second = h.smoke_llm()
    run = run_eval(smoke_suite, out, target=second, progress=False)
    assert run.executed == 7 and run.reused == 5 and len(second.prompts) == 14
    asked = {h.last_human(p) for p in second.prompts}
    assert "What is 1234 multiplied by 5678?" not in asked
    assert run.summary["n"] == 12 and run.summary["end_to_end_accuracy"] == 0.5
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 12 and len({json.loads(line)["id"] for line in lines}) == 12
    third = h.smoke_llm()
    assert run_eval(smoke_suite, out, target=third, progress=False).executed == 0 and third.prompts == []


def test_partly_written_last_line_is_dropped_and_rerun(smoke_suite, smoke_llm, tmp_path, h):
    out = tmp_path / "run"
    run_eval(smoke_suite, out, target=smoke_llm, progress=False)
    path = out / "results.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # a crash in the middle of the last write
    again = h.smoke_llm()
    run = run_eval(smoke_suite, out, target=again, progress=False)
    assert run.executed == 1 and len(again.prompts) == 2
    assert any("partly written last line" in w for w in run.warnings)
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()][-1] == "multi-en-01"
    assert run.summary["n"] == 12 and run.summary["end_to_end_accuracy"] == 0.5


def test_config_change_is_refused_and_force_restarts(smoke_suite, smoke_llm, tmp_path):
    out = tmp_path / "run"
    run_eval(smoke_suite, out, target=as_target(smoke_llm, max_new_tokens=256), limit=2, progress=False)
    other = as_target(ScriptedMossLLM(respond=smoke_llm.respond), max_new_tokens=128)
    with pytest.raises(UsageError, match="max_new_tokens") as info:
        run_eval(smoke_suite, out, target=other, progress=False)
    assert "--force" in str(info.value)
    # a changed suite is a changed config too
    changed = tmp_path / "suite" / "smoke.jsonl"
    changed.parent.mkdir()
    changed.write_text(smoke_suite.read_text().replace("1234 multiplied", "1234 times"), encoding="utf-8")
    with pytest.raises(UsageError, match="suite.sha256"):
        run_eval(changed, out, target=as_target(smoke_llm, max_new_tokens=256), progress=False)
    run = run_eval(smoke_suite, out, target=other, limit=3, force=True, progress=False)
    assert run.executed == 3 and run.reused == 0
    assert json.loads((out / "config.json").read_text())["max_new_tokens"] == 128


def test_harness_errors_are_recorded_and_rerun(smoke_suite, tmp_path, h):
    def respond(prompt: str) -> str:
        if h.last_human(prompt) == "Hello! Who are you?":
            raise RuntimeError("model crashed")
        return h.moss_responder(lambda q: h.script[q])(prompt)

    out = tmp_path / "run"
    run = run_eval(smoke_suite, out, target=ScriptedMossLLM(respond=respond), batch_size=4, progress=False)
    errors = {r.id: r for r in run.results if r.error_type == "harness_error"}
    assert list(errors) == ["none-en-01"] and "model crashed" in errors["none-en-01"].error
    assert run.summary["harness_errors"] == 1 and run.summary["n_scored"] == 11
    assert run.summary["end_to_end_accuracy"] == pytest.approx(5 / 11)
    fixed = h.smoke_llm()
    run = run_eval(smoke_suite, out, target=fixed, progress=False)
    assert (
        run.executed == 1 and run.summary["harness_errors"] == 0 and run.summary["end_to_end_accuracy"] == 0.5
    )


def test_malformed_suite_lines_are_reported_with_line_numbers(tmp_path, smoke_llm, h):
    good = {
        "id": "a",
        "messages": [{"role": "user", "content": "Hello! Who are you?"}],
        "expect": {"tool": None},
    }
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"id": "b", "messages": [{"role": "user", "content": "x"}]}),
        json.dumps(good),
        "",
        json.dumps({**good, "id": "c", "plugins": ["Browse"]}),
        json.dumps({**good, "id": "d", "messages": [{"role": "assistant", "content": "x"}]}),
        json.dumps({**good, "id": "e", "expect": {"tool": None, "value": 3}}),
        json.dumps({**good, "id": "f", "note": "kept", "expect": {"tool": "Calculate", "value": 2}}),
    ]
    suite_file = tmp_path / "s.jsonl"
    suite_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    suite = load_suite(suite_file)
    assert [c.id for c in suite.cases] == ["a", "f"]
    joined = "\n".join(suite.warnings)
    for number in (2, 3, 4, 6, 7, 8):
        assert f"s.jsonl:{number}:" in joined
    assert "duplicate id 'a'" in joined and "expect" in joined and "Browse" in joined
    assert suite.cases[1].model_extra == {"note": "kept"}
    assert suite.cases[1].lang == "en"
    llm = ScriptedMossLLM(respond=h.moss_responder(lambda q: ("None", "I am MOSS.")))
    run = run_eval(suite_file, tmp_path / "run", target=llm, progress=False)
    assert len(run.warnings) == 6
    assert run.results[1].case["note"] == "kept"


def test_search_uses_recorded_results_without_a_corpus(tmp_path, h):
    case = {
        "id": "s1",
        "messages": [{"role": "user", "content": "Who wrote Python?"}],
        "expect": {"tool": "Search", "keywords": ["python"]},
        "answer": ["Guido"],
        "search_results": {"python author": ["Python was created by Guido van Rossum."]},
    }
    nothing = {**case, "id": "s2", "search_results": None}
    suite_file = tmp_path / "rec.jsonl"
    suite_file.write_text(json.dumps(case) + "\n" + json.dumps(nothing) + "\n", encoding="utf-8")
    llm = ScriptedMossLLM(
        respond=h.moss_responder(lambda q: ('Search("Python author")', "Guido van Rossum."))
    )
    run = run_eval(suite_file, tmp_path / "run", target=llm, progress=False)
    first, second = run.results
    assert first.calls[0].output == "Python was created by Guido van Rossum." and first.error_type == "ok"
    assert "unavailable" in second.calls[0].output
    reply_prompt = next(p for p in llm.prompts if "<|Results|>" in p.split("<|Human|>")[-1])
    assert "<|1|>: 'Python was created by Guido van Rossum.'" in reply_prompt


def test_custom_tool_stub_and_args(tmp_path, h):
    case = {
        "id": "w1",
        "messages": [{"role": "user", "content": "Weather in Paris for 3 days?"}],
        "plugins": ["Weather"],
        "tools": [
            {
                "name": "Weather",
                "description": "Weather forecast.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                },
                "result": "Sunny, 25 C",
            }
        ],
        "expect": {"tool": "Weather", "args": {"city": "Paris", "days": 3}},
        "answer": ["sunny"],
    }
    suite_file = tmp_path / "custom.jsonl"
    suite_file.write_text(json.dumps(case) + "\n", encoding="utf-8")
    llm = ScriptedMossLLM(
        respond=h.moss_responder(lambda q: ('Weather(city="Paris", days=3)', "Sunny all week."))
    )
    run = run_eval(suite_file, tmp_path / "run", target=llm, progress=False)
    (result,) = run.results
    assert result.error_type == "ok" and result.calls[0].output == "Sunny, 25 C"
    assert "- Weather: enabled. API: Weather(city, days)\n" in llm.prompts[0]


def test_extra_scorers(smoke_suite, smoke_llm, tmp_path):
    class ShortReply:
        name = "short_reply"

        def __call__(self, case, result):
            return len(result.reply) < 20

    run = run_eval(
        smoke_suite, tmp_path / "run", target=smoke_llm, scorers=[ShortReply()], limit=2, progress=False
    )
    assert [r.scores.extra for r in run.results] == [{"short_reply": False}, {"short_reply": True}]


def test_sft_conversations_replayed_score_full_trigger_accuracy(sample_dir, tmp_path, h):
    from moss_agent.conversations import iter_conversation_files, load_conversations, parse_conversation

    folder = sample_dir / "calculator"
    script: dict[tuple[str, int], tuple[str, str]] = {}
    for path in iter_conversation_files([folder]):
        for source, data in load_conversations(path):
            record = parse_conversation(data, source)
            for number, turn in enumerate(record.turns, 1):
                script[(turn.human, number)] = (turn.commands.render_text(), turn.reply)

    def respond(prompt: str) -> str:
        turn = prompt.count("<|Human|>: ")
        commands, reply = script[(h.last_human(prompt), turn)]
        if prompt.endswith("<eoh>\n"):
            return f"<|Inner Thoughts|>: replay<eot>\n<|Commands|>: {commands}<eoc>\n"
        return f"<|MOSS|>: {reply}<eom>\n"

    run = run_eval(
        folder, tmp_path / "run", target=ScriptedMossLLM(respond=respond), batch_size=64, progress=False
    )
    s = run.summary
    assert s["n"] == 200 and run.warnings == []
    assert s["trigger_accuracy"] == 1.0
    # The sample data's own messy calls: two unreadable Commands, some expressions our calculator refuses.
    assert s["format_error_rate"] == pytest.approx(2 / 200)
    assert set(s["errors"]) == {"ok", "format_error", "tool_error"}
    assert s["per_tool"]["Calculate"]["support"] == 166 and s["per_tool"]["None"]["support"] == 34
    assert s["argument_accuracy"] == 1.0
    multi = next(r for r in run.results if r.id == "calculator_plugin_conversation_1-t2")
    assert [m["role"] for m in multi.case["messages"]] == ["user", "assistant", "user"]
    assert multi.expected["tool"] == "Calculate" and multi.case["plugins"] == ["Calculate"]


def test_sft_solver_cases_get_solution_values(sample_dir, tmp_path):
    files = sorted((sample_dir / "equation_solver").glob("*.json"))[:3]
    folder = tmp_path / "eq"
    folder.mkdir()
    for file in files:
        shutil.copy(file, folder / file.name)
    suite = load_suite(folder)
    solve_cases = [c for c in suite.cases if c.expect.tool == "Solve"]
    assert solve_cases and any(c.expect.solution_values for c in solve_cases)


def test_chat_model_target(smoke_suite, tmp_path, h):
    from moss_agent.models.chat import ChatMoss

    llm = h.smoke_llm()
    chat = ChatMoss(llm=llm, do_sample=False)
    run = run_eval(smoke_suite, tmp_path / "run", target=chat, concurrency=2, progress=False)
    assert run.config["target"] == "chat"
    errors = {r.id: r.error_type for r in run.results}
    # ChatMoss reads an unreadable Commands as no call, so the format error case passes here.
    assert errors == {**h.errors, "none-zh-01": "ok"}
    by_id = {r.id: r for r in run.results}
    assert by_id["calc-en-01"].calls[0].kwargs == {"expression": "1234*5678"}
    assert by_id["calc-en-01"].reply == "1234 × 5678 = 7,006,652."
    assert "330 metres" in by_id["search-en-01"].calls[0].output
    assert by_id["disabled-en-01"].calls[0].name == "Calculate"
    assert run.summary["trigger_accuracy"] == pytest.approx(9 / 12)
    assert run.summary["end_to_end_accuracy"] == pytest.approx(7 / 12)


def test_bad_options(smoke_suite, smoke_llm, tmp_path):
    with pytest.raises(UsageError):
        run_eval(smoke_suite, tmp_path / "r", target=smoke_llm, batch_size=0, progress=False)
    with pytest.raises(UsageError, match="no such suite"):
        run_eval(tmp_path / "missing.jsonl", tmp_path / "r", target=smoke_llm, progress=False)
    with pytest.raises(UsageError, match="LangChain"):
        run_eval(smoke_suite, tmp_path / "r", target=object(), progress=False)


def test_as_target_identity(smoke_llm):
    target = as_target(smoke_llm)
    assert isinstance(target, EvalTarget) and target.kind == "agent"
    assert target.identity["class"] == "ScriptedMossLLM"
    assert as_target(target) is target


def test_read_results_keeps_last_record_per_id(smoke_suite, smoke_llm, tmp_path, h):
    out = tmp_path / "run"
    run_eval(smoke_suite, out, target=smoke_llm, limit=2, progress=False)
    path = out / "results.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[0], "garbage"]) + "\n")
    results, warnings = read_results(path)
    assert [r.id for r in results] == ["calc-zh-01", "calc-en-01"]
    assert any(":4: unreadable record" in w for w in warnings)


def test_real_engine_on_a_tiny_random_checkpoint(smoke_suite, tmp_path, monkeypatch):
    """build_target → MossLLM (batched engine) and ChatMoss, end to end; random weights write junk."""
    from moss_agent.evals import runner
    from moss_agent.models.tiny import build_tiny_moss_checkpoint, build_tiny_tokenizer

    lines = smoke_suite.read_text(encoding="utf-8").splitlines() * 2
    tokenizer = build_tiny_tokenizer(lines, vocab_size=300)
    checkpoint = build_tiny_moss_checkpoint(tmp_path / "ck", tokenizer=tokenizer, seed=1, n_positions=2048)
    monkeypatch.delenv("MOSS_AGENT_MODEL", raising=False)
    target = runner.build_target(str(checkpoint), max_new_tokens=8)
    assert target.kind == "agent" and target.sampling["do_sample"] is False
    assert target.identity["fingerprint"] and target.identity["name"] == "ck"
    assert "loading" not in target.identity  # defaults: earlier runs' configs still match
    assert target.identity["constrain_calls"] is True  # recorded: runs before it were unconstrained
    free = runner.build_target(str(checkpoint), max_new_tokens=8, loading={"constrain_calls": False})
    assert "constrain_calls" not in free.identity and free.model.constrain_calls is False
    run = run_eval(smoke_suite, tmp_path / "agent", target=target, limit=4, batch_size=4, progress=False)
    assert run.summary["harness_errors"] == 0 and run.summary["n"] == 4
    assert all(r.generations for r in run.results)
    assert "agent · greedy, constrained Commands ·" in (tmp_path / "agent" / "report.md").read_text()
    chat = runner.build_target(str(checkpoint), chat=True, max_new_tokens=8)
    assert chat.kind == "chat" and chat.identity["class"] == "ChatMoss"
    assert chat.identity["constrain_calls"] is True
    run = run_eval(smoke_suite, tmp_path / "chat", target=chat, limit=2, concurrency=2, progress=False)
    assert run.summary["harness_errors"] == 0 and run.summary["n"] == 2
    bf16 = runner.build_target(
        str(checkpoint), max_new_tokens=8, loading={"dtype": "bfloat16", "device": "cpu"}
    )
    assert bf16.identity["loading"] == {"dtype": "bfloat16", "device": "cpu"}
    run = run_eval(smoke_suite, tmp_path / "bf16", target=bf16, limit=2, progress=False)
    assert run.summary["harness_errors"] == 0
    assert str(bf16.model.engine.loaded.model.dtype) == "torch.bfloat16"
    config = json.loads((tmp_path / "bf16" / "config.json").read_text())
    assert config["model"]["loading"] == {"dtype": "bfloat16", "device": "cpu"}


def test_a_model_folder_with_a_generic_name_is_named_with_its_parents(tmp_path):
    from moss_agent.evals.targets import _display_name

    (tmp_path / "tiny" / "sft" / "final").mkdir(parents=True)
    (tmp_path / "tiny" / "sft" / "checkpoints" / "step-400").mkdir(parents=True)
    assert _display_name(str(tmp_path / "tiny" / "sft" / "final")) == "tiny/sft/final"
    assert (
        _display_name(str(tmp_path / "tiny" / "sft" / "checkpoints" / "step-400"))
        == "tiny/sft/checkpoints/step-400"
    )
    assert _display_name(str(tmp_path / "tiny")) == "tiny"
    assert _display_name("moss-tiny-plugin") == "moss-tiny-plugin"


AFTER_CALL_CASE = {
    "id": "after-solve",
    "messages": [
        {"role": "user", "content": "鸡兔同笼，共有35个头，94只脚，鸡和兔各有几只？"},
        {
            "role": "assistant",
            "content": "鸡有23只，兔有12只。",
            "thoughts": "这是鸡兔同笼问题，我需要解方程组。",
            "calls": ['Solve("x+y=35, 2*x+4*y=94")'],
        },
        {"role": "user", "content": "What is 1234 multiplied by 5678?"},
    ],
    "plugins": ["Calculate", "Solve"],
    "expect": {"tool": "Calculate", "value": 7006652},
    "answer": ["7006652"],
}


def _after_call_suite(tmp_path, *extra):
    suite = tmp_path / "after.jsonl"
    suite.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in (AFTER_CALL_CASE, *extra)) + "\n")
    return suite


def test_earlier_calls_are_rendered_with_their_commands_and_compressed_results(tmp_path, h):
    llm = ScriptedMossLLM(respond=h.moss_responder(lambda q: ('Calculate("1234*5678")', "7006652")))
    run = run_eval(_after_call_suite(tmp_path), tmp_path / "run", target=llm, progress=False)
    assert run.results[0].error_type == "ok"
    assert (
        "<|Human|>: 鸡兔同笼，共有35个头，94只脚，鸡和兔各有几只？<eoh>\n"
        "<|Inner Thoughts|>: 这是鸡兔同笼问题，我需要解方程组。<eot>\n"
        '<|Commands|>: Solve("x+y=35, 2*x+4*y=94")<eoc>\n<|Results|>:\nNone\n<eor>\n'
        "<|MOSS|>: 鸡有23只，兔有12只。<eom>\n<|Human|>: What is 1234 multiplied by 5678?<eoh>\n"
    ) in llm.prompts[0]


def test_calls_in_a_suite_must_be_one_readable_call_of_an_assistant_turn(tmp_path):
    user_calls = json.loads(json.dumps(AFTER_CALL_CASE))
    user_calls["id"], user_calls["messages"][0]["calls"] = "user-calls", ['Calculate("1+1")']
    unreadable = json.loads(json.dumps(AFTER_CALL_CASE))
    unreadable["id"], unreadable["messages"][1]["calls"] = "unreadable", ['Solve("x+y=35']
    two = json.loads(json.dumps(AFTER_CALL_CASE))
    two["id"], two["messages"][1]["calls"] = "two", ['Solve("x=1") Solve("y=2")']
    disabled = json.loads(json.dumps(AFTER_CALL_CASE))
    disabled["id"], disabled["plugins"] = "disabled", ["Calculate"]
    suite = load_suite(_after_call_suite(tmp_path, user_calls, unreadable, two, disabled))
    assert [c.id for c in suite.cases] == ["after-solve"]
    assert len(suite.warnings) == 4 and "only assistant messages" in suite.warnings[0]
    assert all("is not one call" in w for w in suite.warnings[1:3])
    assert "earlier calls name tools the case does not enable: ['Solve']" in suite.warnings[3]
    assert suite.cases[0].history[0][1].invocations[0].name == "Solve"


def test_chat_target_gets_earlier_calls_as_tool_calls(tmp_path, h):
    from moss_agent.models.chat import ChatMoss

    llm = ScriptedMossLLM(respond=h.moss_responder(lambda q: ('Calculate("1234*5678")', "7006652")))
    run = run_eval(_after_call_suite(tmp_path), tmp_path / "run", target=ChatMoss(llm=llm), progress=False)
    assert run.results[0].error_type == "ok"
    assert '<|Commands|>: Solve("x+y=35, 2*x+4*y=94")<eoc>\n' in llm.prompts[0]
    assert "<|MOSS|>: 鸡有23只，兔有12只。<eom>\n" in llm.prompts[0]


@pytest.mark.parametrize("thoughts", ["这是鸡兔同笼问题，我需要解方程组。", None])
def test_both_targets_write_an_earlier_call_turn_alike(tmp_path, h, thoughts):
    from moss_agent.models.chat import ChatMoss

    case = json.loads(json.dumps(AFTER_CALL_CASE))
    if thoughts is None:
        del case["messages"][1]["thoughts"]
    suite = tmp_path / "one.jsonl"
    suite.write_text(json.dumps(case, ensure_ascii=False) + "\n")
    histories = []
    for name, wrap in (("agent", lambda llm: llm), ("chat", lambda llm: ChatMoss(llm=llm))):
        llm = ScriptedMossLLM(respond=h.moss_responder(lambda q: ('Calculate("1234*5678")', "7006652")))
        run = run_eval(suite, tmp_path / name, target=wrap(llm), progress=False)
        assert run.results[0].error_type == "ok"
        prompt = llm.prompts[0]
        histories.append(prompt[prompt.index("<|Human|>") :])
    assert histories[0] == histories[1]
    expected = thoughts or "The user's request matches the Solve tool, so I should call it."
    assert f"<|Inner Thoughts|>: {expected}<eot>\n<|Commands|>: Solve(" in histories[0]
