"""Write ``readme-probe.jsonl``: the README's two questions, word for word, with other numbers.

The README's main command asks one 鸡兔同笼 question and one product; a model either gets those
two right or not, which says little about how often it gets that kind of question right. This
suite keeps their exact wording and varies only the numbers (the README's own numbers first), so
a model's rate on "the README's questions" can be measured and compared with a paired test.

Run ``python evals/suites/make_readme_probe.py`` to regenerate it (fixed seed, same bytes).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

CAGE = "鸡兔同笼，共有{heads}个头，{legs}只脚，鸡和兔各有几只？"
PRODUCT = "What is {a} multiplied by {b}?"
PLUGINS = ["Search", "Calculate", "Solve", "Text2Image"]
PER_KIND = 40


def cases(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    cage = [(23, 12)] + [(rng.randint(3, 99), rng.randint(3, 99)) for _ in range(PER_KIND - 1)]
    products = [(1234, 5678)] + [
        (rng.randint(100, 9999), rng.randint(100, 9999)) for _ in range(PER_KIND - 1)
    ]
    out = []
    for index, (chickens, rabbits) in enumerate(cage, start=1):
        heads, legs = chickens + rabbits, 2 * chickens + 4 * rabbits
        out.append(
            {
                "id": f"cage-zh-{index:03d}",
                "lang": "zh",
                "category": "solve",
                "messages": [{"role": "user", "content": CAGE.format(heads=heads, legs=legs)}],
                "plugins": PLUGINS,
                "expect": {"tool": "Solve", "solution_values": [str(chickens), str(rabbits)]},
                "answer": [f"鸡有{chickens}只", f"兔有{rabbits}只"],
                "reference": f"x+y={heads}, 2x+4y={legs}",
            }
        )
    for index, (a, b) in enumerate(products, start=1):
        out.append(
            {
                "id": f"product-en-{index:03d}",
                "lang": "en",
                "category": "calculate",
                "messages": [{"role": "user", "content": PRODUCT.format(a=a, b=b)}],
                "plugins": PLUGINS,
                "expect": {"tool": "Calculate", "value": a * b},
                "answer": [str(a * b)],
                "reference": f"{a}*{b}",
            }
        )
    return out


def main() -> None:
    path = Path(__file__).with_name("readme-probe.jsonl")
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases()), encoding="utf-8")
    print(f"wrote {path} ({len(cases())} cases)")  # noqa: T201


if __name__ == "__main__":
    main()
