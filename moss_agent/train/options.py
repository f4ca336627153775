"""The data options of the generator, in a module of its own so the CLI can read their defaults cheaply."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OPTIONAL_KEYS", "DataOptions"]


@dataclass(frozen=True)
class DataOptions:
    """How the generator writes its conversations; the defaults are the recipe's.

    Unless noted, an option changes only what MOSS writes (thoughts, replies), so the user turns,
    and with them the test split, are the same either way; the training-only options draw from
    RNG streams of their own, so the conversations drawn stay the same too.

    Attributes:
        switch_thoughts: Inner Thoughts of built-in tool requests start by quoting the tool's
            switch line (``Calculator: enabled; …``).
        restate_solutions: Replies to 鸡兔同笼-style problems restate the solver's lines
            (``x = 23，y = 12``) before naming the animals.
        more_phrasings: Add the extra phrasing families of ``_templates_*_extra`` (about 8 more
            per request kind). The base families keep their held-out status; 18 % of the extra
            families of every group are held out too, so the test split grows (this option does
            change user turns).
        wide_phrasings: Add the wide phrasing families of ``_templates_*_wide`` (about 12 more
            per request kind of the built-in tools, 6 per chat kind; terse, long, informal and
            literal-expression wordings), numbered after the extra ones, and 14 more ways per
            language to ask for any declared custom tool (``_custom.WIDE_GENERIC_ASK``). 18 % of
            them are held out too, so the test split grows (this option does change user turns).
        wrap_requests: About half of the training split's tool requests get a greeting, filler
            or thanks around them (:mod:`moss_agent.train._wrappers`).
        mix_clauses: Many of the training split's requests are phrased by splicing the opening
            clauses of their family with the closing clauses of another training family of the
            same kind (:mod:`moss_agent.train._clauses`).
        quote_counts: The Inner Thoughts of 鸡兔同笼-style problems first quote the two counts
            from the question (``已知35个头，94只脚``).
        pair_solutions: Replies to 鸡兔同笼-style problems name each animal right after its
            solver line (``x = 23，即鸡有23只；y = 12，即兔有12只``); takes the place of
            ``restate_solutions``.
        shared_phrasings: Some of the training split's addition and multiplication requests
            are phrased as requests for the custom ``sum``/``product`` tools are ("What is 12
            multiplied by 34?"), so those words are not tied to the custom tools: they call
            ``Calculate`` when no such tool is declared.
        quote_api: The Inner Thoughts of a call of a declared custom tool start by quoting its
            whole switch line (``Word counter: enabled. API: count_words(text)``).
        novel_names: Half of the training split's declared custom tools are renamed to made-up
            words (``zorvak_plim``), and half of their parameters too, so tool names are copied
            from the switch line rather than recalled.
        api_thoughts: The Inner Thoughts of a call of a declared custom tool name it by its API
            text after a fixed ``API: `` (``The user's request matches API: count_words(text), so
            I should call it.``): the words before the name in its switch line, so the name is
            copied from there rather than picked out of the whole meta instruction.
        switch_languages: About a third of the later turns of the training split's multi-turn
            conversations (built-in plugins) are asked in the other language (a Chinese 鸡兔同笼
            question, then "What is 1234 multiplied by 5678?", as the README's conversation
            does). Without it 7 of 2714 such conversations change language. It draws from an
            RNG stream of its own, but the turns after a switched one are drawn in the other
            language, so the training conversations after the first switch differ.
        context_turns: About 30 % of the training split's one-turn built-in conversations get an
            earlier turn put before them: a Calculate, Solve, Search, Text2Image or chat turn, half
            of them in the other language, 75 % with their Results compressed to ``None`` as the
            agent sends earlier turns. Without it 89 % of the conversations have one turn, and only
            about 240 of 34000 ask for a calculation right after a Solve call, so a call after a
            鸡兔同笼 turn could copy that call's operators (``Calculate("1234+5678")`` for "What is
            1234 multiplied by 5678?"). Its own RNG stream draws the earlier turns, but they take
            values from the streams of other training-only options, so those options' draws for
            the later turns differ.
        phrase_queries: English Search queries follow the words of the Inner Thoughts, attribute
            first (``population of Cormouth`` for "…the population of Cormouth."), instead of
            ``Cormouth population``. A byte-level BPE token of a name depends on the character
            before it (`` Cormouth`` after a space, ``Cormouth`` after ``("``), so in the old
            order the first name token of the query had no token of the same identity to copy;
            after ``of`` it is the thoughts' own token. Where the phrased query does not rank the
            asked fact first, the turn keeps the old query.
        custom_decoys: About 15 % of the training split's built-in conversations (no custom tool
            asked for: chat, a disabled tool's request, Calculate, Solve, Search, Text2Image) also
            declare one or two custom tools that cannot serve the request, and none is called.
            Without it custom tools are declared only in conversations built around them, where 75 %
            of the turns call one, so a declared tool is called for "Bye!" or for a disabled
            built-in's request. Archetypes that could serve a built-in request (arithmetic,
            currency, population, dictionary) are never decoys. It draws from an RNG stream of its
            own and changes only the meta instructions.
        wide_values: Half of the training split's city arguments of custom tools (population,
            distance, time zone) are made-up city names of the kind the Search corpus has
            (``Cormouth``, ``临江市``), and half of the words whose letters a tool counts or
            reverses are made-up words, instead of the generator's short lists (16 English and
            12 Chinese cities, 12 words). With the lists alone a model can recall a value
            (``find_timezone("Kenya")`` for Graz) instead of copying it from the request. It
            draws from an RNG stream of its own.
    """

    switch_thoughts: bool = True
    restate_solutions: bool = False
    more_phrasings: bool = True
    wide_phrasings: bool = True
    wrap_requests: bool = True
    mix_clauses: bool = True
    quote_counts: bool = True
    pair_solutions: bool = False
    shared_phrasings: bool = True
    quote_api: bool = False
    novel_names: bool = False
    api_thoughts: bool = False
    switch_languages: bool = False
    context_turns: bool = True
    phrase_queries: bool = False
    custom_decoys: bool = False
    wide_values: bool = False


#: Options that ``dataset_info.json`` names only when they are on, in this order.
OPTIONAL_KEYS = (
    "more_phrasings",
    "wide_phrasings",
    "wrap_requests",
    "mix_clauses",
    "quote_counts",
    "pair_solutions",
    "shared_phrasings",
    "quote_api",
    "novel_names",
    "api_thoughts",
    "switch_languages",
    "context_turns",
    "phrase_queries",
    "custom_decoys",
    "wide_values",
)
