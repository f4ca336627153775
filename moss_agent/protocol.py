"""The MOSS plugin protocol: every MOSS string, rendering and parsing.

Pure text, no torch. This module is the single source of truth for the tags, end
tokens and layouts that moss-moon-003-sft-plugin was trained on.
"""

from __future__ import annotations

# --- Tags and end tokens -------------------------------------------------------------

HUMAN_TAG = "<|Human|>"
INNER_THOUGHTS_TAG = "<|Inner Thoughts|>"
COMMANDS_TAG = "<|Commands|>"
RESULTS_TAG = "<|Results|>"
MOSS_TAG = "<|MOSS|>"

END_OF_HUMAN = "<eoh>"
END_OF_THOUGHTS = "<eot>"
END_OF_COMMANDS = "<eoc>"
END_OF_RESULTS = "<eor>"
END_OF_MESSAGE = "<eom>"
END_OF_TEXT = "<|endoftext|>"

#: Every special token of the MOSS tokenizer that the protocol uses, in a stable order.
SPECIAL_TOKENS: tuple[str, ...] = (
    END_OF_TEXT,
    END_OF_HUMAN,
    END_OF_THOUGHTS,
    END_OF_COMMANDS,
    END_OF_RESULTS,
    END_OF_MESSAGE,
    HUMAN_TAG,
    INNER_THOUGHTS_TAG,
    COMMANDS_TAG,
    RESULTS_TAG,
    MOSS_TAG,
)

#: Where the model stops in the first generation of a plugin turn.
STOPS_AFTER_COMMANDS: tuple[str, ...] = (END_OF_COMMANDS,)
#: Where the model stops in the second generation (the reply).
STOPS_AFTER_REPLY: tuple[str, ...] = (END_OF_MESSAGE,)
#: End tokens that end a section wrongly; generation stops there too.
MISPLACED_ENDS: tuple[str, ...] = (END_OF_THOUGHTS, END_OF_RESULTS, END_OF_HUMAN)
