"""Vocabulary of the turn builders, per language: units, items, cage puzzles, custom-tool texts."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ATTR",
    "BOOKS",
    "CAGE",
    "CAPITALS",
    "CITIES_EN",
    "CITIES_ZH",
    "CONVERT",
    "CUSTOM_TEXT",
    "FOODS",
    "ITEMS",
    "LANGS",
    "PHRASES",
    "PLACES",
    "QUOTES",
    "RATES",
    "STATUSES",
    "WORDS",
]

#: Attribute names of the search fact kinds, as said in questions and replies.
ATTR = {
    "zh": {
        "population": "常住人口",
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
#: (source unit, target unit, factor) of unit conversions.
CONVERT = {
    "zh": [
        ("公里", "米", "1000"),
        ("小时", "分钟", "60"),
        ("千克", "克", "1000"),
        ("英里", "公里", "1.609"),
        ("英寸", "厘米", "2.54"),
        ("天", "小时", "24"),
        ("米", "厘米", "100"),
    ],
    "en": [
        ("kilometers", "meters", "1000"),
        ("hours", "minutes", "60"),
        ("kilograms", "grams", "1000"),
        ("miles", "kilometers", "1.609"),
        ("inches", "centimeters", "2.54"),
        ("days", "hours", "24"),
        ("feet", "meters", "0.3048"),
    ],
}
#: Items sold in price problems (Chinese ones with their measure word).
ITEMS: dict[str, list[Any]] = {
    "zh": [("笔", "支"), ("苹果", "个"), ("笔记本", "本"), ("毛巾", "条"), ("杯子", "个"), ("衬衫", "件")],
    "en": ["pens", "notebooks", "apples", "mugs", "shirts", "tickets", "lamps"],
}
#: Chickens-and-rabbits pairs: (first, second, measure word, legs of first, legs of second, sort).
CAGE = {
    "zh": [
        ("鸡", "兔", "只", 2, 4, "a"),
        ("鸭", "羊", "只", 2, 4, "a"),
        ("鹅", "狗", "只", 2, 4, "a"),
        ("鹤", "龟", "只", 2, 4, "a"),
        ("蜘蛛", "蜻蜓", "只", 8, 6, "a"),
        ("自行车", "三轮车", "辆", 2, 3, "v"),
        ("三轮车", "汽车", "辆", 3, 4, "v"),
        ("摩托车", "汽车", "辆", 2, 4, "v"),
    ],
    "en": [
        ("chickens", "rabbits", "", 2, 4, "a"),
        ("ducks", "sheep", "", 2, 4, "a"),
        ("geese", "dogs", "", 2, 4, "a"),
        ("cranes", "turtles", "", 2, 4, "a"),
        ("spiders", "dragonflies", "", 8, 6, "a"),
        ("bicycles", "tricycles", "", 2, 3, "v"),
        ("tricycles", "cars", "", 3, 4, "v"),
        ("motorcycles", "cars", "", 2, 4, "v"),
    ],
}
#: Where the animals ("a") or vehicles ("v") of a cage puzzle are.
PLACES: dict[str, dict[str, list[Any]]] = {
    "zh": {"a": ["笼子里", "农场里", "院子里", "养殖场里"], "v": ["停车场里", "车棚里", "小区门口"]},
    "en": {
        "a": [("A farm", "on a farm"), ("A cage", "in a cage"), ("The yard", "in the yard")],
        "v": [("A parking lot", "in a parking lot"), ("The garage", "in the garage")],
    },
}
#: Thoughts and replies of custom-tool turns.
CUSTOM_TEXT = {
    "zh": {
        "think": "用户的需求可以用{name}工具完成，我需要调用它。",
        "think_api": "用户的需求可以用API: {api}完成，我需要调用它。",
        "think_none": "当前启用的工具都无法{purpose}，我不能调用工具。",
        "reply_none": "抱歉，目前可用的工具无法{purpose}，我暂时帮不上忙。",
    },
    "en": {
        "think": "The user's request matches the {name} tool, so I should call it.",
        "think_api": "The user's request matches API: {api}, so I should call it.",
        "think_none": "The user wants to {purpose}, but none of the enabled tools can do that.",
        "reply_none": "Sorry, none of the available tools can {purpose}, so I can't do that right now.",
    },
}

# --- Argument values and outputs of the custom-tool archetypes -------------------------

RATES = {
    "USD": 1.0,
    "EUR": 0.92,
    "GBP": 0.79,
    "JPY": 151.3,
    "CNY": 7.24,
    "CAD": 1.36,
    "AUD": 1.52,
    "CHF": 0.88,
}
PHRASES = {
    "good morning": {
        "French": "bonjour",
        "Spanish": "buenos días",
        "German": "guten Morgen",
        "Italian": "buongiorno",
    },
    "thank you": {"French": "merci", "Spanish": "gracias", "German": "danke", "Italian": "grazie"},
    "see you soon": {
        "French": "à bientôt",
        "Spanish": "hasta pronto",
        "German": "bis bald",
        "Italian": "a presto",
    },
    "good night": {
        "French": "bonne nuit",
        "Spanish": "buenas noches",
        "German": "gute Nacht",
        "Italian": "buona notte",
    },
    "how are you": {
        "French": "comment ça va",
        "Spanish": "cómo estás",
        "German": "wie geht's",
        "Italian": "come stai",
    },
}
WORDS = {
    "serendipity": "finding something good by chance",
    "ephemeral": "lasting a very short time",
    "ubiquitous": "present everywhere",
    "resilient": "able to recover quickly",
    "meticulous": "very careful about details",
    "candid": "honest and direct",
    "eloquent": "fluent and persuasive in speech",
    "frugal": "careful with money",
    "benevolent": "kind and generous",
    "tenacious": "holding firmly to a goal",
    "lucid": "clear and easy to understand",
    "nostalgia": "a longing for the past",
}
CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Kenya": "Nairobi",
    "Peru": "Lima",
    "Norway": "Oslo",
    "Egypt": "Cairo",
    "Canada": "Ottawa",
    "Chile": "Santiago",
    "Poland": "Warsaw",
    "Vietnam": "Hanoi",
    "Portugal": "Lisbon",
    "Ghana": "Accra",
}
FOODS = [
    "apple",
    "banana",
    "bagel",
    "avocado",
    "pizza slice",
    "boiled egg",
    "rice bowl",
    "yogurt",
    "donut",
    "salad",
]
CITIES_EN = [
    "Lyon",
    "Porto",
    "Osaka",
    "Denver",
    "Krakow",
    "Austin",
    "Bergen",
    "Cusco",
    "Leeds",
    "Adelaide",
    "Quito",
    "Seville",
    "Tampere",
    "Halifax",
    "Busan",
    "Graz",
]
CITIES_ZH = ["成都", "青岛", "苏州", "厦门", "昆明", "大连", "西安", "长沙", "宁波", "无锡", "佛山", "温州"]
LANGS = list(next(iter(PHRASES.values())))
STATUSES = ["shipped", "delivered", "processing", "out for delivery", "awaiting pickup"]
QUOTES = [
    "Simplicity is the soul of efficiency.",
    "Small steps every day add up.",
    "Curiosity is the engine of learning.",
    "Well begun is half done.",
]
BOOKS = {
    "The Silent Harbor": "Mira Halden",
    "Paper Lanterns": "Owen Achebe",
    "North of Nowhere": "Lena Ostrova",
    "The Glass Orchard": "Tomas Reyes",
    "Songs of the Delta": "Priya Natarajan",
    "Iron and Ivy": "Claire Dumont",
}
