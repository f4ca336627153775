"""LangChain's own standard unit suite, run against ChatMoss."""

from __future__ import annotations

from langchain_tests.unit_tests import ChatModelUnitTests

from moss_agent.models.chat import ChatMoss


class TestChatMossStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatMoss]:
        return ChatMoss

    @property
    def chat_model_params(self) -> dict:
        # The checkpoint loads lazily on first use; the unit suite never generates.
        return {"model": "fnlp/moss-moon-003-sft-plugin", "temperature": 0}

    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        return ({"MOSS_AGENT_MODEL": "path/to/moss"}, {}, {"model": "path/to/moss"})

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return False
