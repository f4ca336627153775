from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from moss_agent.errors import UsageError
from moss_agent.protocol import (
    ResultLayout,
    ToolInvocation,
    render_meta_instruction,
    render_results,
    render_section,
    result_for,
    results_for,
)
from moss_agent.train.sft import (
    IGNORE_INDEX,
    SFTConfig,
    common_prefix_length,
    encode_conversation,
    finetune,
    load_examples,
    parse_loss_weights,
)


def conversation(a: int, b: int) -> dict:
    call = ToolInvocation.call("Calculate", f"{a}*{b}")
    results = render_results(results_for([result_for(call, str(a * b), ResultLayout.INLINE)]))
    return {
        "conversation_id": a,
        "meta_instruction": render_meta_instruction(["Calculate"]),
        "num_turns": 1,
        "chat": {
            "turn_1": {
                "Human": render_section("Human", f"What is {a} times {b}?"),
                "Inner Thoughts": render_section("Inner Thoughts", "I should use the calculator."),
                "Commands": render_section("Commands", call.text),
                "Tool Responses": results,
                "MOSS": render_section("MOSS", f"{a} times {b} is {a * b}."),
            }
        },
    }


@pytest.fixture(scope="module")
def tokenizer():
    from moss_agent.models.tiny import build_tiny_tokenizer

    texts = [json.dumps(conversation(a, a + 3)) for a in range(40)]
    return build_tiny_tokenizer(texts, vocab_size=700)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sft") / "train.jsonl"
    path.write_text("\n".join(json.dumps(conversation(a, 7 + a % 5)) for a in range(2, 26)), encoding="utf-8")
    return path


def test_numbers_are_learnt_as_slots_for_a_model_with_number_slots():
    from moss_agent.models.number_slots import NumberSlots, SlotScheme
    from moss_agent.models.tiny import build_tiny_tokenizer

    texts = [NumberSlots(8).encode(json.dumps(conversation(a, a + 3))) for a in range(40)]
    slot_tokenizer = build_tiny_tokenizer(texts, vocab_size=700, number_slots=8)
    example = encode_conversation(conversation(1234, 5678), slot_tokenizer, max_length=4096, number_slots=8)
    assert example is not None
    learnt = slot_tokenizer.decode(
        [t for t, label in zip(example.input_ids, example.labels) if label != -100]
    )
    # the call and the reply copy slots, not digits; the product comes from the (masked) Results
    assert 'Calculate("<num1>*<num2>")' in learnt and "<num1> times <num2> is <num3>." in learnt
    assert "1234" not in slot_tokenizer.decode(example.input_ids)
    divided = conversation(4711, 86)
    divided["chat"]["turn_1"]["Tool Responses"] = (
        "<|Results|>:\nCalculate(\"4711/86\") => '54.77906976744186'\n<eor>\n"
    )
    divided["chat"]["turn_1"]["MOSS"] = "<|MOSS|>: about 54.78<eom>\n"
    rounding = SlotScheme(8, rounding=True)
    rounding_tokenizer = build_tiny_tokenizer(texts, vocab_size=700, number_slots=rounding)
    example = encode_conversation(divided, rounding_tokenizer, max_length=4096, number_slots=rounding)
    assert example is not None
    learnt = rounding_tokenizer.decode(
        [t for t, label in zip(example.input_ids, example.labels) if label != -100]
    )
    assert "about <round><num3>" in learnt
    plain = encode_conversation(conversation(1234, 5678), slot_tokenizer, max_length=4096)
    assert plain is not None and "1234" in slot_tokenizer.decode(plain.input_ids)


def test_loss_mask_follows_moss_finetune_script(tokenizer):
    data = conversation(12, 34)
    example = encode_conversation(data, tokenizer, max_length=4096)
    assert example is not None
    learnt = tokenizer.decode(
        [t for t, label in zip(example.input_ids, example.labels) if label != IGNORE_INDEX]
    )
    masked = tokenizer.decode(
        [t for t, label in zip(example.input_ids, example.labels) if label == IGNORE_INDEX]
    )
    assert "You are an AI assistant" in masked and "Capabilities" in masked
    assert "Calculate(\"12*34\") => '408'" in masked  # the program-written Results content
    assert "<|Results|>:" in learnt and "<eor>" in learnt  # the tags keep their loss
    assert "What is 12 times 34?" in learnt  # as MOSS's script: the human turn keeps its loss
    assert 'Calculate("12*34")<eoc>' in learnt and "12 times 34 is 408.<eom>" in learnt
    human_masked = encode_conversation(data, tokenizer, max_length=4096, mask_human=True)
    assert "What is 12" not in tokenizer.decode(
        [t for t, label in zip(human_masked.input_ids, human_masked.labels) if label != IGNORE_INDEX]
    )


def test_long_conversations_keep_the_turns_that_fit(tokenizer):
    data = conversation(1, 2)
    data["chat"]["turn_2"] = dict(data["chat"]["turn_1"])
    data["num_turns"] = 2
    full = encode_conversation(data, tokenizer, max_length=100_000)
    one = encode_conversation(conversation(1, 2), tokenizer, max_length=100_000)
    cut = encode_conversation(data, tokenizer, max_length=len(full.input_ids) - 1)
    assert cut is not None and len(cut.input_ids) == len(one.input_ids)
    assert encode_conversation(data, tokenizer, max_length=10) is None


def test_shared_prefix_is_the_masked_meta_instruction(tokenizer, data_file):
    examples = load_examples([str(data_file)], tokenizer, max_length=2048, mask_human=False)
    length = common_prefix_length(examples)
    assert length > 20
    assert all(ex.labels[i] == IGNORE_INDEX for ex in examples for i in range(length))


def test_prefix_sharing_gives_the_same_loss(tokenizer, data_file, tmp_path):
    import torch

    from moss_agent.models.loading import load_model
    from moss_agent.models.tiny import build_tiny_moss_checkpoint
    from moss_agent.train.sft import _collate, _loss

    folder = build_tiny_moss_checkpoint(tmp_path / "m", tokenizer=tokenizer, n_positions=1024)
    model = load_model(str(folder), device="cpu").model
    examples = load_examples([str(data_file)], tokenizer, max_length=2048, mask_human=False)[:4]
    skip = common_prefix_length(examples)
    plain = _loss(model, _collate(examples, 0, 0), None)
    with warnings.catch_warnings():  # the cache keyword transformers deprecates is not used
        warnings.filterwarnings("error", message=".*past_key_values.*")
        shared = _loss(model, _collate(examples, skip, 0), torch.tensor([examples[0].input_ids[:skip]]))
    assert float(plain.detach()) == pytest.approx(float(shared.detach()), rel=1e-5)


def test_section_losses_split_the_training_loss_by_turn_section(tokenizer, data_file, tmp_path):
    from moss_agent.models.loading import load_model
    from moss_agent.models.tiny import build_tiny_moss_checkpoint
    from moss_agent.train.sft import _collate, _loss, section_losses

    folder = build_tiny_moss_checkpoint(tmp_path / "m", tokenizer=tokenizer, n_positions=1024)
    model = load_model(str(folder), device="cpu").model
    conversations = [json.loads(line) for line in data_file.read_text().splitlines()][:3]
    model.train()
    losses = section_losses(model, tokenizer, conversations)
    assert model.training  # left as it was
    # MOSS's mask: the Results' content is not learnt, only its tags
    assert set(losses) == {"human", "thoughts", "commands", "results", "reply"}
    assert losses["results"].tokens < losses["commands"].tokens
    total = sum(part.tokens for part in losses.values())
    mean = sum(part.mean * part.tokens for part in losses.values()) / total
    for conversation in conversations:  # the same tokens as training learns, one by one
        example = encode_conversation(conversation, tokenizer)
        total -= sum(label != IGNORE_INDEX for label in example.labels[1:])
    assert total == 0
    examples = [encode_conversation(c, tokenizer) for c in conversations]
    batch = _collate(examples, 0, 0)
    model.eval()
    assert mean == pytest.approx(float(_loss(model, batch, None).detach()), rel=1e-4)


def test_head_only_at_labelled_positions_gives_transformers_loss_and_gradients(
    tokenizer, data_file, tmp_path
):
    import torch

    from moss_agent.models.loading import load_model
    from moss_agent.models.tiny import build_tiny_moss_checkpoint
    from moss_agent.train import sft

    folder = build_tiny_moss_checkpoint(tmp_path / "m", tokenizer=tokenizer, n_positions=1024)
    model = load_model(str(folder), device="cpu").model
    assert sft._head_and_body(model) is not None  # the fast path is taken for MOSS
    examples = load_examples([str(data_file)], tokenizer, max_length=2048, mask_human=False)[:4]
    batch = sft._collate(examples, 0, 0)
    skip = common_prefix_length(examples)

    def loss_and_grad(loss_fn):
        model.zero_grad()
        loss = loss_fn()
        loss.backward()
        return (
            loss.item(),
            model.lm_head.weight.grad.clone(),
            model.transformer.h[0].attn.qkv_proj.weight.grad.clone(),
        )

    reference = loss_and_grad(lambda: model(**batch).loss)
    fast = loss_and_grad(lambda: sft._loss(model, batch, None))
    shared = loss_and_grad(
        lambda: sft._loss(
            model, sft._collate(examples, skip, 0), torch.tensor([examples[0].input_ids[:skip]])
        )
    )
    for got in (fast, shared):
        assert got[0] == pytest.approx(reference[0], rel=1e-5)
        assert torch.allclose(got[1], reference[1], atol=1e-6) and torch.allclose(
            got[2], reference[2], atol=1e-6
        )
    nothing = {**batch, "labels": torch.full_like(batch["labels"], sft.IGNORE_INDEX)}
    assert sft._loss(model, nothing, None).item() == 0.0


def test_loss_weights_follow_the_turn_sections(tokenizer):
    data = conversation(12, 34)
    weights = {"Commands": 4.0, "Human": 0.5}
    plain = encode_conversation(data, tokenizer, max_length=2048)
    weighted = encode_conversation(data, tokenizer, max_length=2048, loss_weights=weights)
    assert plain is not None and weighted is not None and plain.weights is None
    assert weighted.input_ids == plain.input_ids and weighted.labels == plain.labels
    turn = data["chat"]["turn_1"]
    runs: list[tuple[float, list[int]]] = []  # contiguous tokens of one weight
    for token, weight in zip(weighted.input_ids, weighted.weights):
        if not runs or runs[-1][0] != weight:
            runs.append((weight, []))
        runs[-1][1].append(token)
    assert [(weight, tokenizer.decode(ids)) for weight, ids in runs] == [
        (1.0, data["meta_instruction"]),
        (0.5, turn["Human"]),
        (1.0, turn["Inner Thoughts"]),
        (4.0, turn["Commands"]),
        (1.0, turn["Tool Responses"] + turn["MOSS"]),
    ]
    # all weights 1: the same as no weights
    same = encode_conversation(data, tokenizer, max_length=2048, loss_weights={"Commands": 1.0})
    assert same is not None and same.weights is None


def test_loss_weights_parse_and_refuse_bad_input():
    assert parse_loss_weights(["commands=4", "Inner_Thoughts=2", "reply=0.5", "results=0"]) == {
        "Commands": 4.0,
        "Inner Thoughts": 2.0,
        "MOSS": 0.5,
        "Tool Responses": 0.0,
    }
    for bad in (["commands"], ["answer=2"], ["human=x"], ["human=-1"], ["human=nan"]):
        with pytest.raises(UsageError):
            parse_loss_weights(bad)
    with pytest.raises(UsageError, match="nothing would be learnt"):
        parse_loss_weights([f"{name}=0" for name in ("human", "thoughts", "commands", "results", "reply")])


def test_weighted_loss_is_the_weighted_mean_on_every_path(tokenizer, data_file, tmp_path):
    import torch
    import torch.nn.functional as F  # noqa: N812

    from moss_agent.models.loading import load_model
    from moss_agent.models.tiny import build_tiny_moss_checkpoint
    from moss_agent.train import sft

    folder = build_tiny_moss_checkpoint(tmp_path / "m", tokenizer=tokenizer, n_positions=1024)
    model = load_model(str(folder), device="cpu").model
    weights = {"Commands": 5.0, "Human": 0.0, "MOSS": 2.0}
    examples = load_examples(
        [str(data_file)], tokenizer, max_length=2048, mask_human=False, loss_weights=weights
    )[:4]
    batch = sft._collate(examples, 0, 0, weighted=True)
    assert "weights" not in sft._collate(examples, 0, 0)  # the eval loss stays unweighted
    with torch.no_grad():  # the reference: per-token losses of the full model, weighted by hand
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels, w = batch["labels"][:, 1:], batch["weights"][:, 1:]
        keep = labels != IGNORE_INDEX
        per_token = F.cross_entropy(logits[:, :-1][keep], labels[keep], reduction="none")
        expected = float((per_token * w[keep]).sum() / w[keep].sum())
        unweighted = float(per_token.mean())
    skip = common_prefix_length(examples)
    fast = float(sft._loss(model, batch, None).detach())
    shared = float(
        sft._loss(
            model,
            sft._collate(examples, skip, 0, weighted=True),
            torch.tensor([examples[0].input_ids[:skip]]),
        ).detach()
    )
    head = sft._head_and_body
    try:  # the path for models whose head is not a plain linear map
        sft._head_and_body = lambda model: None
        generic = float(sft._loss(model, batch, None).detach())
    finally:
        sft._head_and_body = head
    assert expected != pytest.approx(unweighted, rel=1e-3)
    for got in (fast, shared, generic):
        assert got == pytest.approx(expected, rel=1e-5)


def toy_sft(start: Path, out: Path, data_file: Path, **changes: object) -> SFTConfig:
    """Six steps of batch 4 on the toy data, checkpoints (and eval losses) at steps 3 and 6."""
    settings: dict = {"batch_size": 4, "learning_rate": 3e-3, "max_steps": 6, "save_steps": 3, "log_steps": 3}
    return SFTConfig(
        model=str(start),
        data=[str(data_file)],
        output_dir=str(out),
        eval_data=[str(data_file)],
        **(settings | changes),
    )


def eval_losses(out: Path) -> list[float]:
    """The eval losses a run's train_log.jsonl recorded, in order."""
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return [r["eval_loss"] for r in log if "eval_loss" in r]


def test_finetune_learns_saves_and_resumes(tokenizer, data_file, tmp_path):
    from moss_agent.models.tiny import build_tiny_moss_checkpoint

    start = build_tiny_moss_checkpoint(tmp_path / "start", tokenizer=tokenizer, n_positions=1024)
    out = tmp_path / "run"
    config = toy_sft(start, out, data_file)
    final = finetune(config, progress=False)
    evals = eval_losses(out)
    assert len(evals) == 2 and evals[1] < evals[0]
    saved = json.loads((final / "config.json").read_text())
    assert saved["model_type"] == "moss"
    # A longer run of the same command resumes from step 6 instead of starting over.
    config.max_steps = 8
    finetune(config, progress=False)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == [3, 6, 8]
    assert (out / "checkpoints" / "step-8").is_dir()


def test_eval_steps_evaluates_fewer_checkpoints_and_the_last_without_changing_the_training(
    tokenizer, data_file, tmp_path
):
    from safetensors.torch import load_file

    from moss_agent.models.tiny import build_tiny_moss_checkpoint

    start = build_tiny_moss_checkpoint(tmp_path / "start", tokenizer=tokenizer, n_positions=1024)
    finals, logs = [], []
    for name, eval_steps in (("every", None), ("sparse", 4)):
        config = SFTConfig(
            model=str(start),
            data=[str(data_file)],
            output_dir=str(tmp_path / name),
            eval_data=[str(data_file)],
            batch_size=4,
            learning_rate=3e-3,
            max_steps=6,
            save_steps=2,
            eval_steps=eval_steps,
        )
        finals.append(load_file(str(finetune(config, progress=False) / "model.safetensors")))
        lines = (tmp_path / name / "train_log.jsonl").read_text().splitlines()
        logs.append(
            {r["checkpoint"]: r.get("eval_loss") for r in map(json.loads, lines) if "checkpoint" in r}
        )
    every, sparse = logs
    assert list(every) == list(sparse) == ["step-2", "step-4", "step-6"]  # the same checkpoints
    assert (
        sparse["step-2"] is None
        and sparse["step-4"] == every["step-4"]
        and sparse["step-6"] == every["step-6"]
    )
    assert all(finals[0][k].equal(finals[1][k]) for k in finals[0])  # the same weights


def test_finetune_keeps_a_hand_written_induction_circuit_fixed(tokenizer, data_file, tmp_path):
    import torch
    from safetensors.torch import load_file

    from moss_agent.models.tiny import CIRCUIT_CONFIG_KEY, build_tiny_moss_checkpoint
    from moss_agent.train.induction import _head_rows

    start = build_tiny_moss_checkpoint(
        tmp_path / "start", tokenizer=tokenizer, n_embd=256, n_head=8, rotary_dim=16, induction_circuit=True
    )
    assert json.loads((start / "config.json").read_text())[CIRCUIT_CONFIG_KEY] == {
        "previous_token": [0, 0],
        "induction": [[1, 0], [1, 1]],
    }
    config = SFTConfig(
        model=str(start),
        data=[str(data_file)],
        output_dir=str(tmp_path / "run"),
        batch_size=4,
        learning_rate=3e-3,
        max_steps=3,
        save_steps=3,
    )
    final = finetune(config, progress=False)
    before, after = load_file(str(start / "model.safetensors")), load_file(str(final / "model.safetensors"))
    qkv = "transformer.h.1.attn.qkv_proj.weight"
    assert json.loads((final / "config.json").read_text())[CIRCUIT_CONFIG_KEY]["induction"] == [
        [1, 0],
        [1, 1],
    ]

    class Attn:  # the layout arithmetic of _head_rows, for a 256-wide, 8-head block
        head_dim, embed_dim, mp_num = 32, 256, 4

    for head in (0, 1):  # where the induction heads look stays; how loudly they copy trains
        query, value, key = _head_rows(Attn, head)
        for row in (query, key):
            assert torch.equal(before[qkv][row : row + 32], after[qkv][row : row + 32])
        assert not torch.equal(before[qkv][value : value + 32], after[qkv][value : value + 32])
    prev = "transformer.h.0.attn.qkv_proj.weight"
    for row in _head_rows(Attn, 0):  # the previous-token head is kept whole
        assert torch.equal(before[prev][row : row + 32], after[prev][row : row + 32])
    q_other, _, _ = _head_rows(Attn, 5)
    assert not torch.equal(before[qkv][q_other : q_other + 32], after[qkv][q_other : q_other + 32])
    assert not torch.equal(before["lm_head.weight"], after["lm_head.weight"])
    # the embeddings trained but stayed out of the directions the previous-token head writes
    written = torch.linalg.qr(after["transformer.h.0.attn.out_proj.weight"][:, :32].float())[0]
    embeddings = after["transformer.wte.weight"].float()
    assert not torch.equal(before["transformer.wte.weight"], after["transformer.wte.weight"])
    assert float((embeddings @ written).abs().max()) < 1e-5
    # switched off, the same rows train
    config.protect_circuit, config.output_dir = False, str(tmp_path / "free")
    free = load_file(str(finetune(config, progress=False) / "model.safetensors"))
    row, _, _ = _head_rows(Attn, 0)
    assert not torch.equal(before[qkv][row : row + 32], free[qkv][row : row + 32])


def test_fused_activations_keep_the_loss(tokenizer, data_file, tmp_path):
    from transformers.activations import NewGELUActivation

    from moss_agent.models.loading import load_model
    from moss_agent.models.tiny import build_tiny_moss_checkpoint
    from moss_agent.train.sft import _collate, _fuse_activations, _loss

    folder = build_tiny_moss_checkpoint(tmp_path / "m", tokenizer=tokenizer, n_positions=1024)
    model = load_model(str(folder), device="cpu").model
    batch = _collate(load_examples([str(data_file)], tokenizer, max_length=2048, mask_human=False)[:4], 0, 0)
    before = float(_loss(model, batch, None).detach())
    assert _fuse_activations(model) == model.config.n_layer
    assert not any(isinstance(m, NewGELUActivation) for m in model.modules())
    assert float(_loss(model, batch, None).detach()) == pytest.approx(before, rel=1e-6)
    assert _fuse_activations(model) == 0


def test_eval_loss_is_the_token_weighted_mean_of_each_conversations_loss(tokenizer, data_file, tmp_path):
    import torch

    from moss_agent.models.loading import load_model
    from moss_agent.models.tiny import build_tiny_moss_checkpoint
    from moss_agent.train.sft import _collate, _eval_loss

    folder = build_tiny_moss_checkpoint(tmp_path / "m", tokenizer=tokenizer, n_positions=1024)
    model = load_model(str(folder), device="cpu").model
    examples = load_examples([str(data_file)], tokenizer, max_length=2048, mask_human=False)
    examples = [examples[i] for i in (5, 0, 17, 3, 22, 9, 1)]  # mixed lengths, not in order
    assert len({len(ex.input_ids) for ex in examples}) > 1
    total = count = 0.0
    with torch.no_grad():
        for ex in examples:  # one at a time, no padding, transformers' own loss
            n = sum(label != IGNORE_INDEX for label in ex.labels[1:])
            total += float(model(**_collate([ex], 0, 0)).loss) * n
            count += n
    assert _eval_loss(model, examples, 3, 0) == pytest.approx(total / count, rel=1e-5)
    assert model.training  # left in training mode


def _path_losses(model, examples) -> list[float]:
    """The loss of ``examples`` without and with a shared prefix."""
    import torch

    from moss_agent.train.sft import _collate, _loss

    skip = common_prefix_length(examples)
    prefix = torch.tensor([examples[0].input_ids[:skip]])
    return [
        float(_loss(model, _collate(examples, 0, 0), None).detach()),
        float(_loss(model, _collate(examples, skip, 0), prefix).detach()),
    ]


def test_float32_attention_keeps_the_loss_with_and_without_a_shared_prefix(tokenizer, data_file, tmp_path):
    import torch

    from moss_agent.models.loading import load_model
    from moss_agent.models.tiny import build_tiny_moss_checkpoint
    from moss_agent.train.sft import FLOAT32_SDPA, _float32_attention

    folder = build_tiny_moss_checkpoint(tmp_path / "m", tokenizer=tokenizer, n_positions=1024)
    model = load_model(str(folder), device="cpu").model
    examples = load_examples([str(data_file)], tokenizer, max_length=2048, mask_human=False)[:6]
    assert len({len(e.input_ids) for e in examples}) > 1  # padded rows too
    before = _path_losses(model, examples)
    assert _float32_attention(model) == "sdpa"
    assert model.config._attn_implementation == FLOAT32_SDPA
    # the same masks come along: without them the prefix path attended to the wrong keys
    assert _path_losses(model, examples) == pytest.approx(before, rel=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = _path_losses(model, examples)
    assert mixed == pytest.approx(before, rel=0.02)


def test_mixed_precision_is_checked_and_auto_is_decided():
    from moss_agent.train.sft import resolve_mixed_precision

    with pytest.raises(UsageError, match="mixed precision must be one of"):
        resolve_mixed_precision("fp8")
    assert resolve_mixed_precision("no") == "no"
    assert resolve_mixed_precision("bf16") == "bf16"
    assert resolve_mixed_precision("auto", "cpu") in ("no", "bf16")


def test_finetune_in_bf16_learns_and_saves_a_plain_float32_model(tokenizer, data_file, tmp_path):
    from moss_agent.models.loading import load_model
    from moss_agent.models.tiny import build_tiny_moss_checkpoint
    from moss_agent.train.sft import FLOAT32_SDPA

    start = build_tiny_moss_checkpoint(tmp_path / "start", tokenizer=tokenizer, n_positions=1024)
    out = tmp_path / "run"
    config = toy_sft(start, out, data_file, mixed_precision="bf16")
    final = finetune(config, progress=False)
    evals = eval_losses(out)
    assert len(evals) == 2 and evals[1] < evals[0]
    assert json.loads((out / "sft_config.json").read_text())["mixed_precision"] == "bf16"
    assert FLOAT32_SDPA not in (final / "config.json").read_text()
    loaded = load_model(str(final), device="cpu")
    assert loaded.model.config._attn_implementation != FLOAT32_SDPA
    assert str(next(loaded.model.parameters()).dtype) == "torch.float32"
    # accelerate's state is process-wide: a float32 run after a bf16 one in the same process works,
    # and it computes otherwise (bf16 really ran: the loss once bypassed the autocast)
    plain = replace(config, output_dir=str(tmp_path / "plain"), mixed_precision="no")
    finetune(plain, progress=False)
    plain_evals = eval_losses(tmp_path / "plain")
    assert plain_evals != evals and plain_evals == pytest.approx(evals, rel=0.05)
    with pytest.raises(UsageError, match="mixed precision"):
        finetune(
            SFTConfig(
                model=str(start),
                data=[str(data_file)],
                output_dir=str(tmp_path / "x"),
                mixed_precision="half",
            ),
            progress=False,
        )
