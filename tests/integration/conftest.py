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

SELECTION = (
    "moss-tiny-plugin answers 'What is the value of magic_function(3)? Use the tool.' with"
    " `<|Commands|>: None` although its thoughts say the request matches the tool; choosing a declared"
    " custom tool is its weakest skill (see its model card)"
)

KNOWN_LIMITS = {
    "test_tool_calling": SELECTION,
    "test_tool_calling_async": SELECTION,
    "test_tool_calling_with_no_arguments": ARGUMENTS,
    "test_agent_loop": ARGUMENTS,
    "test_unicode_tool_call_integration": ARGUMENTS,
    # Asked how often a letter appears with a runnable bound as a tool, the current model (shipped in
    # stop 21) writes thoughts that garble the tool's name and no call; the one before it passed.
    "test_bind_runnables_as_tools": SELECTION,
    # No variant passes with the current model: it writes no call for the schema's tool (the model
    # before it passed the TypedDict and JSON-schema variants). With the pydantic schemas that
    # model called the schema's tool but filled `setup` with digits and left out `punchline`, and
    # asked for "the setup to a joke about cats, no punchline" it wrote no call at all.
    "test_structured_output[typeddict]": STRUCTURED,
    "test_structured_output[json_schema]": STRUCTURED,
    "test_structured_output_async[typeddict]": STRUCTURED,
    "test_structured_output_async[json_schema]": STRUCTURED,
    "test_structured_output[pydantic]": STRUCTURED,
    "test_structured_output_async[pydantic]": STRUCTURED,
    "test_structured_output_pydantic_2_v1": STRUCTURED,
    "test_structured_output_optional_param": STRUCTURED,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reason = KNOWN_LIMITS.get(item.name) or KNOWN_LIMITS.get(getattr(item, "originalname", item.name))
        if reason and item.cls is not None and item.cls.__name__ == "TestChatMossEmbedded":
            item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
