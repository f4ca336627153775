"""The synthetic world of the generator: entity names, search facts, image subjects, concepts.

Everything is built from small vocabularies with a seeded :class:`random.Random`, so the same
seed gives the same world. Entity names are combinations (not a fixed list) so that a model
trained on the data learns to copy names into search queries rather than memorise them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["CONCEPTS", "Fact", "World", "build_world", "image_request"]

_ZH_CITY_A = "青临安清东南北西永长云宁江河海平泉松桂兴金玉白龙凤华新丰鹤"
_ZH_CITY_B = "川州阳山宁源城平江原溪沙林水安德港湖峰岭滨"
_ZH_REGIONS = ["东部沿海", "西南山区", "华北平原", "长江中游", "东北地区", "西北内陆", "华南沿海"]
_ZH_CO_A = "星河蓝海云杉天启远航晨光银川锐思博越青禾联创万象极光鸿图"
_ZH_CO_SUFFIX = ["科技", "生物", "电子", "食品", "新能源", "物流", "软件", "医药", "智能"]
_ZH_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高梁宋郑谢韩唐冯"
_ZH_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华建国志海宁晨"
_ZH_LANDMARK = ["电视塔", "大桥", "国际大厦", "观光塔", "金融中心", "钟楼"]
_ZH_EVENTS = ["国际马拉松", "国际电影节", "科技博览会", "动漫节", "音乐节", "读书节", "航空展"]

_EN_CITY_A = [
    "Mar",
    "Bel",
    "Cor",
    "Dun",
    "Ash",
    "Brim",
    "Cal",
    "Ever",
    "Fen",
    "Glen",
    "Hal",
    "Kes",
    "Lind",
    "Mor",
    "Nor",
    "Oak",
    "Pen",
    "Quin",
    "Ros",
    "Sel",
    "Tarn",
    "Val",
    "Wex",
    "Yar",
]
_EN_CITY_B = [
    "low",
    "ford",
    "ton",
    "bury",
    "mouth",
    "wick",
    "dale",
    "field",
    "haven",
    "port",
    "stead",
    "more",
    "brook",
    "gate",
    "ridge",
    "ley",
]
_EN_REGIONS = [
    "the northern coast",
    "the central valley",
    "the eastern highlands",
    "the southern plains",
    "the western lakes",
    "the river delta",
]
_EN_CO_A = [
    "Bright",
    "Blue",
    "Silver",
    "Nova",
    "Quantum",
    "Red",
    "Green",
    "Iron",
    "Swift",
    "Clear",
    "Deep",
    "True",
    "North",
    "Solar",
    "Pixel",
    "Cedar",
]
_EN_CO_B = [
    "wave",
    "stone",
    "leaf",
    "peak",
    "line",
    "bridge",
    "field",
    "spark",
    "path",
    "forge",
    "mind",
    "cloud",
]
_EN_CO_SUFFIX = [
    "Labs",
    "Systems",
    "Foods",
    "Robotics",
    "Energy",
    "Logistics",
    "Software",
    "Biotech",
    "Motors",
]
_EN_FIRST = [
    "Alice",
    "Brian",
    "Carla",
    "Daniel",
    "Elena",
    "Felix",
    "Grace",
    "Henry",
    "Irene",
    "Jonas",
    "Karen",
    "Liam",
    "Maya",
    "Nathan",
    "Olivia",
    "Pablo",
    "Rosa",
    "Samuel",
    "Tara",
    "Victor",
    "Wendy",
    "Yusuf",
    "Zoe",
    "Hugo",
]
_EN_LAST = [
    "Adler",
    "Brooks",
    "Castillo",
    "Dawson",
    "Ellis",
    "Fischer",
    "Gupta",
    "Hale",
    "Ibarra",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Novak",
    "Okafor",
    "Park",
    "Quinn",
    "Reyes",
    "Sato",
    "Turner",
    "Varga",
    "Walsh",
    "Young",
    "Zimmer",
]
_EN_LANDMARK = ["Tower", "Bridge", "Observation Tower", "Clock Tower", "Trade Center", "Lighthouse"]
_EN_EVENTS = [
    "Marathon",
    "Film Festival",
    "Tech Expo",
    "Jazz Festival",
    "Book Fair",
    "Air Show",
    "Food Festival",
]
_EN_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]

#: Fact kinds of the search world; each has a query keyword per language.
FACT_KINDS = ("population", "founder", "founded", "height", "event_date")
QUERY_KEYWORDS = {
    "zh": {
        "population": "人口",
        "founder": "创始人",
        "founded": "成立时间",
        "height": "高度",
        "event_date": "举办时间",
    },
    "en": {
        "population": "population",
        "founder": "founder",
        "founded": "founding year",
        "height": "height",
        "event_date": "date",
    },
}


@dataclass(frozen=True)
class Fact:
    """One searchable fact of the synthetic world.

    Attributes:
        doc_id: Corpus id of the document stating it.
        lang: ``"zh"`` or ``"en"``.
        kind: One of :data:`FACT_KINDS`.
        entity: The entity's name, copied into questions and queries.
        answer: The answer as written in the document (copied into the reply).
        text: The document text (the search snippet).
        slots: Extra values for reply templates.
    """

    doc_id: str
    lang: str
    kind: str
    entity: str
    answer: str
    text: str
    slots: dict[str, str] = field(default_factory=dict)

    @property
    def query(self) -> str:
        """The keyword query: entity, a space, the attribute keyword."""
        return f"{self.entity} {QUERY_KEYWORDS[self.lang][self.kind]}"


@dataclass
class World:
    """The generated world: facts by (language, kind) and the corpus documents."""

    facts: dict[tuple[str, str], list[Fact]]
    corpus: list[dict[str, str]]


def _unique(rng: random.Random, make: object, count: int) -> list[str]:
    seen: dict[str, None] = {}
    for _ in range(count * 20):
        if len(seen) >= count:
            break
        seen[make()] = None  # type: ignore[operator]
    return list(seen)


def _zh_city(rng: random.Random) -> str:
    name = rng.choice(_ZH_CITY_A) + rng.choice(_ZH_CITY_B)
    if rng.random() < 0.25:
        name += rng.choice(_ZH_CITY_B)
    return name + "市"


def _en_city(rng: random.Random) -> str:
    name = rng.choice(_EN_CITY_A) + rng.choice(_EN_CITY_B)
    return name + (rng.choice([" Bay", " Springs", " Falls", ""]) if rng.random() < 0.3 else "")


def _zh_person(rng: random.Random) -> str:
    return rng.choice(_ZH_SURNAMES) + "".join(rng.choice(_ZH_GIVEN) for _ in range(rng.choice((1, 2))))


def _en_person(rng: random.Random) -> str:
    return f"{rng.choice(_EN_FIRST)} {rng.choice(_EN_LAST)}"


def _en_date(rng: random.Random) -> str:
    return f"{rng.choice(_EN_MONTHS)} {rng.randint(1, 28)}, {rng.randint(2023, 2026)}"


def _zh_facts(rng: random.Random, per_kind: int) -> list[Fact]:
    facts: list[Fact] = []
    for city in _unique(rng, lambda: _zh_city(rng), per_kind):
        pop, year = rng.randint(30, 2500), rng.randint(2019, 2024)
        text = f"{city}是{rng.choice(_ZH_REGIONS)}的一座城市，截至{year}年末，常住人口约{pop}万人。"
        facts.append(Fact("", "zh", "population", city, f"{pop}万", text))
    companies = _unique(rng, lambda: "".join(rng.sample(_ZH_CO_A, 2)) + rng.choice(_ZH_CO_SUFFIX), per_kind)
    for company in companies:
        person, year = _zh_person(rng), rng.randint(1985, 2022)
        facts.append(
            Fact(
                "",
                "zh",
                "founder",
                company,
                person,
                f"{company}的创始人是{person}，公司总部位于{_zh_city(rng)}。",
            )
        )
        facts.append(
            Fact(
                "",
                "zh",
                "founded",
                company,
                f"{year}年",
                f"{company}成立于{year}年，是一家{rng.choice(_ZH_REGIONS)}的企业。",
            )
        )
    landmarks = _unique(rng, lambda: _zh_city(rng)[:-1] + rng.choice(_ZH_LANDMARK), per_kind)
    for landmark in landmarks:
        height, year = rng.randint(40, 640), rng.randint(1960, 2023)
        text = f"{landmark}于{year}年建成，高度为{height}米，是当地的标志性建筑。"
        facts.append(Fact("", "zh", "height", landmark, f"{height}米", text))
    events = _unique(
        rng, lambda: f"第{rng.randint(2, 30)}届{_zh_city(rng)[:-1]}{rng.choice(_ZH_EVENTS)}", per_kind
    )
    for event in events:
        date = f"{rng.randint(2023, 2026)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日"
        facts.append(
            Fact("", "zh", "event_date", event, date, f"{event}的举办时间为{date}，地点在市会展中心。")
        )
    return facts


def _en_facts(rng: random.Random, per_kind: int) -> list[Fact]:
    facts: list[Fact] = []
    for city in _unique(rng, lambda: _en_city(rng), per_kind):
        pop, year = rng.randint(20_000, 3_000_000), rng.randint(2019, 2024)
        answer = f"{pop:,}"
        text = f"{city} is a city on {rng.choice(_EN_REGIONS)}. As of {year}, its population was {answer}."
        facts.append(Fact("", "en", "population", city, answer, text))
    make_company = lambda: f"{rng.choice(_EN_CO_A)}{rng.choice(_EN_CO_B)} {rng.choice(_EN_CO_SUFFIX)}"  # noqa: E731
    for company in _unique(rng, make_company, per_kind):
        person, year = _en_person(rng), rng.randint(1985, 2022)
        facts.append(
            Fact(
                "",
                "en",
                "founder",
                company,
                person,
                f"The founder of {company} is {person}; the company is based in {_en_city(rng)}.",
            )
        )
        facts.append(
            Fact(
                "",
                "en",
                "founded",
                company,
                str(year),
                f"The founding year of {company} is {year}; it employs about {rng.randint(20, 9000)} people.",
            )
        )
    for landmark in _unique(rng, lambda: f"{_en_city(rng)} {rng.choice(_EN_LANDMARK)}", per_kind):
        height, year = rng.randint(40, 640), rng.randint(1960, 2023)
        text = f"The {landmark} was completed in {year} and has a height of {height} meters."
        facts.append(Fact("", "en", "height", landmark, f"{height} meters", text))
    make_event = lambda: f"{_en_city(rng)} {rng.choice(_EN_EVENTS)}"  # noqa: E731
    for event in _unique(rng, make_event, per_kind):
        date = _en_date(rng)
        facts.append(Fact("", "en", "event_date", event, date, f"The {event} will take place on {date}."))
    return facts


def build_world(seed: int, per_kind: int = 300) -> World:
    """Build the facts and the search corpus for a seed.

    Args:
        seed: The generator seed.
        per_kind: Entities per fact kind and language.

    Returns:
        The world; ``corpus`` holds ``{"id", "title", "text"}`` records in a stable order.
    """
    rng = random.Random(f"world:{seed}")
    facts: dict[tuple[str, str], list[Fact]] = {}
    corpus: list[dict[str, str]] = []
    for fact in _zh_facts(rng, per_kind) + _en_facts(rng, per_kind):
        doc_id = f"{fact.lang}-{fact.kind}-{len(corpus):05d}"
        fact = Fact(doc_id, fact.lang, fact.kind, fact.entity, fact.answer, fact.text, fact.slots)
        corpus.append({"id": doc_id, "title": fact.entity, "text": fact.text})
        facts.setdefault((fact.lang, fact.kind), []).append(fact)
    return World(facts, corpus)


# --- Text-to-image subjects ------------------------------------------------------------

_ZH_IMG_ADJ = [
    "红色的",
    "小小的",
    "毛茸茸的",
    "金色的",
    "古老的",
    "可爱的",
    "安静的",
    "巨大的",
    "白色的",
    "蓝色的",
]
_ZH_IMG_NOUN = [
    "狐狸",
    "猫",
    "城堡",
    "小船",
    "灯塔",
    "熊猫",
    "鲸鱼",
    "机器人",
    "花园",
    "火车",
    "山峰",
    "兔子",
    "宇航员",
]
_ZH_IMG_PLACE = ["在雪地里", "在海边", "在森林中", "在月光下", "在城市街头", "在草原上", "在星空下", "在雨中"]
_ZH_STYLES = ["水彩风格", "油画风格", "素描风格", "像素风", "水墨画风格", "赛博朋克风格", "卡通风格"]
_EN_IMG_ADJ = [
    "a red",
    "a tiny",
    "a fluffy",
    "a golden",
    "an ancient",
    "a cute",
    "a quiet",
    "a giant",
    "a white",
    "a blue",
]
_EN_IMG_NOUN = [
    "fox",
    "cat",
    "castle",
    "boat",
    "lighthouse",
    "panda",
    "whale",
    "robot",
    "garden",
    "train",
    "mountain",
    "rabbit",
    "astronaut",
]
_EN_IMG_PLACE = [
    "in the snow",
    "by the sea",
    "in a forest",
    "under the moon",
    "on a city street",
    "on a grassland",
    "under the stars",
    "in the rain",
]
_EN_STYLES = ["watercolor", "oil painting", "pencil sketch", "pixel art", "ink wash", "cyberpunk", "cartoon"]


def image_request(rng: random.Random, lang: str) -> tuple[str, str | None]:
    """A subject phrase and an optional style for a drawing request.

    Returns:
        ``(subject, style)``; the Text2Image description is ``subject`` or ``"subject, style"``.
    """
    if lang == "zh":
        subject = rng.choice(_ZH_IMG_PLACE) + "的" + rng.choice(_ZH_IMG_ADJ) + rng.choice(_ZH_IMG_NOUN)
        subject = subject[1:] if rng.random() < 0.5 else subject  # "在雪地里的…" or "雪地里的…"
        style = rng.choice(_ZH_STYLES) if rng.random() < 0.5 else None
    else:
        subject = f"{rng.choice(_EN_IMG_ADJ)} {rng.choice(_EN_IMG_NOUN)} {rng.choice(_EN_IMG_PLACE)}"
        style = rng.choice(_EN_STYLES) if rng.random() < 0.5 else None
    return subject, style


# --- Concepts answered without tools ----------------------------------------------------

#: (concept, one-sentence explanation) pairs per language, for definition questions.
CONCEPTS: dict[str, list[tuple[str, str]]] = {
    "zh": [
        ("光合作用", "光合作用是植物利用光能把二氧化碳和水转化为有机物并释放氧气的过程。"),
        ("人工智能", "人工智能是让计算机模拟人类智能、完成学习、推理和感知等任务的技术。"),
        ("区块链", "区块链是一种按时间顺序把数据块连接起来、难以篡改的分布式账本技术。"),
        ("通货膨胀", "通货膨胀是指一段时间内物价总体水平持续上涨、货币购买力下降的现象。"),
        ("万有引力", "万有引力是任何两个有质量的物体之间相互吸引的力。"),
        ("机器学习", "机器学习是让计算机从数据中自动学习规律并做出预测的方法。"),
        ("碳中和", "碳中和是指通过减排和吸收，使二氧化碳的排放量与吸收量相互抵消。"),
        ("量子计算", "量子计算是利用量子比特的叠加和纠缠来进行运算的计算方式。"),
        ("生态系统", "生态系统是生物群落与其所处的环境相互作用形成的统一整体。"),
        ("云计算", "云计算是通过网络按需提供计算、存储等资源的服务模式。"),
        ("素数", "素数是大于1、只能被1和它本身整除的自然数。"),
        ("长城", "长城是中国古代修建的军事防御工程，绵延上万里。"),
        ("唐诗", "唐诗是唐代的诗歌，代表了中国古典诗歌的高峰。"),
        ("DNA", "DNA是携带生物遗传信息的分子，呈双螺旋结构。"),
        ("蒸发", "蒸发是液体表面的分子吸收热量后变成气体的过程。"),
        ("可再生能源", "可再生能源是指太阳能、风能、水能等可以持续再生的能源。"),
    ],
    "en": [
        (
            "photosynthesis",
            "Photosynthesis is the process by which plants use light to turn carbon dioxide and "
            "water into sugar and oxygen.",
        ),
        (
            "artificial intelligence",
            "Artificial intelligence is technology that lets computers learn, reason "
            "and perceive in ways that resemble human intelligence.",
        ),
        (
            "a blockchain",
            "A blockchain is a distributed ledger that links records in blocks so that they are "
            "hard to alter.",
        ),
        (
            "inflation",
            "Inflation is a general rise in prices over time, which lowers the purchasing power of money.",
        ),
        ("gravity", "Gravity is the force by which objects with mass attract each other."),
        (
            "machine learning",
            "Machine learning is a way for computers to learn patterns from data and make predictions.",
        ),
        (
            "a prime number",
            "A prime number is a whole number greater than 1 whose only divisors are 1 and itself.",
        ),
        (
            "cloud computing",
            "Cloud computing is the delivery of computing and storage resources over a network on demand.",
        ),
        (
            "an ecosystem",
            "An ecosystem is a community of living things together with the environment they live in.",
        ),
        ("evaporation", "Evaporation is the process in which a liquid turns into a gas at its surface."),
        ("DNA", "DNA is the molecule that carries genetic information, shaped like a double helix."),
        (
            "renewable energy",
            "Renewable energy comes from sources such as sunlight, wind and water that are "
            "naturally replenished.",
        ),
        ("a haiku", "A haiku is a short Japanese poem of three lines with five, seven and five syllables."),
        (
            "democracy",
            "Democracy is a system of government in which citizens choose their leaders by voting.",
        ),
        ("an algorithm", "An algorithm is a finite sequence of steps for solving a problem."),
        (
            "a black hole",
            "A black hole is a region of space where gravity is so strong that not even light can escape.",
        ),
    ],
}
