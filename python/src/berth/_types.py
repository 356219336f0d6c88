"""Shaped results and the wire types of the control plane (src/protocol/api.ts, openhands.ts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional, TypedDict


SandboxState = Literal["starting", "running", "paused", "stopped", "exited", "error", "vanished", "deleted"]
EventKind = Literal["action", "observation", "lifecycle"]
Plugin = Literal["jupyter", "agent_skills", "vscode"]
EditCommand = Literal["view", "create", "str_replace", "insert", "undo_edit"]


class Observation(TypedDict, total=False):
    """An OpenHands observation as the server sends it (``observation``, ``content``, ``extras``...)."""

    observation: str
    content: str
    extras: Dict[str, Any]
    message: str
    success: bool


class Limits(TypedDict, total=False):
    """Per-sandbox limits (CreateSandboxBody.limits)."""

    cpus: float
    memory_mb: int
    pids: int
    disk_mb: int


class SandboxUser(TypedDict, total=False):
    """Who the agent runs as (CreateSandboxBody.user)."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class SandboxInfo:
    """A sandbox record (GET /api/sandboxes/{id}); ``raw`` is the JSON as sent."""

    id: str
    state: str
    image: str
    workspace: Optional[str]
    url: str
    session_api_key: str
    container_id: Optional[str]
    labels: Dict[str, str]
    created_at: str
    last_activity_at: str
    expires_at: Optional[str]
    from_pool: bool
    error: Optional[str]
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> SandboxInfo:
        return cls(
            id=str(j["id"]),
            state=str(j["state"]),
            image=str(j.get("image", "")),
            workspace=j.get("workspace"),
            url=str(j.get("url", "")),
            session_api_key=str(j.get("session_api_key", "")),
            container_id=j.get("container_id"),
            labels=dict(j.get("labels") or {}),
            created_at=str(j.get("created_at", "")),
            last_activity_at=str(j.get("last_activity_at", "")),
            expires_at=j.get("expires_at"),
            from_pool=bool(j.get("from_pool", False)),
            error=j.get("error"),
            raw=dict(j),
        )


@dataclass(frozen=True)
class CommandResult:
    """What ``run`` answers. OpenHands' shell is one terminal, so stdout and stderr come interleaved
    in ``output``; ``stdout`` is the same text, ``stderr`` is always empty (kept for the shape)."""

    command: str
    exit_code: int
    output: str
    #: The command is still running: it printed nothing new for the soft timeout (no ``timeout`` given).
    #: Send ``run("", is_input=True)`` to see more, or ``run("C-c", is_input=True)`` to interrupt it.
    still_running: bool
    #: The shell's working directory after the command (metadata.working_dir).
    working_dir: Optional[str]
    observation: Observation = field(repr=False, compare=False)

    @property
    def stdout(self) -> str:
        return self.output

    @property
    def stderr(self) -> str:
        return ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class IPythonResult:
    """What ``run_ipython`` answers: the cell's text output and the data URLs of the images it showed."""

    output: str
    image_urls: List[str]
    observation: Observation = field(repr=False, compare=False)


@dataclass(frozen=True)
class EditResult:
    """What ``edit`` answers: the editor's text (a snippet of the result, or a view) and the diff."""

    path: str
    output: str
    diff: Optional[str]
    prev_exist: bool
    observation: Observation = field(repr=False, compare=False)


@dataclass(frozen=True)
class UploadResult:
    """What POST .../upload_file answers."""

    filename: str
    destination: str
    recursive: bool


@dataclass(frozen=True)
class Event:
    """One entry of a sandbox's event log. ``payload``: the OpenHands JSON of an action or
    observation, or ``{event, reason}`` of a lifecycle event."""

    seq: int
    sandbox_id: str
    kind: str
    at: str
    payload: Any
    duration_ms: Optional[float]

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> Event:
        return cls(
            seq=int(j["seq"]),
            sandbox_id=str(j["sandbox_id"]),
            kind=str(j["kind"]),
            at=str(j["at"]),
            payload=j.get("payload"),
            duration_ms=j.get("duration_ms"),
        )


@dataclass(frozen=True)
class EventPage:
    events: List[Event]
    next_after: int


#: The signals an exec's process can be sent (EXEC_SIGNALS in src/protocol/api.ts).
ExecSignal = Literal[
    "SIGINT", "SIGTERM", "SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGSTOP", "SIGCONT", "SIGWINCH"
]
#: Which output a chunk of an exec is: stdout and stderr apart, or ``pty`` (one stream) with a PTY.
ExecStream = Literal["stdout", "stderr", "pty"]


class PtySize(TypedDict):
    """The size of an exec's PTY (ExecStart.pty): 2-1000 columns, 2-500 rows."""

    cols: int
    rows: int


@dataclass(frozen=True)
class ExecResult:
    """What ``exec`` (or an ExecProcess's ``wait``) answers: how the process ended, and its whole
    output as UTF-8 text (a PTY's output is in ``stdout``; invalid UTF-8 is replaced)."""

    exit_code: int
    #: The signal that ended the process, if one did (``exit_code`` is then 128 + its number).
    signal: Optional[str]
    #: The process was ended because it ran past its ``timeout``.
    timed_out: bool
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0
