"""Turn builders: one request of a given kind → a complete MOSS turn, run against the real tools.

A builder picks a phrasing family allowed for the split, fills its slots with random numbers or
entities, writes the call in MOSS syntax, runs the real tool (calculator, solver, local-corpus
search) and renders the reply from the tool's output, so every turn is consistent.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from moss_agent.models.number_slots import reply_rounding
from moss_agent.protocol import (
    IMAGE_GENERATED,
    NO_RESULT,
    ResultLayout,
    Results,
    ToolInvocation,
    builtin_plugins,
    result_for,
    results_for,
)
from moss_agent.tools.calculator import calculate
from moss_agent.tools.solver import SolveError, format_solutions, solve_equations
from moss_agent.train import (
    _templates_en,
    _templates_en_extra,
    _templates_en_wide,
    _templates_zh,
    _templates_zh_extra,
    _templates_zh_wide,
)
from moss_agent.train._clauses import splice_template
from moss_agent.train._custom import GENERIC_ASK, WIDE_GENERIC_ASK, CustomTool, rename_tool
from moss_agent.train._vocab import ATTR as _ATTR
from moss_agent.train._vocab import CAGE as _CAGE
from moss_agent.train._vocab import CONVERT as _CONVERT
from moss_agent.train._vocab import CUSTOM_TEXT as _CUSTOM_TEXT
from moss_agent.train._vocab import ITEMS as _ITEMS
from moss_agent.train._vocab import PLACES as _PLACES
from moss_agent.train._world import CONCEPTS, World, image_request
from moss_agent.train.options import DataOptions

__all__ = ["CALC_KINDS", "CHAT_KINDS", "SEARCH_KINDS", "Families", "TurnBuilder", "TurnSpec"]

TEMPLATES = {"zh": _templates_zh, "en": _templates_en}
EXTRA_HUMAN = {"zh": _templates_zh_extra.HUMAN_EXTRA, "en": _templates_en_extra.HUMAN_EXTRA}
WIDE_HUMAN = {"zh": _templates_zh_wide.HUMAN_WIDE, "en": _templates_en_wide.HUMAN_WIDE}
CALC_KINDS = (
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "sqrt",
    "percent",
    "mixed",
    "price",
    "discount",
    "zhe",
    "convert",
    "average",
    "rect",
    "circle",
    "tri",
    "speed",
)
_SWITCH_LABEL = {p.name: p.label for p in builtin_plugins()}
ARITH_KINDS = {"add", "sub", "mul", "div", "pow", "sqrt", "percent", "mixed"}
FOLLOWUP_OPS = {"fu_mul": "*", "fu_add": "+", "fu_sub": "-", "fu_div": "/"}
SEARCH_KINDS = ("population", "founder", "founded", "height", "event_date")
CHAT_KINDS = ("greet", "thanks", "identity", "define", "bye")
MIX_RATE = 0.7
"""Share of training requests phrased by a clause splice when ``mix_clauses`` is on."""
SHARED_RATE = 0.3
"""Share of training additions/multiplications worded as their custom tool's requests are."""
NOVEL_RATE = 0.5
"""Share of the training split's declared custom tools renamed to made-up words (``novel_names``)."""
SHARED_ARCHETYPE = {"add": "sum", "mul": "product"}
"""The custom archetype whose request families a calculation kind borrows under ``shared_phrasings``."""


@dataclass
class TurnSpec:
    """A built turn and what a correct model does in it.

    Attributes:
        human: The user's message.
        thoughts: The inner thoughts.
        invocations: The calls written in Commands (empty: ``None``).
        results: The Results section.
        reply: MOSS's reply.
        expect: The evaluation record (tool, argument, kwargs, answer, intent, family).
        answer_number: The exact numeric answer, when a follow-up calculation can use it.
    """

    human: str
    thoughts: str
    invocations: tuple[ToolInvocation, ...]
    results: Results
    reply: str
    expect: dict[str, Any]
    answer_number: str | None = None


@dataclass
class Families:
    """Every phrasing family and which ones the test split holds out."""

    templates: dict[str, str] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    held_out: set[str] = field(default_factory=set)

    def add(self, group: str, templates: Sequence[str], start: int = 0) -> None:
        """Register the templates of a group as families ``{group}.{index}`` from ``start``."""
        for index, text in enumerate(templates, start=start):
            family = f"{group}.{index}"
            self.templates[family] = text
            self.groups.setdefault(group, []).append(family)

    def hold_out(self, seed: int, fraction: float = 0.18, salt: str = "holdout") -> None:
        """Hold out ``fraction`` of the families of every group of three or more (at least one)."""
        rng = random.Random(f"{salt}:{seed}")
        for group in sorted(self.groups):
            members = sorted(self.groups[group])
            if len(members) >= 3:
                rng.shuffle(members)
                self.held_out.update(members[: max(1, round(fraction * len(members)))])

    def allowed(self, group: str, test: bool) -> list[str]:
        """The families of a group usable in the test split (held out) or the others."""
        return [f for f in self.groups.get(group, []) if (f in self.held_out) == test]


def build_families(
    seed: int,
    archetype_keys: Sequence[str],
    archetype_asks: Callable[[str, str], Sequence[str]],
    more_phrasings: bool = False,
    wide_phrasings: bool = False,
) -> Families:
    """Register every family of both languages and choose the held-out ones.

    With ``more_phrasings`` the extra families are added after the base ones (numbered on) and
    held out on their own, so every base family keeps the status it has without them;
    ``wide_phrasings`` adds the wide families, and more phrasings for any custom tool, after those
    in the same way (numbered after the extra ones whether or not those are on, so a family's name
    never depends on the options).
    """
    families = Families()
    for lang, module in TEMPLATES.items():
        for kind, templates in module.HUMAN.items():
            families.add(f"{lang}.{kind}", templates)
        for key in archetype_keys:
            families.add(f"{lang}.custom.{key}", archetype_asks(key, lang))
        for key, templates in GENERIC_ASK[lang].items():
            families.add(f"{lang}.custom.generic.{key}", templates)
    families.hold_out(seed)
    packs = [(EXTRA_HUMAN, "holdout-extra", more_phrasings), (WIDE_HUMAN, "holdout-wide", wide_phrasings)]
    for pack, salt, wanted in packs:
        if not wanted:
            continue
        extra = Families()
        for lang, module in TEMPLATES.items():
            for kind, templates in pack[lang].items():
                start = len(module.HUMAN[kind]) + (len(EXTRA_HUMAN[lang][kind]) if pack is WIDE_HUMAN else 0)
                extra.add(f"{lang}.{kind}", templates, start=start)
            if pack is WIDE_HUMAN:
                for key, templates in WIDE_GENERIC_ASK[lang].items():
                    extra.add(f"{lang}.custom.generic.{key}", templates, start=len(GENERIC_ASK[lang][key]))
        extra.hold_out(seed, salt=salt)
        families.templates.update(extra.templates)
        for group, members in extra.groups.items():
            families.groups[group] += members
        families.held_out |= extra.held_out
    return families


def format_number(result: str) -> tuple[str, bool]:
    """The number to write in a reply for a calculator result, and whether it is exact.

    Integers (and integral floats) are written whole; other floats rounded to 2 decimals.
    """
    value = ast.literal_eval(result)
    if isinstance(value, int):
        return str(value), True
    text = reply_rounding(value)
    return text, text == result


def _num(rng: random.Random, decimals: float = 0.0) -> str:
    digits = rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 5))
    whole = rng.randint(10 ** (digits - 1) if digits > 1 else 1, 10**digits - 1)
    if rng.random() < decimals:
        return f"{whole}.{rng.randint(1, 99):02d}".rstrip("0")
    return str(whole)


def _coef(a: int) -> str:
    return "" if a == 1 else "-" if a == -1 else str(a)


def _linear2(a: int, b: int, c: int) -> str:
    second = ("+" if b > 0 else "-") + (str(abs(b)) if abs(b) != 1 else "") + "y"
    return f"{_coef(a)}x{second}={c}"


def _after_quote(lang: str, quote: str, thoughts: str) -> str:
    """Inner Thoughts that start by quoting a switch line (English thoughts go on in lower case)."""
    if lang == "en" and not thoughts.startswith("I "):
        thoughts = thoughts[:1].lower() + thoughts[1:]
    return f"{quote}{'；' if lang == 'zh' else '; '}{thoughts}"


class TurnBuilder:
    """Builds turns for one split.

    Args:
        world: Facts and corpus.
        search: The search function (query → snippets, raising ``ToolError`` on no hits).
        families: The families and the held-out set.
        test: Whether this split draws held-out families.
        solve_cache: Shared cache of solver outputs.
        options: What the thoughts and replies look like (:class:`DataOptions`; its fields say
            why each exists).
        mix_rng: When given (training split, ``mix_clauses``), requests are phrased (with
            probability ``MIX_RATE``, where a splice fits) by a splice of the drawn family with
            another of its group (:func:`moss_agent.train._clauses.splice_template`), drawn
            from this RNG only, so the conversations drawn from the main RNG stay the same.
            Chit-chat is never spliced.
        shared_rng: When given (training split, ``shared_phrasings``), addition and
            multiplication requests are phrased (with probability ``SHARED_RATE``) by a training
            family of the custom ``sum``/``product`` tool, drawn from this RNG only, so the same
            words lead to ``Calculate`` when only the calculator is enabled and to the custom
            tool when one is declared; the conversations drawn from the main RNG stay the same.
        names_rng: When given (training split, ``novel_names``), a declared custom tool gets a
            made-up name (and made-up parameter names half the time) with probability
            ``NOVEL_RATE``, drawn from this RNG only: the tokenizer splits such names into pieces
            no trained name shares, so they can only be copied, never recalled.
    """

    def __init__(
        self,
        world: World,
        search: Callable[[str], list[str]],
        families: Families,
        test: bool,
        solve_cache: dict[str, str],
        options: DataOptions | None = None,
        *,
        mix_rng: random.Random | None = None,
        shared_rng: random.Random | None = None,
        names_rng: random.Random | None = None,
        values_rng: random.Random | None = None,
    ) -> None:
        self.world = world
        self.search = search
        self.families = families
        self.test = test
        self.solve_cache = solve_cache
        self.options = options or DataOptions()
        self.mix_rng = mix_rng
        self.shared_rng = shared_rng
        self.names_rng = names_rng
        self.values_rng = values_rng

    # --- helpers -----------------------------------------------------------------------------

    def family(
        self, rng: random.Random, group: str, accept: Callable[[str], bool] = lambda t: True
    ) -> tuple[str, str]:
        """Choose an allowed family of a group; ``(family id, template)``."""
        choices = [f for f in self.families.allowed(group, self.test) if accept(self.families.templates[f])]
        if not choices:
            raise LookupError(group)
        family = rng.choice(choices)
        template = self.families.templates[family]
        if self.mix_rng is not None and ".chat." not in group and self.mix_rng.random() < MIX_RATE:
            others = [self.families.templates[f] for f in choices]
            spliced = splice_template(self.mix_rng, template, others)
            if spliced is not None and accept(spliced):
                template = spliced
        return family, template

    @staticmethod
    def text(rng: random.Random, lang: str, table: str, key: str, **slots: Any) -> str:
        """A random template of ``THOUGHTS``/``REPLIES`` filled with slots."""
        return rng.choice(getattr(TEMPLATES[lang], table)[key]).format(**slots)

    def tool_thoughts(self, lang: str, tool: str, enabled: bool, thoughts: str) -> str:
        """The Inner Thoughts of a request for a built-in tool, quoting its switch when asked to."""
        if not self.options.switch_thoughts:
            return thoughts
        state = "enabled" if enabled else "disabled"
        return _after_quote(lang, f"{_SWITCH_LABEL[tool]}: {state}", thoughts)

    @staticmethod
    def fill(template: str, lang: str, slots: dict[str, Any]) -> str:
        """Fill a human template; English sentences start with a capital letter."""
        text = template.format(**slots)
        return text[0].upper() + text[1:] if lang == "en" and text[:1].islower() else text

    def solve_text(self, equations: str) -> str:
        """The solver's Results text, computed in this process and cached."""
        if equations not in self.solve_cache:
            try:
                self.solve_cache[equations] = format_solutions(solve_equations(equations))
            except SolveError:
                self.solve_cache[equations] = NO_RESULT
        return self.solve_cache[equations]

    @staticmethod
    def expect(
        intent: str,
        family: str,
        tool: str | None = None,
        argument: str | None = None,
        kwargs: dict[str, Any] | None = None,
        answer: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The per-turn evaluation record."""
        return {
            "tool": tool,
            "argument": argument,
            "kwargs": kwargs,
            "answer": list(answer),
            "intent": intent,
            "family": family,
        }

    # --- Calculate -----------------------------------------------------------------------------

    def calc_request(self, rng: random.Random, lang: str, kind: str) -> tuple[str, str, str, dict[str, Any]]:
        """A calculation request: ``(family, human, expression, slots)``."""
        s: dict[str, Any] = {}
        if kind in {"add", "sub", "mul"}:
            s["a"], s["b"] = _num(rng, 0.2), _num(rng, 0.2)
            expr = f"{s['a']}{ {'add': '+', 'sub': '-', 'mul': '*'}[kind] }{s['b']}"
        elif kind == "div":
            b = rng.randint(2, 99)
            r = rng.random()
            a = b * rng.randint(2, 999) if r < 0.55 else rng.randint(10, 99999)
            s["a"], s["b"] = str(a), str(0 if r > 0.97 else b)
            expr = f"{s['a']}/{s['b']}"
        elif kind == "pow":
            s["a"], s["b"] = str(rng.randint(2, 30)), str(rng.randint(2, 6))
            expr = f"{s['a']}^{s['b']}"
        elif kind == "sqrt":
            s["n"] = str(rng.randint(2, 300) ** 2 if rng.random() < 0.6 else rng.randint(2, 9999))
            expr = f"sqrt({s['n']})"
        elif kind == "percent":
            s["a"], s["p"] = (
                str(rng.randint(10, 9999)),
                str(rng.choice((5, 10, 12, 15, 20, 25, 30, 35, 40, 60, 75))),
            )
            expr = f"{s['a']}*{s['p']}/100"
        elif kind == "mixed":
            s["a"], s["b"], s["c"] = (
                str(rng.randint(1, 999)),
                str(rng.randint(1, 999)),
                str(rng.randint(2, 99)),
            )
            expr = f"({s['a']}+{s['b']})*{s['c']}"
        elif kind == "price":
            s["p"], s["q"] = (
                _num(rng, 0.3) if rng.random() < 0.5 else str(rng.randint(1, 99)),
                str(rng.randint(2, 50)),
            )
            if lang == "zh":
                s["item"], s["unit"] = rng.choice(_ITEMS["zh"])
            else:
                s["item"] = rng.choice(_ITEMS["en"])
            expr = f"{s['p']}*{s['q']}"
        elif kind == "discount":
            s["p"], s["d"] = str(rng.randint(20, 5000)), str(rng.choice((5, 10, 15, 20, 25, 30, 40, 50)))
            expr = f"{s['p']}*(1-{s['d']}/100)"
        elif kind == "zhe":
            z = rng.choice(("5", "6", "7", "8", "9", "75", "85", "95", "88"))
            s["p"], s["z"] = str(rng.randint(20, 5000)), z
            expr = f"{s['p']}*0.{z}"
        elif kind == "convert":
            s["src"], s["dst"], factor = rng.choice(_CONVERT[lang])
            s["v"] = str(rng.randint(1, 500))
            expr = f"{s['v']}*{factor}"
        elif kind == "average":
            nums = [
                str(rng.randint(40, 100) if rng.random() < 0.5 else rng.randint(1, 999))
                for _ in range(rng.randint(3, 5))
            ]
            s["nums"] = "、".join(nums) if lang == "zh" else ", ".join(nums[:-1]) + " and " + nums[-1]
            expr = f"({'+'.join(nums)})/{len(nums)}"
        elif kind == "rect":
            s["a"], s["b"] = str(rng.randint(2, 300)), str(rng.randint(2, 300))
            expr = f"{s['a']}*{s['b']}"
        elif kind == "circle":
            s["r"] = str(rng.randint(1, 50))
            expr = f"pi*{s['r']}^2"
        elif kind == "tri":
            s["a"], s["h"] = str(rng.randint(2, 200)), str(rng.randint(2, 200))
            expr = f"{s['a']}*{s['h']}/2"
        elif kind == "speed":
            t = rng.randint(2, 12)
            s["t"] = str(t)
            s["d"] = str(t * rng.randint(5, 120) if rng.random() < 0.7 else rng.randint(20, 999))
            expr = f"{s['d']}/{s['t']}"
        else:
            raise KeyError(kind)
        family, template = self.family(rng, f"{lang}.calc.{kind}")
        shared_rng = self.shared_rng
        if shared_rng is not None and kind in SHARED_ARCHETYPE and shared_rng.random() < SHARED_RATE:
            shared = self.families.allowed(f"{lang}.custom.{SHARED_ARCHETYPE[kind]}", self.test)
            if shared:
                family = shared_rng.choice(shared)
                template = self.families.templates[family]
                return family, self.fill(template, lang, {"p0": s["a"], "p1": s["b"]}), expr, s
        return family, self.fill(template, lang, s), expr, s

    def calc_reply(
        self, rng: random.Random, lang: str, kind: str, expr: str, result: str, s: dict[str, Any]
    ) -> tuple[str, list[str], str | None]:
        """The reply for a calculator result: ``(reply, answers, exact number or None)``."""
        if result == NO_RESULT:
            return self.text(rng, lang, "REPLIES", "calc.failed"), [], None
        ans, exact = format_number(result)
        about = "" if exact else ("约" if lang == "zh" else "about ")
        if kind in ARITH_KINDS or kind in FOLLOWUP_OPS:
            pretty = expr.replace("*", " × ").replace("/", " ÷ ").replace("+", " + ").replace("-", " - ")
            key = "calc.arith"
        else:
            pretty, key = "", f"calc.{kind}"
        slots = {**s, "pretty": pretty, "eq": "=" if exact else "≈", "about": about, "ans": ans}
        return self.text(rng, lang, "REPLIES", key, **slots), [ans], ans if exact else None

    def calculate(
        self, rng: random.Random, lang: str, kind: str | None = None, prev: str | None = None
    ) -> TurnSpec:
        """A Calculate turn (a follow-up on ``prev`` when ``kind`` is ``fu_*``)."""
        if kind is None:
            kind = rng.choice([k for k in CALC_KINDS if f"{lang}.calc.{k}" in self.families.groups])
        if kind in FOLLOWUP_OPS:
            assert prev is not None
            n = str(rng.randint(2, 99))
            family, template = self.family(rng, f"{lang}.calc.{kind}")
            human, s = self.fill(template, lang, {"n": n}), {"n": n}
            expr = f"{prev}{FOLLOWUP_OPS[kind]}{n}"
            thoughts = self.text(rng, lang, "THOUGHTS", "calc.followup", prev=prev)
        else:
            family, human, expr, s = self.calc_request(rng, lang, kind)
            thoughts = self.text(rng, lang, "THOUGHTS", f"calc.{kind}")
        thoughts = self.tool_thoughts(lang, "Calculate", True, thoughts)
        invocation = ToolInvocation.call("Calculate", expr)
        result = calculate(expr)
        reply, answers, number = self.calc_reply(rng, lang, kind, expr, result, s)
        results = results_for([result_for(invocation, result, ResultLayout.INLINE)])
        expect = self.expect("calculate", family, "Calculate", expr, None, answers)
        return TurnSpec(human, thoughts, (invocation,), results, reply, expect, number)

    # --- Solve ---------------------------------------------------------------------------------

    def solve_request(self, rng: random.Random, lang: str, kind: str) -> tuple[str, str, str, dict[str, Any]]:
        """An equation request: ``(family, human, equations, slots)``."""
        s: dict[str, Any] = {}
        if kind == "linear":
            var = rng.choice("xxxxxyt")
            a, x0, b = rng.randint(2, 15), rng.randint(-20, 30), rng.choice([-1, 1]) * rng.randint(1, 60)
            form = rng.random()
            if form < 0.5:
                c = a * x0 + b + (rng.randint(1, a - 1) if rng.random() < 0.15 else 0)
                eq = f"{a}{var}{b:+d}={c}"
            elif form < 0.75:
                eq = f"{a}({var}{b:+d})={a * (x0 + b)}"
            else:
                c = rng.choice([k for k in range(-9, 10) if k not in (0, a)])
                d = a * x0 + b - c * x0
                d = d if d else 1
                eq = f"{a}{var}{b:+d}={_coef(c)}{var}{d:+d}"
            s.update(eq=eq, var=var)
        elif kind == "system":
            x0, y0 = rng.randint(-10, 30), rng.randint(-10, 30)
            while True:
                a1, b1, a2, b2 = (rng.choice([k for k in range(-9, 10) if k]) for _ in range(4))
                if a1 * b2 - a2 * b1:
                    break
            s["e1"], s["e2"] = _linear2(a1, b1, a1 * x0 + b1 * y0), _linear2(a2, b2, a2 * x0 + b2 * y0)
            eq = f"{s['e1']}, {s['e2']}"
        else:
            A, B, U, ca, cb, sort = rng.choice(_CAGE[lang])
            x, y = rng.randint(1, 60), rng.randint(1, 60)
            H, L = x + y, ca * x + cb * y
            if lang == "zh":
                heads = f"{H}个头" if sort == "a" else f"{H}辆车"
                legs = (f"{L}条腿" if rng.random() < 0.5 else f"{L}只脚") if sort == "a" else f"{L}个轮子"
                s.update(place=rng.choice(_PLACES["zh"][sort]))
            else:
                heads, legs = (f"{H} heads", f"{L} legs") if sort == "a" else (f"{H} vehicles", f"{L} wheels")
                place, place2 = rng.choice(_PLACES["en"][sort])
                s.update(place=place, place2=place2)
            s.update(A=A, B=B, U=U, heads=heads, legs=legs, sort=sort)
            eq = f"x+y={H}, {ca}x+{cb}y={L}"
        accept = (lambda t: "同笼" not in t) if s.get("sort") == "v" else (lambda t: True)
        family, template = self.family(rng, f"{lang}.solve.{kind}", accept)
        return family, self.fill(template, lang, s), eq, s

    def solve(self, rng: random.Random, lang: str, kind: str | None = None) -> TurnSpec:
        """A Solve turn."""
        kind = kind or rng.choice(("linear", "system", "cage", "cage"))
        family, human, eq, s = self.solve_request(rng, lang, kind)
        thought_key = "solve.cage_v" if s.get("sort") == "v" else f"solve.{kind}"
        if kind == "cage" and self.options.quote_counts:
            thought_key += "_counts"
        thoughts = self.tool_thoughts(lang, "Solve", True, self.text(rng, lang, "THOUGHTS", thought_key, **s))
        invocation = ToolInvocation.call("Solve", eq)
        result = self.solve_text(eq)
        results = results_for([result_for(invocation, result, ResultLayout.BLOCK)])
        if result == NO_RESULT:
            reply, answers = self.text(rng, lang, "REPLIES", "solve.failed"), []
        else:
            values = dict(line.split(" = ", 1) for line in result.split("\n"))
            if kind == "linear":
                answers = [values[s["var"]]]
                reply = self.text(rng, lang, "REPLIES", "solve.linear", var=s["var"], val=answers[0])
            else:
                answers = [values["x"], values["y"]]
                key = f"solve.{kind}"
                if kind == "cage" and self.options.pair_solutions:
                    key = "solve.cage_paired"
                elif kind == "cage" and self.options.restate_solutions:
                    key = "solve.cage_restated"
                reply = self.text(rng, lang, "REPLIES", key, x=answers[0], y=answers[1], **s)
        expect = self.expect("solve", family, "Solve", eq, None, answers)
        return TurnSpec(human, thoughts, (invocation,), results, reply, expect)

    # --- Search --------------------------------------------------------------------------------

    def search_request(self, rng: random.Random, lang: str, kind: str) -> tuple[str, str, Any]:
        """A factual question: ``(family, human, fact)``."""
        fact = rng.choice(self.world.facts[(lang, kind)])
        family, template = self.family(rng, f"{lang}.search.{kind}")
        return family, self.fill(template, lang, {"entity": fact.entity}), fact

    def search_turn(self, rng: random.Random, lang: str, kind: str | None = None) -> TurnSpec:
        """A Search turn whose top hit states the asked fact."""
        kind = kind or rng.choice(SEARCH_KINDS)
        for _ in range(20):
            family, human, fact = self.search_request(rng, lang, kind)
            snippets = self.search(fact.query)
            if snippets and snippets[0] == fact.text:
                break
        else:  # pragma: no cover - the corpus is built so that entity names are distinctive
            raise RuntimeError(f"search never ranks the asked fact first for {kind}")
        attr = _ATTR[lang][kind]
        thoughts = self.text(rng, lang, "THOUGHTS", "search", entity=fact.entity, attr=attr)
        thoughts = self.tool_thoughts(lang, "Search", True, thoughts)
        query = fact.query
        if lang == "en" and self.options.phrase_queries:
            phrased = f"{attr} of {fact.entity}"
            phrased_snippets = self.search(phrased)
            if phrased_snippets and phrased_snippets[0] == fact.text:
                query, snippets = phrased, phrased_snippets
        invocation = ToolInvocation.call("Search", query)
        results = results_for([result_for(invocation, snippets, ResultLayout.HITS)])
        reply = self.text(rng, lang, "REPLIES", f"search.{kind}", entity=fact.entity, answer=fact.answer)
        expect = self.expect("search", family, "Search", query, None, [fact.answer])
        return TurnSpec(human, thoughts, (invocation,), results, reply, expect)

    # --- Text2Image ----------------------------------------------------------------------------

    def image_request(self, rng: random.Random, lang: str) -> tuple[str, str, str, str]:
        """A drawing request: ``(family, human, description, subject)``."""
        subject, style = image_request(rng, lang)
        family, template = self.family(rng, f"{lang}.t2i.{'styled' if style else 'plain'}")
        description = subject if style is None else f"{subject}{'，' if lang == 'zh' else ', '}{style}"
        return family, self.fill(template, lang, {"subject": subject, "style": style}), description, subject

    def text2image(self, rng: random.Random, lang: str) -> TurnSpec:
        """A Text2Image turn."""
        family, human, description, subject = self.image_request(rng, lang)
        invocation = ToolInvocation.call("Text2Image", description)
        results = results_for([result_for(invocation, IMAGE_GENERATED, ResultLayout.BLOCK)])
        thoughts = self.tool_thoughts(lang, "Text2Image", True, self.text(rng, lang, "THOUGHTS", "t2i"))
        reply = self.text(rng, lang, "REPLIES", "t2i", subject=subject)
        expect = self.expect("text2image", family, "Text2Image", description)
        return TurnSpec(human, thoughts, (invocation,), results, reply, expect)

    # --- No tool, disabled tool ------------------------------------------------------------------

    def chat(self, rng: random.Random, lang: str, kind: str | None = None) -> TurnSpec:
        """A turn that needs no tool."""
        kind = kind or rng.choice(CHAT_KINDS + ("define", "define"))
        concept, definition = rng.choice(CONCEPTS[lang])
        family, template = self.family(rng, f"{lang}.chat.{kind}")
        human = self.fill(template, lang, {"concept": concept})
        thoughts = self.text(rng, lang, "THOUGHTS", f"chat.{kind}")
        reply = self.text(rng, lang, "REPLIES", f"chat.{kind}", definition=definition)
        return TurnSpec(human, thoughts, (), Results(), reply, self.expect("no_tool", family))

    def disabled(self, rng: random.Random, lang: str, tool: str) -> TurnSpec:
        """A request for a built-in tool that this conversation disables: no call."""
        slots: dict[str, Any] = {}
        if tool == "Calculate":
            family, human, _, _ = self.calc_request(
                rng, lang, rng.choice([k for k in CALC_KINDS if f"{lang}.calc.{k}" in self.families.groups])
            )
        elif tool == "Solve":
            family, human, _, _ = self.solve_request(rng, lang, rng.choice(("linear", "system", "cage")))
        elif tool == "Search":
            kind = rng.choice(SEARCH_KINDS)
            family, human, fact = self.search_request(rng, lang, kind)
            slots = {"entity": fact.entity, "attr": _ATTR[lang][kind]}
        else:
            family, human, _, subject = self.image_request(rng, lang)
            slots = {"subject": subject}
        thoughts = self.tool_thoughts(lang, tool, False, self.text(rng, lang, "THOUGHTS", f"disabled.{tool}"))
        reply = self.text(rng, lang, "REPLIES", f"disabled.{tool}", **slots)
        return TurnSpec(human, thoughts, (), Results(), reply, self.expect("disabled", family))

    # --- Custom tools ----------------------------------------------------------------------------

    def declare(self, tool: CustomTool, avoid: Callable[[str], bool]) -> CustomTool:
        """The tool as a conversation declares it: renamed to made-up words under ``novel_names``."""
        if self.names_rng is None or self.names_rng.random() >= NOVEL_RATE:
            return tool
        return rename_tool(tool, self.names_rng, avoid)

    def custom_request(
        self, rng: random.Random, lang: str, tool: CustomTool, allow_generic: bool = True
    ) -> tuple[str, str, list[Any]]:
        """A request for a custom tool: ``(family, human, argument values)``.

        Raises:
            LookupError: No family fits (a split without a family for this archetype).
        """
        values = tool.sample_args(rng, lang, wide=self.values_rng)
        arche = tool.archetype
        generic = f"{lang}.custom.generic.{'args' if arche.params else 'noargs'}"
        specific = bool(self.families.allowed(f"{lang}.custom.{arche.key}", self.test))
        use_generic = allow_generic and (rng.random() < 0.3 or not specific)
        family, template = self.family(rng, generic if use_generic else f"{lang}.custom.{arche.key}")
        sep = "，" if lang == "zh" else ", "
        slots = {f"p{i}": v for i, v in enumerate(values)}
        slots.update(
            tool=tool.name,
            kv=sep.join(f"{p}={v}" for p, v in zip(tool.params, values)),
            vals=(sep if lang == "zh" else " and ").join(str(v) for v in values),
            vals_c=", ".join(str(v) for v in values),
        )
        return family, self.fill(template, lang, slots), values

    def custom(self, rng: random.Random, lang: str, tool: CustomTool) -> TurnSpec:
        """A call of a declared custom tool, answered from its deterministic value."""
        family, human, values = self.custom_request(rng, lang, tool)
        kwargs = dict(zip(tool.params, values))
        single_text = len(values) == 1 and isinstance(values[0], str)
        invocation = (
            ToolInvocation.call(tool.name, values[0])
            if single_text
            else ToolInvocation.call(tool.name, **kwargs)
        )
        value = tool.archetype.value(values, rng)
        results = results_for([result_for(invocation, value, ResultLayout.INLINE)])
        key = "think_api" if self.options.api_thoughts else "think"
        thoughts = _CUSTOM_TEXT[lang][key].format(name=tool.name, api=tool.api)
        if self.options.quote_api:
            thoughts = _after_quote(lang, tool.declaration.switch_text(True), thoughts)
        slots = {f"p{i}": v for i, v in enumerate(values)}
        reply = (tool.archetype.reply_zh if lang == "zh" else tool.archetype.reply_en).format(
            value=value, **slots
        )
        expect = self.expect("custom", family, tool.name, values[0] if single_text else None, kwargs, [value])
        return TurnSpec(human, thoughts, (invocation,), results, reply, expect)

    def custom_unavailable(self, rng: random.Random, lang: str, tool: CustomTool) -> TurnSpec:
        """A request only an undeclared tool could serve: no call."""
        family, human, _ = self.custom_request(rng, lang, tool, allow_generic=False)
        purpose = tool.archetype.purpose_zh if lang == "zh" else tool.archetype.purpose_en
        thoughts = _CUSTOM_TEXT[lang]["think_none"].format(purpose=purpose)
        reply = _CUSTOM_TEXT[lang]["reply_none"].format(purpose=purpose)
        return TurnSpec(human, thoughts, (), Results(), reply, self.expect("disabled", family))
