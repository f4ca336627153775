"""Known limits of the embedded model in LangChain's standard integration suite.

moss-tiny-plugin writes well-formed MOSS turns but does not yet copy arguments from the
question reliably, nor call a schema's tool for every structured-output request (see its model
card). These
tests are marked xfail with that reason; they are not skipped, so an improved model
shows up as XPASS.
"""

from __future__ import annotations

import pytest

ARGUMENTS = "moss-tiny-plugin does not yet fill tool arguments reliably (see its model card)"
STRUCTURED = "moss-tiny-plugin was not trained to write structured output for arbitrary schemas"

NAMES = (
    "moss-tiny-plugin does not call a tool by a name it was not trained on: asked for"
    " magic_function_no_args() its thoughts garble the name and it writes `<|Commands|>: None`"
    " (constrained Commands decoding keeps names valid but never forces a call)"
)

# test_tool_choice and test_agent_loop pass since Commands are decoded under the prompt's grammar
# (moss_agent.models.call_constraint): the call forced by tool_choice can only take a declared
# keyword (it wrote `magic_function(weight=4)`, an invalid call, before), and get_weather gets a
# call with a location. Neither test checks the argument's value, and the model's is wrong (it
# wrote `get_weather("-4")` for San Francisco), so ARGUMENTS still holds for the model.
KNOWN_LIMITS = {
    "test_tool_calling_with_no_arguments": NAMES,
    "test_unicode_tool_call_integration": ARGUMENTS,
    # Asked for a joke, the current model (three layers of 224) writes `None` and, forced, garbles
    # the values (`J2(电视塔高度")_shipping=…`) in every variant; the model before it (four of 192)
    # passed the TypedDict, JSON-schema and optional-parameter variants.
    "test_structured_output[pydantic]": STRUCTURED,
    "test_structured_output_async[pydantic]": STRUCTURED,
    "test_structured_output_pydantic_2_v1": STRUCTURED,
    "test_structured_output[typeddict]": STRUCTURED,
    "test_structured_output_async[typeddict]": STRUCTURED,
    "test_structured_output[json_schema]": STRUCTURED,
    "test_structured_output_async[json_schema]": STRUCTURED,
    "test_structured_output_optional_param": STRUCTURED,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reason = KNOWN_LIMITS.get(item.name) or KNOWN_LIMITS.get(getattr(item, "originalname", item.name))
        if reason and item.cls is not None and item.cls.__name__ == "TestChatMossEmbedded":
            item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
