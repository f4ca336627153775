from __future__ import annotations

import json
import re

from transformers import AutoTokenizer

from moss_agent.conversations import TURN_FIELDS
from moss_agent.models.tiny import CJK_CHARACTER, build_tiny_tokenizer

TEXTS = [
    "<|Human|>: 鸡兔同笼，共有35个头，94只脚，鸡和兔各有几只？<eoh>\n"
    "<|Inner Thoughts|>: 这是一个鸡兔同笼问题，设鸡有x只，兔有y只，需要解方程组。<eot>\n"
    '<|Commands|>: Solve("x+y=35, 2x+4y=94")<eoc>\n<|MOSS|>: 鸡有23只，兔有12只。<eom>\n'
] * 40 + ["<|Human|>: What is 1234 multiplied by 5678?<eoh>\n<|MOSS|>: The result is 7006652.<eom>\n"] * 40


def cjk_in(token: str) -> int:
    return len(re.findall(CJK_CHARACTER, token))


def test_split_cjk_keeps_every_chinese_character_a_token_of_its_own() -> None:
    merged = build_tiny_tokenizer(TEXTS, vocab_size=700)
    split = build_tiny_tokenizer(TEXTS, vocab_size=700, split_cjk=True)
    text = TEXTS[0]
    merged_pieces = [merged.decode([i]) for i in merged(text)["input_ids"]]
    split_pieces = [split.decode([i]) for i in split(text)["input_ids"]]
    assert max(cjk_in(p) for p in merged_pieces) >= 4  # whole runs such as 鸡兔同笼 merge by default
    assert max(cjk_in(p) for p in split_pieces) == 1
    assert "鸡" in split_pieces and "兔" in split_pieces  # each a single token, as a copy head needs
    assert split.decode(split(text)["input_ids"]) == text  # lossless
    english = TEXTS[-1]  # English words and the digit rule are unchanged
    numbers = [p for p in (split.decode([i]) for i in split(english)["input_ids"]) if p.strip().isdigit()]
    assert numbers == list("1234" + "5678" + "7006652")
    assert split.tokenize(english) == merged.tokenize(english)


SEARCH_TEXTS = [
    "<|Human|>: Can you look up the population of Cormouth?<eoh>\n"
    '<|Commands|>: Search("Cormouth population")<eoc>\n<|MOSS|>: Cormouth has 52000 people.<eom>\n'
] * 40


def _pieces(tokenizer, text: str) -> list[str]:
    return [tokenizer.decode([i]) for i in tokenizer(text)["input_ids"]]


def _contains(pieces: list[str], part: list[str]) -> bool:
    return any(pieces[i : i + len(part)] == part for i in range(len(pieces)))


def test_split_name_spaces_gives_a_name_the_same_tokens_after_a_space_and_after_a_quote() -> None:
    merged = build_tiny_tokenizer(SEARCH_TEXTS, vocab_size=400)
    split = build_tiny_tokenizer(SEARCH_TEXTS, vocab_size=400, split_name_spaces=True)
    question, call = "the population of Cormouth?", 'Search("Cormouth population")'
    # by default the name starts with its space in the question, not in the call
    assert any(p.startswith(" C") for p in _pieces(merged, question))
    assert not any(p.startswith(" C") for p in _pieces(merged, call))
    name = _pieces(split, "Cormouth")
    assert _contains(_pieces(split, question), name) and _contains(_pieces(split, call), name)
    assert _contains(_pieces(split, question), [" ", *name])
    assert " population" in _pieces(split, call)  # other spaces still merge with their word
    assert split.decode(split(SEARCH_TEXTS[0])["input_ids"]) == SEARCH_TEXTS[0]  # lossless


NAME_TEXTS = [
    f"<|Human|>: What is the population of {name}?<eoh>\n<|MOSS|>: {name} has 52000 people.<eom>\n"
    for name in ("Kesstead", "Kesbrook", "Kesport", "Penstead", "Penbrook", "Penport") * 8
] + ["<|Human|>: 鹦鹉 zebrafish<eoh>\n"] * 3  # rarer than any name


def test_name_min_count_spells_rare_names_with_shared_pieces_and_keeps_other_words(tmp_path) -> None:
    from moss_agent.train.recipe import train_tokenizer

    data = tmp_path / "train.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"meta_instruction": "", "chat": {"turn_1": dict.fromkeys(TURN_FIELDS, "") | {"Human": text}}}
            )
            + "\n"
            for text in NAME_TEXTS
        )
    )
    every = build_tiny_tokenizer(NAME_TEXTS, vocab_size=600, split_cjk=True)
    names = AutoTokenizer.from_pretrained(
        train_tokenizer(data, tmp_path / "tok", 600, name_min_count=20, split_cjk=True)
    )
    assert every.tokenize(" Kesstead") == ["ĠKesstead"]  # each name (16 times) a token of its own
    kesstead, penbrook = names.tokenize(" Kesstead"), names.tokenize(" Penbrook")
    assert len(kesstead) > 1 and kesstead[-1] == "stead" and penbrook[0] == "ĠPen"  # pieces shared by names
    # other words seen as often, frequent capitalized words and Chinese characters merge as before
    for text in (" zebrafish", " population", " What", "鹦", "鹉"):
        assert names.tokenize(text) == every.tokenize(text) and len(names.tokenize(text)) == 1, text
    assert names.decode(names(NAME_TEXTS[0])["input_ids"]) == NAME_TEXTS[0]  # lossless
