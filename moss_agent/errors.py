"""The exception taxonomy of moss-agent.

One root, :class:`MossAgentError`, with two branches:

* :class:`ModelOutputError` — caused by what a model wrote (unreadable Commands, a call
  to a disabled tool). Recoverable: the agent feeds them back to the model as Results
  text and evals record them.
* :class:`UsageError` — caused by the caller (a bad option, a missing file, a missing
  optional package). Raised with a message that says what to do.

Exceptions do no logging or I/O in their constructors.
"""

from __future__ import annotations

__all__ = [
    "MissingDependencyError",
    "ModelOutputError",
    "MossAgentError",
    "ParseError",
    "ToolError",
    "UnknownToolError",
    "UsageError",
]


class MossAgentError(Exception):
    """Root of every error raised by moss-agent."""


class ModelOutputError(MossAgentError):
    """An error caused by model output; recoverable and reported back as Results."""


class ParseError(ModelOutputError):
    """Model text could not be read as MOSS protocol.

    Attributes:
        text: The offending text (possibly truncated by the raiser).
        section: The protocol section being parsed, e.g. ``"Commands"``.
    """

    def __init__(self, message: str, *, text: str = "", section: str = "") -> None:
        super().__init__(message)
        self.text = text
        self.section = section


class UnknownToolError(ModelOutputError):
    """The model called a tool that is not registered or not enabled."""

    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(message or f"tool {name!r} is not enabled")
        self.name = name


class ToolError(ModelOutputError):
    """A tool could not produce a result for the model's argument.

    Attributes:
        results_text: What the model sees in Results for this call.
    """

    def __init__(self, message: str, *, results_text: str = "No result.") -> None:
        super().__init__(message)
        self.results_text = results_text


class UsageError(MossAgentError, ValueError):
    """The caller asked for something that cannot be done; the message says what to do."""


class MissingDependencyError(UsageError, ImportError):
    """An optional package is needed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{what}. Install it with: pip install 'moss-agent[{extra}]'")
        self.package = package
        self.extra = extra
