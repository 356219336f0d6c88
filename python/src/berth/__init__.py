"""Berth's Python SDK: sync (``Berth``) and asyncio (``AsyncBerth``) clients of the control plane.

    from berth import Berth

    with Berth() as berth:                      # BERTH_URL, BERTH_API_KEY
        with berth.sandboxes.create() as sb:    # deleted on exit
            r = sb.run("python3 --version", timeout=30)
            print(r.exit_code, r.output)
            e = sb.exec(["printf", "%s", "argv, exactly"])   # a process of its own, like docker exec
            print(e.exit_code, e.stdout, e.stderr)
"""

from ._async import AsyncBerth, AsyncEvents, AsyncExecProcess, AsyncFiles, AsyncSandbox, AsyncSandboxes
from ._errors import (
    ACTION_FAILED,
    ERROR_CLASS_BY_CODE,
    NETWORK,
    ActionError,
    AuthenticationError,
    BerthApiError,
    BerthError,
    CommandError,
    CommandTimeoutError,
    ConflictError,
    InvalidRequestError,
    NetworkError,
    NoSpaceError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    SandboxFileNotFoundError,
    SandboxUnavailableError,
    ServerError,
    ShellBusyError,
    TimeoutError,
    UnavailableError,
    error_from_response,
)
from ._sync import Berth, Events, ExecProcess, Files, Sandbox, Sandboxes
from ._types import (
    CommandResult,
    EditResult,
    Event,
    EventPage,
    ExecResult,
    ExecSignal,
    ExecStream,
    IPythonResult,
    Limits,
    Observation,
    PtySize,
    SandboxInfo,
    SandboxUser,
    UploadResult,
)

__version__ = "0.1.0"

# Shown as berth.NotFoundError, berth.CommandResult... rather than the private module's name.
for _name in ("ActionError", "AuthenticationError", "BerthError", "CommandError", "CommandTimeoutError",
              "ConflictError", "InvalidRequestError", "NetworkError", "NoSpaceError", "NotFoundError",
              "PayloadTooLargeError", "PermissionDeniedError", "SandboxFileNotFoundError",
              "SandboxUnavailableError", "ServerError", "ShellBusyError", "TimeoutError"):
    globals()[_name].__module__ = __name__
del _name

__all__ = [
    "ACTION_FAILED",
    "ERROR_CLASS_BY_CODE",
    "NETWORK",
    "ActionError",
    "AsyncBerth",
    "AsyncEvents",
    "AsyncExecProcess",
    "AsyncFiles",
    "AsyncSandbox",
    "AsyncSandboxes",
    "AuthenticationError",
    "Berth",
    "BerthApiError",
    "BerthError",
    "CommandError",
    "CommandResult",
    "CommandTimeoutError",
    "ConflictError",
    "EditResult",
    "Event",
    "EventPage",
    "Events",
    "ExecProcess",
    "ExecResult",
    "ExecSignal",
    "ExecStream",
    "Files",
    "IPythonResult",
    "InvalidRequestError",
    "Limits",
    "NetworkError",
    "NoSpaceError",
    "NotFoundError",
    "Observation",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PtySize",
    "Sandbox",
    "SandboxFileNotFoundError",
    "SandboxInfo",
    "SandboxUnavailableError",
    "SandboxUser",
    "Sandboxes",
    "ServerError",
    "ShellBusyError",
    "TimeoutError",
    "UnavailableError",
    "UploadResult",
    "__version__",
    "error_from_response",
]
