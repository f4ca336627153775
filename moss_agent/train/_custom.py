"""Custom declared tools for the generator: archetypes, invented names and deterministic values.

Each :class:`Archetype` is a kind of tool (convert currency, look up a word, …). A conversation
invents a concrete tool from it: a name from ``verbs × nouns``, a switch-line label, parameter
names drawn from variants, argument values, and the value the tool "returns" (computed here,
deterministically). The point is to teach a model to read an API line and fill in arguments,
not to learn particular tools.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from moss_agent.protocol import PluginDeclaration, builtin_plugins
from moss_agent.train._vocab import BOOKS as _BOOKS
from moss_agent.train._vocab import CAPITALS as _CAPITALS
from moss_agent.train._vocab import CITIES_EN as _CITIES_EN
from moss_agent.train._vocab import CITIES_ZH as _CITIES_ZH
from moss_agent.train._vocab import FOODS as _FOODS
from moss_agent.train._vocab import LANGS as _LANGS
from moss_agent.train._vocab import PHRASES as _PHRASES
from moss_agent.train._vocab import QUOTES as _QUOTES
from moss_agent.train._vocab import RATES as _RATES
from moss_agent.train._vocab import STATUSES as _STATUSES
from moss_agent.train._vocab import WORDS as _WORDS
from moss_agent.train._world import _en_city, _zh_city

__all__ = [
    "ARCHETYPES",
    "GENERIC_ASK",
    "Archetype",
    "CustomTool",
    "invent_tool",
    "novel_identifier",
    "rename_tool",
]


#: With ``wide_values``: the chance that a city, or a word a tool spells out, is made up.
WIDE_VALUE_RATE = 0.5
#: Archetypes whose result is computed from the word itself (any word will do).
_WORD_COMPUTED = frozenset({"letters", "reverse"})


def _h(*parts: Any) -> int:
    """A stable hash of the arguments (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.md5(repr(parts).encode()).digest()[:6], "big")


def _sample(kind: str, rng: random.Random, lang: str) -> Any:
    """An argument value of a parameter kind."""
    if kind == "amount":
        return rng.choice([rng.randint(1, 99) * 10, rng.randint(5, 5000)])
    if kind == "currency":
        return rng.choice(list(_RATES))
    if kind == "city":
        return rng.choice(_CITIES_ZH if lang == "zh" else _CITIES_EN)
    if kind == "ticker":
        return "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(3, 4)))
    if kind == "phrase":
        return rng.choice(list(_PHRASES))
    if kind == "language":
        return rng.choice(_LANGS)
    if kind == "word":
        return rng.choice(list(_WORDS))
    if kind == "int":
        return rng.randint(2, 999)
    if kind == "small_int":
        return rng.randint(2, 60)
    if kind == "food":
        return rng.choice(_FOODS)
    if kind == "flight":
        return rng.choice(["CA", "MU", "BA", "LH", "AF", "DL", "QF"]) + str(rng.randint(100, 9999))
    if kind == "order_id":
        return rng.randint(10000, 99999)
    if kind == "country":
        return rng.choice(list(_CAPITALS))
    if kind == "book":
        return rng.choice(list(_BOOKS))
    if kind == "percent":
        return rng.choice([10, 12, 15, 18, 20, 25])
    if kind == "weight":
        return rng.randint(1, 40)
    if kind == "username":
        return rng.choice(["lin", "sam", "kai", "ada", "neo", "ivy", "max"]) + str(rng.randint(1, 999))
    raise KeyError(kind)


@dataclass(frozen=True)
class Archetype:
    """A kind of custom tool.

    Attributes:
        key: Identifier of the archetype (used in family ids).
        verbs: First halves of invented tool names.
        nouns: Second halves of invented tool names.
        labels: Switch-line labels (short descriptions).
        params: ``(name variants, value kind)`` per parameter, in order.
        ask_en: English question templates over ``{p0}``, ``{p1}``, …
        ask_zh: Chinese question templates.
        reply_en: English reply over the arguments and ``{value}``.
        reply_zh: Chinese reply.
        purpose_en: What the tool does, for "no tool can do that" replies.
        purpose_zh: The same in Chinese.
        value: The tool's deterministic output for the argument values.
        arithmetic: The tool computes arithmetic (so the calculator must not compete with it).
    """

    key: str
    verbs: tuple[str, ...]
    nouns: tuple[str, ...]
    labels: tuple[str, ...]
    params: tuple[tuple[tuple[str, ...], str], ...]
    ask_en: tuple[str, ...]
    ask_zh: tuple[str, ...]
    reply_en: str
    reply_zh: str
    purpose_en: str
    purpose_zh: str
    value: Callable[[list[Any], random.Random], str]
    arithmetic: bool = False


def _a(
    key: str,
    verbs: str,
    nouns: str,
    labels: tuple[str, ...],
    params: tuple[tuple[str, str], ...],
    ask_en: tuple[str, ...],
    ask_zh: tuple[str, ...],
    reply: tuple[str, str],
    purpose: tuple[str, str],
    value: Callable[[list[Any], random.Random], str],
    arithmetic: bool = False,
) -> Archetype:
    return Archetype(
        key,
        tuple(verbs.split()),
        tuple(nouns.split()),
        labels,
        tuple((tuple(names.split()), kind) for names, kind in params),
        ask_en,
        ask_zh,
        reply[0],
        reply[1],
        purpose[0],
        purpose[1],
        value,
        arithmetic,
    )


ARCHETYPES: tuple[Archetype, ...] = (
    _a(
        "currency",
        "convert exchange",
        "currency money amount_between",
        (
            "Convert currency",
            "Converts an amount of money from one currency to another",
            "Currency converter",
        ),
        (
            ("amount value quantity", "amount"),
            ("source from_currency base", "currency"),
            ("target to_currency quote", "currency"),
        ),
        (
            "Convert {p0} {p1} to {p2}.",
            "How much is {p0} {p1} in {p2}?",
            "I have {p0} {p1}; what is that in {p2}?",
        ),
        ("把{p0}{p1}换成{p2}是多少？", "{p0}{p1}能兑换多少{p2}？"),
        ("{p0} {p1} is {value} {p2}.", "{p0}{p1}可以兑换{value}{p2}。"),
        ("convert currencies", "兑换货币"),
        lambda v, r: f"{v[0] * _RATES[v[2]] / _RATES[v[1]]:.2f}",
    ),
    _a(
        "population",
        "get lookup fetch",
        "population city_population resident_count",
        ("Look up the population of a city", "City population", "Returns how many people live in a city"),
        (("city city_name location", "city"),),
        (
            "How many people live in {p0}?",
            "What is the population of {p0}?",
            "Find the number of residents of {p0}.",
        ),
        ("{p0}有多少人口？", "查一下{p0}的人口。"),
        ("{p0} has a population of {value}.", "{p0}的人口是{value}。"),
        ("look up populations", "查询人口"),
        lambda v, r: f"{_h('pop', v[0]) % 9_000_000 + 50_000:,}",
    ),
    _a(
        "stock",
        "get fetch check",
        "stock_price share_price quote",
        ("Get the latest stock price", "Stock quote", "Returns the current share price for a ticker symbol"),
        (("ticker symbol stock_symbol", "ticker"),),
        (
            "What is the stock price of {p0}?",
            "How much is one share of {p0} now?",
            "Check the share price for {p0}.",
        ),
        ("{p0}的股价是多少？", "查一下股票{p0}现在的价格。"),
        ("{p0} is trading at {value}.", "{p0}当前股价为{value}。"),
        ("check stock prices", "查询股价"),
        lambda v, r: f"${_h('stock', v[0]) % 90000 / 100 + 5:.2f}",
    ),
    _a(
        "distance",
        "get compute measure",
        "distance travel_distance route_length",
        ("Distance between two cities", "Computes the driving distance between two places", "Route distance"),
        (("origin start from_city", "city"), ("destination end to_city", "city")),
        (
            "How far is it from {p0} to {p1}?",
            "What is the distance between {p0} and {p1}?",
            "Find the route length from {p0} to {p1}.",
        ),
        ("从{p0}到{p1}有多远？", "{p0}和{p1}之间的距离是多少？"),
        ("The distance from {p0} to {p1} is {value}.", "{p0}到{p1}的距离是{value}。"),
        ("measure distances", "计算距离"),
        lambda v, r: f"{_h('dist', v[0], v[1]) % 3000 + 20} km",
    ),
    _a(
        "translate",
        "translate render",
        "text phrase into_language",
        ("Translate text", "Translates a phrase into another language", "Phrase translator"),
        (("text phrase sentence", "phrase"), ("target_language language to_lang", "language")),
        ("How do you say '{p0}' in {p1}?", "Translate '{p0}' into {p1}.", "What is '{p0}' in {p1}?"),
        ("“{p0}”用{p1}怎么说？", "把“{p0}”翻译成{p1}。"),
        ("In {p1}, '{p0}' is '{value}'.", "“{p0}”的{p1}是“{value}”。"),
        ("translate text", "翻译文本"),
        lambda v, r: _PHRASES[v[0]][v[1]],
    ),
    _a(
        "define",
        "lookup define explain",
        "word term vocabulary",
        ("Look up a word in the dictionary", "Dictionary", "Returns the definition of an English word"),
        (("word term entry", "word"),),
        (
            "What does '{p0}' mean?",
            "Look up the word {p0} in the dictionary.",
            "Give me the definition of {p0}.",
        ),
        ("{p0}这个单词是什么意思？", "查一下{p0}的释义。"),
        ("'{p0}' means {value}.", "{p0}的意思是：{value}。"),
        ("look up words", "查询单词"),
        lambda v, r: _WORDS[v[0]],
    ),
    _a(
        "clock",
        "get fetch read",
        "current_time time_now clock",
        ("Get the current time", "Clock", "Returns the current local time"),
        (),
        ("What time is it now?", "Can you tell me the current time?", "Check the clock for me."),
        ("现在几点了？", "帮我看看现在的时间。"),
        ("It is {value} now.", "现在是{value}。"),
        ("tell the time", "查询时间"),
        lambda v, r: f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}",
    ),
    _a(
        "timezone",
        "get lookup find",
        "timezone utc_offset time_zone",
        ("Find the time zone of a city", "Time zone lookup", "Returns the UTC offset of a city"),
        (("city place location", "city"),),
        ("Which time zone is {p0} in?", "What is the UTC offset of {p0}?", "Look up the time zone for {p0}."),
        ("{p0}在哪个时区？", "查一下{p0}的时区。"),
        ("{p0} is in {value}.", "{p0}位于{value}时区。"),
        ("look up time zones", "查询时区"),
        lambda v, r: f"UTC{_h('tz', v[0]) % 23 - 11:+d}",
    ),
    _a(
        "letters",
        "count tally",
        "letters letter_occurrences characters",
        ("Count a letter in a word", "Counts how many times a letter appears in a word", "Letter counter"),
        (("word text string", "word"), ("letter char character", "letter")),
        (
            "How many times does the letter {p1} appear in '{p0}'?",
            "Count the letter {p1} in the word {p0}.",
            "How many {p1}'s are in '{p0}'?",
        ),
        ("单词{p0}里有几个字母{p1}？", "数一数{p0}中字母{p1}出现了几次。"),
        ("The letter {p1} appears {value} times in '{p0}'.", "{p0}中字母{p1}出现了{value}次。"),
        ("count letters", "统计字母"),
        lambda v, r: str(v[0].count(v[1])),
    ),
    _a(
        "reverse",
        "reverse flip mirror",
        "text string word",
        ("Reverse a string", "Reverses the characters of a text", "String reverser"),
        (("text string word", "word"),),
        ("Reverse the word {p0}.", "What is '{p0}' spelled backwards?", "Flip the string {p0} around."),
        ("把单词{p0}倒过来写。", "{p0}反过来是什么？"),
        ("'{p0}' reversed is '{value}'.", "{p0}倒过来是{value}。"),
        ("reverse text", "反转文本"),
        lambda v, r: v[0][::-1],
    ),
    _a(
        "sum",
        "sum add combine",
        "numbers two_numbers values",
        ("Add two integers", "Adds two numbers together", "Sum of two numbers"),
        (("a x first num1", "int"), ("b y second num2", "int")),
        (
            "What do you get when you add {p0} and {p1}?",
            "Use the tool to add {p0} and {p1}.",
            "What is {p0} plus {p1}?",
        ),
        ("用工具算一下{p0}加{p1}。", "{p0}和{p1}相加是多少？"),
        ("{p0} plus {p1} is {value}.", "{p0}加{p1}等于{value}。"),
        ("add numbers", "做加法"),
        lambda v, r: str(v[0] + v[1]),
        True,
    ),
    _a(
        "product",
        "multiply times compute",
        "numbers product values",
        ("Multiply two integers", "Multiplies two numbers", "Product of two numbers"),
        (("a x first num1", "int"), ("b y second num2", "int")),
        (
            "What is {p0} multiplied by {p1}?",
            "Use the tool to multiply {p0} by {p1}.",
            "Find the product of {p0} and {p1}.",
        ),
        ("用工具算一下{p0}乘{p1}。", "{p0}和{p1}的乘积是多少？"),
        ("{p0} times {p1} is {value}.", "{p0}乘{p1}等于{value}。"),
        ("multiply numbers", "做乘法"),
        lambda v, r: str(v[0] * v[1]),
        True,
    ),
    _a(
        "square",
        "square compute get",
        "number of_number value",
        ("Square a number", "Returns the square of an integer", "Squares its input"),
        (("n x number value", "small_int"),),
        ("What is the square of {p0}?", "Square {p0} for me.", "What is {p0} squared?"),
        ("{p0}的平方是多少？", "用工具求{p0}的平方。"),
        ("{p0} squared is {value}.", "{p0}的平方是{value}。"),
        ("square numbers", "求平方"),
        lambda v, r: str(v[0] * v[0]),
        True,
    ),
    _a(
        "tip",
        "calculate compute suggest",
        "tip gratuity tip_amount",
        ("Compute a restaurant tip", "Calculates the tip for a bill", "Tip calculator"),
        (("bill amount total", "amount"), ("percent tip_percent rate", "percent")),
        (
            "What is a {p1}% tip on a ${p0} bill?",
            "How much should I tip on ${p0} at {p1} percent?",
            "Work out a {p1}% tip for ${p0}.",
        ),
        ("账单{p0}元，给{p1}%的小费是多少？", "{p0}元的消费按{p1}%算小费要给多少？"),
        ("A {p1}% tip on ${p0} is ${value}.", "小费是{value}元。"),
        ("compute tips", "计算小费"),
        lambda v, r: f"{v[0] * v[1] / 100:.2f}",
        True,
    ),
    _a(
        "shipping",
        "estimate quote get",
        "shipping shipping_cost postage",
        ("Estimate shipping cost", "Estimates the cost of shipping a parcel", "Postage calculator"),
        (("weight weight_kg kilograms", "weight"), ("destination country to_country", "country")),
        (
            "How much does it cost to ship {p0} kg to {p1}?",
            "Estimate shipping for a {p0} kg parcel to {p1}.",
            "What's the postage for {p0} kg going to {p1}?",
        ),
        ("寄{p0}公斤的包裹到{p1}要多少钱？", "估算一下{p0}公斤寄往{p1}的运费。"),
        ("Shipping {p0} kg to {p1} costs {value}.", "寄{p0}公斤到{p1}的运费是{value}。"),
        ("estimate shipping", "估算运费"),
        lambda v, r: f"${v[0] * 4.5 + _h('ship', v[1]) % 20 + 5:.2f}",
    ),
    _a(
        "calories",
        "get lookup count",
        "calories calorie_count nutrition",
        ("Look up calories in a food", "Returns the calories of a food item", "Calorie lookup"),
        (("food item dish", "food"),),
        (
            "How many calories are in a {p0}?",
            "Look up the calories of a {p0}.",
            "What's the calorie count of a {p0}?",
        ),
        ("一个{p0}有多少卡路里？", "查一下{p0}的热量。"),
        ("A {p0} has {value}.", "{p0}的热量是{value}。"),
        ("look up calories", "查询热量"),
        lambda v, r: f"{_h('cal', v[0]) % 400 + 40} kcal",
    ),
    _a(
        "flight",
        "check get track",
        "flight_status flight departure",
        ("Check a flight's status", "Returns the status of a flight", "Flight tracker"),
        (("flight_number flight code", "flight"),),
        ("Is flight {p0} on time?", "What is the status of flight {p0}?", "Check flight {p0} for me."),
        ("航班{p0}准点吗？", "查一下{p0}航班的状态。"),
        ("Flight {p0}: {value}.", "{p0}航班的状态：{value}。"),
        ("check flights", "查询航班"),
        lambda v, r: ["on time", "delayed 20 minutes", "boarding", "landed"][_h("fl", v[0]) % 4],
    ),
    _a(
        "order",
        "track get check",
        "order order_status package",
        ("Track an order", "Returns the delivery status of an order", "Order tracker"),
        (("order_id order_number id", "order_id"),),
        ("Where is my order {p0}?", "What's the status of order number {p0}?", "Track order {p0}."),
        ("我的订单{p0}到哪了？", "查一下订单{p0}的状态。"),
        ("Order {p0} is {value}.", "订单{p0}的状态是{value}。"),
        ("track orders", "查询订单"),
        lambda v, r: _STATUSES[_h("ord", v[0]) % len(_STATUSES)],
    ),
    _a(
        "capital",
        "get find lookup",
        "capital capital_city",
        ("Find the capital of a country", "Returns the capital city of a country", "Capital lookup"),
        (("country nation country_name", "country"),),
        (
            "What is the capital of {p0}?",
            "Which city is the capital of {p0}?",
            "Look up the capital of {p0}.",
        ),
        ("{p0}的首都是哪里？", "查一下{p0}的首都。"),
        ("The capital of {p0} is {value}.", "{p0}的首都是{value}。"),
        ("look up capitals", "查询首都"),
        lambda v, r: _CAPITALS[v[0]],
    ),
    _a(
        "author",
        "find get lookup",
        "author book_author writer",
        ("Find the author of a book", "Returns who wrote a book", "Book author lookup"),
        (("title book book_title", "book"),),
        ("Who wrote {p0}?", "Find the author of the book {p0}.", "Who is the author of {p0}?"),
        ("《{p0}》的作者是谁？", "查一下{p0}这本书是谁写的。"),
        ("{p0} was written by {value}.", "《{p0}》的作者是{value}。"),
        ("find book authors", "查询作者"),
        lambda v, r: _BOOKS[v[0]],
    ),
    _a(
        "quote",
        "get fetch pick",
        "random_quote quote_of_the_day inspiration",
        ("Get a random quote", "Returns an inspiring quote", "Quote of the day"),
        (),
        ("Give me an inspiring quote.", "Share a quote of the day.", "I need some motivation, any quote?"),
        ("给我一句励志名言。", "来一句今日格言吧。"),
        ("Here is a quote: {value}", "送你一句：{value}"),
        ("share quotes", "提供名言"),
        lambda v, r: r.choice(_QUOTES),
    ),
    _a(
        "dice",
        "roll throw",
        "dice die six_sided_die",
        ("Roll a die", "Rolls a six-sided die", "Dice roller"),
        (),
        ("Roll a die for me.", "Throw a dice, please.", "Can you roll the die?"),
        ("帮我掷一次骰子。", "扔个骰子看看。"),
        ("You rolled a {value}.", "掷出了{value}点。"),
        ("roll dice", "掷骰子"),
        lambda v, r: str(r.randint(1, 6)),
    ),
    _a(
        "email",
        "get lookup find",
        "user_email email_address contact_email",
        ("Look up a user's email", "Returns the email address of a username", "Email directory"),
        (("username user handle", "username"),),
        ("What is the email address of user {p0}?", "Find the email for {p0}.", "Look up {p0}'s email."),
        ("用户{p0}的邮箱是什么？", "查一下{p0}的电子邮箱。"),
        ("The email of {p0} is {value}.", "{p0}的邮箱是{value}。"),
        ("look up emails", "查询邮箱"),
        lambda v, r: f"{v[0]}@example.org",
    ),
)

#: Phrasings that work for any tool: families named ``custom.generic.*``.
GENERIC_ASK: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "args": (
            "Use {tool} with {kv}.",
            "Please call {tool} for {vals}.",
            "I need the result of {tool}({vals_c}).",
            "Run the {tool} tool on {vals} and tell me the answer.",
            "Can you check {tool} with {kv}?",
        ),
        "noargs": (
            "Call {tool} for me.",
            "What does {tool} return right now?",
            "Please run {tool} and report the output.",
            "Use the {tool} tool.",
            "I need the output of {tool}().",
        ),
    },
    "zh": {
        "args": (
            "用{tool}查一下{vals}。",
            "请调用{tool}，参数是{kv}。",
            "帮我运行{tool}({vals_c})。",
            "用{tool}工具处理{vals}，告诉我结果。",
        ),
        "noargs": (
            "调用一下{tool}。",
            "帮我运行{tool}看看结果。",
            "{tool}现在返回什么？",
            "请使用{tool}工具。",
        ),
    },
}


#: More phrasings for any tool, added as further ``custom.generic.*`` families under ``wide_phrasings``.
WIDE_GENERIC_ASK: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "args": (
            "Please run {tool} with these arguments: {kv}.",
            "{tool}({vals_c}) - what does it give?",
            "Could you invoke {tool}? The inputs are {vals}.",
            "hey, try {tool} on {vals}",
            "I'd like you to call the {tool} function, passing {kv}.",
            "What is the output of {tool} when given {vals}?",
            "Go ahead and use {tool}: {kv}.",
            "Run this for me: {tool}({vals_c})",
        ),
        "noargs": (
            "Run {tool}, please.",
            "hey can you invoke {tool}",
            "What do I get from {tool}() at the moment?",
            "Trigger the {tool} function and tell me what it says.",
            "Give me whatever {tool} outputs.",
            "{tool}() please",
        ),
    },
    "zh": {
        "args": (
            "麻烦调用{tool}，传入{kv}。",
            "{tool}({vals_c})的结果是多少？",
            "能不能帮我用{tool}处理一下：{kv}？",
            "执行{tool}，用这些输入：{kv}",
            "把{vals}交给{tool}跑一下。",
            "我想看看{tool}对{vals}的输出。",
            "调用{tool}这个工具，输入{vals}，结果告诉我。",
            "劳驾执行一下{tool}({vals_c})，谢谢。",
        ),
        "noargs": (
            "执行一下{tool}吧。",
            "{tool}()的输出是什么？",
            "麻烦运行{tool}这个工具，把结果告诉我。",
            "用{tool}看一下。",
            "请帮我触发{tool}。",
            "跑一下{tool}，看看返回了啥。",
        ),
    },
}


@dataclass(frozen=True)
class CustomTool:
    """A concrete invented tool.

    Attributes:
        archetype: What kind of tool it is.
        name: Its API name.
        label: Its switch-line label.
        params: Its parameter names, in order.
    """

    archetype: Archetype
    name: str
    label: str
    params: tuple[str, ...]

    @property
    def api(self) -> str:
        """The API text of the switch line: ``name(p1, p2)``."""
        return f"{self.name}({', '.join(self.params)})"

    @property
    def declaration(self) -> PluginDeclaration:
        """Its line of the plugin switch block."""
        return PluginDeclaration(self.name, self.label, self.api)

    def sample_args(self, rng: random.Random, lang: str, wide: random.Random | None = None) -> list[Any]:
        """Argument values, one per parameter (a letter parameter takes a letter of the word).

        With ``wide`` (the ``wide_values`` stream), half of the cities and of the words whose
        letters the tool works on are made up instead; ``rng`` draws the same either way.
        """
        values: list[Any] = []
        for _names, kind in self.archetype.params:
            if kind == "letter":
                word = values[0]
                values.append(rng.choice(word) if rng.random() < 0.85 else rng.choice("aeiou"))
                continue
            value = _sample(kind, rng, lang)
            if wide is not None and wide.random() < WIDE_VALUE_RATE:
                if kind == "city":
                    value = _zh_city(wide) if lang == "zh" else _en_city(wide)
                elif kind == "word" and self.archetype.key in _WORD_COMPUTED:
                    value = _made_up_word(wide)
            values.append(value)
        if self.archetype.key in {"currency", "distance"} and len(set(values[1:])) < len(values[1:]):
            return self.sample_args(rng, lang, wide)
        return values


def invent_tool(archetype: Archetype, rng: random.Random) -> CustomTool:
    """Invent a concrete tool of an archetype: name, label and parameter names."""
    name = f"{rng.choice(archetype.verbs)}_{rng.choice(archetype.nouns)}"
    if rng.random() < 0.15:
        name = rng.choice(["my_", "tool_", "api_", ""]) + name
    params = tuple(rng.choice(names) for names, _kind in archetype.params)
    return CustomTool(archetype, name, rng.choice(archetype.labels), params)


_ONSETS = tuple("b c d f g h j k l m n p r s t v w z br cl dr fl gr pl qu sk sl st tr ch sh th".split())
_VOWELS = tuple("a e i o u ai ea ou y".split())
_CODAS = ("", "", "", "n", "r", "l", "x", "m", "s", "t", "k", "nd", "rk")


def _made_up_word(rng: random.Random) -> str:
    return "".join(
        rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
        for _ in range(rng.choice((1, 2, 2, 3)))
    )


def novel_identifier(rng: random.Random, avoid: Callable[[str], bool]) -> str:
    """A made-up snake_case identifier (``zorvak_plim``, ``get_brastel``) for which ``avoid`` is false.

    Made-up words are split by the tokenizer into pieces no trained name shares, so a model can
    only write them by copying them from the switch line or the request. Never a built-in
    plugin's name.
    """
    builtin = {p.name for p in builtin_plugins()}
    while True:
        words = [_made_up_word(rng) for _ in range(rng.choice((1, 2, 2)))]
        if rng.random() < 0.3:
            words[0] = rng.choice(("get", "run", "do", "compute", "find", "make", "check"))
        name = "_".join(words)
        if name.isidentifier() and name not in builtin and not avoid(name):
            return name


def rename_tool(tool: CustomTool, rng: random.Random, avoid: Callable[[str], bool]) -> CustomTool:
    """The same tool under a made-up name, and each parameter under a made-up name half the time."""
    params: list[str] = []
    for param in tool.params:
        new = novel_identifier(rng, avoid) if rng.random() < 0.5 else param
        params.append(new if new not in params else param)
    return replace(tool, name=novel_identifier(rng, avoid), params=tuple(params))
