"""One exception root for tinyedge.

User errors (bad path, bad model, unknown board, missing tool) are
`TinyedgeError` subclasses: the CLI prints their message as one `error:` line
and exits with status 2.  Anything else that escapes is a bug: exit status 1.
Messages say what went wrong and what to do about it.
"""

from __future__ import annotations


class TinyedgeError(Exception):
    """Root of every error tinyedge raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class UsageError(TinyedgeError):
    """An argument or option that cannot work as given."""


class InputFileError(TinyedgeError):
    """A file the user named is missing, unreadable or of the wrong kind."""

    def __init__(self, message: str, *, path=None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.path = path


class BoardError(TinyedgeError):
    """An unknown board, or a board file that does not validate."""

    def __init__(self, message: str, *, file=None, key: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.file = file
        self.key = key


class ModelError(TinyedgeError):
    """A model that cannot be loaded, converted or run as asked."""

    def __init__(self, message: str, *, layer: str | None = None, op: str | None = None,
                 hint: str | None = None):
        super().__init__(message, hint=hint)
        self.layer = layer
        self.op = op


class UnsupportedOpError(ModelError):
    """An op (or op version) that a runtime cannot run."""


class ToolMissingError(TinyedgeError):
    """An external program or library that a step needs is not installed."""

    def __init__(self, tool: str, how: str):
        super().__init__(f"{tool} is not installed", hint=how)
        self.tool = tool
        self.how = how


class BuildError(TinyedgeError):
    """A firmware build failed, or its output does not fit the board."""


class OutputExistsError(TinyedgeError):
    """Refusing to overwrite a folder or file tinyedge did not make."""


class LinkError(TinyedgeError):
    """The serial link failed: no answer, a dropped frame, a wrong model."""


class ProtocolError(LinkError):
    """A frame that does not decode, or a reply that breaks the protocol."""


class DeviceTimeout(LinkError):
    """The board did not answer in time."""


class FlashError(TinyedgeError):
    """Writing firmware to a board failed."""


class ValidationError(TinyedgeError):
    """The board's results could not be validated."""
