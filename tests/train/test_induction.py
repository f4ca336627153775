"""The hand-written induction circuit copies at init, and only where it was installed."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from moss_agent.errors import UsageError  # noqa: E402
from moss_agent.models.configuration import MossConfig, MossForCausalLM  # noqa: E402
from moss_agent.train.induction import CircuitHeads, install_induction_circuit  # noqa: E402


def model(n_layer: int = 2, n_embd: int = 256, n_head: int = 8, rotary_dim: int = 16) -> MossForCausalLM:
    torch.manual_seed(0)
    config = MossConfig(
        vocab_size=3000,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        rotary_dim=rotary_dim,
        n_positions=512,
        attn_implementation="eager",
    )
    return MossForCausalLM(config).eval()


def repeated(seed: int, length: int = 20, gap: int = 100) -> tuple[torch.Tensor, list[int], int]:
    """A random span, unrelated tokens, the span again: what a copy must continue."""
    rng = random.Random(seed)
    span = [rng.randrange(50, 3000) for _ in range(length)]
    filler = [rng.randrange(50, 3000) for _ in range(gap)]
    return torch.tensor([span + filler + span]), span, length + gap


def copy_accuracy(m: MossForCausalLM) -> float:
    right = total = 0
    for seed in range(4):
        ids, span, start = repeated(seed)
        with torch.no_grad():
            predicted = m(ids).logits[0].argmax(-1)
        for i in range(1, len(span)):
            right += int(predicted[start + i - 1]) == span[i]
            total += 1
    return right / total


def test_a_random_model_does_not_copy() -> None:
    assert copy_accuracy(model()) < 0.05


def test_the_circuit_copies_a_repeated_span_at_init() -> None:
    m = model()
    heads = install_induction_circuit(m, seed=0)
    assert heads.previous_token == (0, 0)
    assert heads.induction == ((1, 0), (1, 1))
    assert copy_accuracy(m) > 0.6


def test_the_previous_token_head_attends_to_the_token_before() -> None:
    m = model()
    install_induction_circuit(m)
    ids, _, _ = repeated(7)
    with torch.no_grad():
        attentions = m(ids, output_attentions=True).attentions
    pattern = attentions[0][0, 0]
    positions = torch.arange(1, ids.shape[1])
    assert float(pattern[positions, positions - 1].min()) > 0.99
    # the induction head, at the second copy, looks where the current token was followed before
    induction = attentions[1][0, 0]
    _, span, start = repeated(7)
    hits = [float(induction[start + i, i + 1]) for i in range(len(span) - 1)]
    assert sum(hits) / len(hits) > 0.6


def test_every_weight_stays_trainable_and_the_model_still_learns() -> None:
    m = model().train()
    install_induction_circuit(m)
    assert all(p.requires_grad for p in m.parameters())
    ids, _, _ = repeated(3)
    optimizer = torch.optim.AdamW(m.parameters(), lr=1e-3)
    with torch.no_grad():
        first = float(m(ids, labels=ids).loss)
    for _ in range(5):
        loss = m(ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_layer": 1}, "induction_layer"),
        ({"rotary_dim": 32}, "non-rotary"),
        ({"n_embd": 64, "n_head": 2}, "too small"),
    ],
)
def test_models_the_circuit_does_not_fit_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        install_induction_circuit(model(**kwargs))


def test_non_codegen_models_are_refused() -> None:
    with pytest.raises(UsageError, match="CodeGen"):
        install_induction_circuit(torch.nn.Linear(2, 2))


def digit_continuation_accuracy(m: MossForCausalLM, seeds: int = 12) -> float:
    """Copy 3 numbers of 3–5 "digits" (tokens 100…109, so one-token matches are ambiguous) from a question."""
    right = total = 0
    for seed in range(seeds):
        rng = random.Random(seed)
        numbers = [[100 + rng.randrange(10) for _ in range(rng.randrange(3, 6))] for _ in range(3)]
        question: list[int] = []
        for number in numbers:
            question += [rng.randrange(200, 3000) for _ in range(4)] + number
        question += [rng.randrange(200, 3000) for _ in range(10)]
        answer = [token for number in numbers for token in [150, *number]]
        ids = torch.tensor([question + answer])
        with torch.no_grad():
            predicted = m(ids).logits[0].argmax(-1)
        for i in range(len(question), ids.shape[1]):
            if int(ids[0, i]) >= 150 or int(ids[0, i - 1]) >= 150:
                continue  # a number's first digit is not a continuation
            right += int(predicted[i - 1]) == int(ids[0, i])
            total += 1
    return right / total


def test_bigram_heads_settle_ambiguous_digit_copies() -> None:
    plain = model(n_layer=4)
    install_induction_circuit(plain)
    bigram = model(n_layer=4)
    heads = install_induction_circuit(bigram, bigram_heads=4)
    assert heads.second_previous == (0, 1)
    assert heads.bigram == ((1, 2), (1, 3), (1, 4), (1, 5))
    assert CircuitHeads.from_config(heads.to_config()) == heads
    one, two = digit_continuation_accuracy(plain), digit_continuation_accuracy(bigram)
    assert two > 0.5 and two > one + 0.15  # measured: 0.38 → 0.56
    assert copy_accuracy(bigram) > 0.6  # plain spans still copy
    ids, _, _ = repeated(5)
    with torch.no_grad():
        pattern = bigram(ids, output_attentions=True).attentions[0][0, 1]
    positions = torch.arange(2, ids.shape[1])
    assert float(pattern[positions, positions - 2].min()) > 0.95  # the second positional head


def test_protection_keeps_the_bigram_heads_and_their_directions() -> None:
    from moss_agent.train.induction import _head_rows, protect_induction_circuit

    m = model(n_layer=4).train()
    heads = install_induction_circuit(m, bigram_heads=2)
    enforce = protect_induction_circuit(m, heads)
    layer0, layer1 = m.transformer.h[0].attn, m.transformer.h[1].attn
    before0, before1 = layer0.qkv_proj.weight.detach().clone(), layer1.qkv_proj.weight.detach().clone()
    optimizer = torch.optim.AdamW(m.parameters(), lr=3e-3)
    for seed in range(3):
        ids, _, _ = repeated(seed)
        loss = m(ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        enforce()
    for head in (0, 1):  # both positional heads whole
        for row in _head_rows(layer0, head):
            assert torch.equal(before0[row : row + 32], layer0.qkv_proj.weight[row : row + 32])
    for head in (2, 3):  # the bigram heads look where they looked; their values learn
        query, value, key = _head_rows(layer1, head)
        for row in (query, key):
            assert torch.equal(before1[row : row + 32], layer1.qkv_proj.weight[row : row + 32])
        assert not torch.equal(before1[value : value + 32], layer1.qkv_proj.weight[value : value + 32])
    outputs = layer0.out_proj.weight[:, :64].detach()  # both heads' outputs
    written = torch.linalg.qr(outputs[:, outputs.norm(dim=0) > 0])[0]
    assert float((m.transformer.wte.weight.detach() @ written).abs().max()) < 1e-4


def test_head_rows_do_not_need_mp_num_on_the_module() -> None:
    """transformers 5.17 kept CodeGen's 4-way qkv split inside forward(); seen failing on a GPU machine."""
    from moss_agent.train.induction import _head_rows

    attn = model().transformer.h[0].attn
    rows = [_head_rows(attn, head) for head in range(8)]
    if hasattr(attn, "mp_num"):
        assert attn.mp_num == 4
        del attn.mp_num
    assert [_head_rows(attn, head) for head in range(8)] == rows
    # the qkv rows of the 8 heads tile the projection: each row block is used exactly once
    starts = sorted(start for triple in rows for start in triple)
    assert starts == list(range(0, 3 * 256, 32))
