"""Every MOSS string: tags, end tokens, fixed Results texts, stop lists."""

from __future__ import annotations

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
#: Stops of a plugin turn's first generation: the end of Commands, or a section ended wrongly.
FIRST_STOPS: tuple[str, ...] = (END_OF_COMMANDS, END_OF_MESSAGE, RESULTS_TAG, HUMAN_TAG)
#: Stops of the reply generation.
REPLY_STOPS: tuple[str, ...] = (END_OF_MESSAGE, HUMAN_TAG, END_OF_RESULTS, END_OF_THOUGHTS)

#: The sentence after which the plugin switch block starts.
CAPABILITIES_HEADER = "Capabilities and tools that MOSS can possess.\n"
INNER_THOUGHTS_LABEL = "Inner thoughts"
#: What a turn with no tool call writes in Commands and in Results.
NO_CALL = "None"
#: The Results text of a failed tool, as MOSS was trained.
NO_RESULT = "No result."
#: The Results text of a successful Text2Image call.
IMAGE_GENERATED = "Image generated successfully."

#: Section name → (tag, end token), in the order the sections appear in a turn.
SECTIONS: dict[str, tuple[str, str]] = {
    "Human": (HUMAN_TAG, END_OF_HUMAN),
    "Inner Thoughts": (INNER_THOUGHTS_TAG, END_OF_THOUGHTS),
    "Commands": (COMMANDS_TAG, END_OF_COMMANDS),
    "Results": (RESULTS_TAG, END_OF_RESULTS),
    "MOSS": (MOSS_TAG, END_OF_MESSAGE),
}
