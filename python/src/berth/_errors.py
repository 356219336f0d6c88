"""The SDK's one error hierarchy, as the TypeScript SDK's (src/sdk/errors.ts): a base class with the
HTTP status, the code, the message and the server's ``details``, one subclass per kind of failure
mapped from the API's ``{code, message, details}`` body, and the failures a call's observation
reports (a missing file, a command's hard timeout) as typed errors too.
"""

from __future__ import annotations

import builtins
import json
from typing import TYPE_CHECKING, Any, Dict, Optional, Type

if TYPE_CHECKING:
    from ._types import CommandResult, Observation

#: The code of a NetworkError: the server was not reached at all (no HTTP status).
NETWORK = "NETWORK"
#: The code of an ActionError: the action ran and its observation is an error (HTTP 200).
ACTION_FAILED = "ACTION_FAILED"


class BerthError(Exception):
    """Any failure the SDK reports. ``status`` is the HTTP status (0: no HTTP answer)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, message={self.message!r})"


#: The TypeScript SDK's name for the base class.
BerthApiError = BerthError


class AuthenticationError(BerthError):
    """401: no API key, or not one the control plane accepts."""


class NotFoundError(BerthError):
    """404: no such sandbox, file or route."""


class InvalidRequestError(BerthError):
    """400 and 415: the request is malformed (the message names the field)."""


class PayloadTooLargeError(BerthError):
    """413."""


class ConflictError(BerthError):
    """409: the sandbox is not in a state that allows this (paused, stopped, deleted...)."""


class SandboxUnavailableError(BerthError):
    """503: the sandbox's runtime server or Docker is not reachable, or an action was interrupted."""


#: The name the issue uses.
UnavailableError = SandboxUnavailableError


class TimeoutError(BerthError, builtins.TimeoutError):  # noqa: A001 - the TypeScript SDK's name
    """504, or no answer in the client's time; also an ``except TimeoutError`` (the builtin)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        BerthError.__init__(self, status, code, message, details)

    def __str__(self) -> str:
        return self.message


class ServerError(BerthError):
    """500 (or any other 5xx)."""


class PermissionDeniedError(BerthError):
    """403: refused by the sandbox's file permissions or by the operator's policy (the code names the rule)."""


class NoSpaceError(BerthError):
    """507: no space left in the sandbox."""


class NetworkError(BerthError, builtins.ConnectionError):
    """The control plane was not reached (refused, reset, DNS): status 0, code NETWORK, the URL in the message."""

    def __init__(self, message: str) -> None:
        BerthError.__init__(self, 0, NETWORK, message)

    def __str__(self) -> str:
        return self.message


class ActionError(BerthError):
    """The action ran but its observation is an error (``observation == "error"``, or an editor
    ``ERROR:``); ``observation`` is the raw observation."""

    def __init__(self, message: str, observation: Observation, code: str = ACTION_FAILED) -> None:
        super().__init__(200, code, message)
        self.observation = observation


class SandboxFileNotFoundError(ActionError, NotFoundError):
    """A file action named a path that does not exist in the sandbox (code NOT_FOUND)."""

    def __init__(self, message: str, observation: Observation) -> None:
        ActionError.__init__(self, message, observation, "NOT_FOUND")


class ShellBusyError(ActionError):
    """The command was NOT executed: the shell is still running an earlier one (left by a soft
    timeout, or a hard timeout with ``interrupt_on_timeout=False``). Send input with ``is_input=True``
    (``"C-c"`` interrupts it); ``result`` is the observation shaped."""

    def __init__(self, result: CommandResult) -> None:
        super().__init__(
            f"Command {result.command!r} was not executed: the previous command is still running",
            result.observation,
            "SHELL_BUSY",
        )
        self.result = result


class CommandError(BerthError):
    """``run(..., check=True)`` and the command exited non-zero; ``result`` is its CommandResult."""

    def __init__(self, result: CommandResult) -> None:
        super().__init__(200, "COMMAND_FAILED", f"Command {result.command!r} exited with {result.exit_code}")
        self.result = result


class CommandTimeoutError(TimeoutError):
    """A command reached its hard timeout (the shell interrupted it); ``result`` has its output so far."""

    def __init__(self, result: CommandResult, seconds: float) -> None:
        super().__init__(200, "TIMEOUT", f"Command {result.command!r} timed out after {seconds:g} seconds")
        self.result = result


ERROR_CLASS_BY_CODE: Dict[str, Type[BerthError]] = {
    "UNAUTHORIZED": AuthenticationError,
    "NOT_FOUND": NotFoundError,
    "INVALID_JSON": InvalidRequestError,
    "VALIDATION_FAILED": InvalidRequestError,
    "UNKNOWN_ACTION": InvalidRequestError,
    "PATH_NOT_ALLOWED": InvalidRequestError,
    "BAD_ARCHIVE": InvalidRequestError,
    "UNSUPPORTED_MEDIA_TYPE": InvalidRequestError,
    "PAYLOAD_TOO_LARGE": PayloadTooLargeError,
    "CONFLICT": ConflictError,
    "UNAVAILABLE": SandboxUnavailableError,
    "TIMEOUT": TimeoutError,
    "INTERRUPTED": SandboxUnavailableError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "NETWORK_NOT_ALLOWED": PermissionDeniedError,
    "RUNTIME_NOT_ALLOWED": PermissionDeniedError,
    "MOUNT_NOT_ALLOWED": PermissionDeniedError,
    "LIMIT_NOT_ALLOWED": PermissionDeniedError,
    "NO_SPACE": NoSpaceError,
    "INTERNAL": ServerError,
}


def error_from_response(status: int, body_text: str) -> BerthError:
    """The right error class from an HTTP status and a (possibly non-JSON) body."""
    code = "UNAUTHORIZED" if status == 401 else "NOT_FOUND" if status == 404 else "INTERNAL"
    message = body_text[:500] or f"HTTP {status}"
    details: Any = None
    try:
        body = json.loads(body_text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("code"), str) and body["code"]:
            code = body["code"]
        if isinstance(body.get("message"), str) and body["message"]:
            message = body["message"]
        elif isinstance(body.get("detail"), str) and body["detail"]:
            message = body["detail"]
        details = body.get("details")
    cls: Optional[Type[BerthError]] = ERROR_CLASS_BY_CODE.get(code)
    if cls is None:
        cls = ServerError if status >= 500 else BerthError
    return cls(status, code, message, details)
