"""LangChain's standard integration suite against ChatMoss on the embedded model.

The embedded model (moss-tiny-plugin) is trained on synthetic plugin dialogues only; the
training data contains none of these tests' prompts, tool names or arguments. Tests it
cannot pass are marked xfail with the reason.
"""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from moss_agent.models.chat import ChatMoss
from moss_agent.models.embedded import embedded_model_path

EMBEDDED = embedded_model_path()

pytestmark = pytest.mark.skipif(EMBEDDED is None, reason="the embedded moss-tiny-plugin is not installed")


class TestChatMossEmbedded(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatMoss]:
        return ChatMoss

    @property
    def chat_model_params(self) -> dict:
        return {"model": str(EMBEDDED), "do_sample": False, "max_new_tokens": 64, "temperature": 0}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supported_usage_metadata_details(self) -> dict:
        return {"invoke": [], "stream": []}
