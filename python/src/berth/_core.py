"""What the sync and async clients share: each call as a request description plus a parser of the
answer (no I/O here), the shaping of observations into results, zips, and the transport's errors."""

from __future__ import annotations

import base64
import codecs
import io
import json
import math
import os
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Generic, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union
from urllib.parse import quote

import httpx

from ._errors import (
    ERROR_CLASS_BY_CODE,
    ActionError,
    BerthError,
    CommandError,
    CommandTimeoutError,
    InvalidRequestError,
    NetworkError,
    SandboxFileNotFoundError,
    ShellBusyError,
    TimeoutError,
    error_from_response,
)
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

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:3000"
#: Per-request timeout (seconds) for calls that are not actions; as the TypeScript SDK's 60 s.
DEFAULT_TIMEOUT = 60.0
#: An action's hard timeout when none is given: the control plane's default (sandbox.timeout).
DEFAULT_ACTION_TIMEOUT = 120.0


def resolve_url(url: Optional[str]) -> str:
    return (url or os.environ.get("BERTH_URL") or DEFAULT_URL).rstrip("/")


def resolve_key(api_key: Optional[str]) -> Optional[str]:
    return api_key if api_key is not None else (os.environ.get("BERTH_API_KEY") or None)


def auth_headers(api_key: Optional[str]) -> Dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


@dataclass
class Request:
    method: str
    path: str
    json: Any = None
    params: Optional[List[Tuple[str, str]]] = None
    files: Optional[Dict[str, Tuple[str, bytes]]] = None
    #: Seconds; None: the client's default; 0: none (transfers, as large as they come).
    timeout: Optional[float] = None


@dataclass
class Op(Generic[T]):
    """One call: the request, and what turns its (2xx) answer into the result."""

    request: Request
    parse: Callable[[httpx.Response], T]
    #: Turns the result into further calls (the command interrupt after a hard timeout): see Runner.
    then: Optional[Callable[[T], Optional["Op[Any]"]]] = field(default=None)


def sid(sandbox_id: str) -> str:
    return "/api/sandboxes/" + quote(sandbox_id, safe="")


def _json(res: httpx.Response) -> Any:
    return res.json() if res.content else None


def _none(res: httpx.Response) -> None:
    return None


def _info(res: httpx.Response) -> SandboxInfo:
    return SandboxInfo.from_json(res.json())


def transport_error(exc: httpx.HTTPError, url: str, timeout: Optional[float]) -> BerthError:
    """A request that got no HTTP answer: the URL in the message, always."""
    if isinstance(exc, httpx.TimeoutException):
        after = f" within {timeout:g} s" if timeout else ""
        return TimeoutError(0, "TIMEOUT", f"No answer from the control plane at {url}{after} ({exc!r})")
    return NetworkError(f"Cannot reach the control plane at {url} ({type(exc).__name__}: {exc})")


def check_response(res: httpx.Response) -> None:
    if res.status_code >= 400:
        raise error_from_response(res.status_code, res.text)


# ---- sandboxes ----------------------------------------------------------------------------------


def create_body(
    *,
    image: Optional[str] = None,
    workspace: Optional[str] = None,
    volumes: Optional[Sequence[str]] = None,
    env: Optional[Mapping[str, str]] = None,
    limits: Optional[Limits] = None,
    network: Optional[str] = None,
    timeout_seconds: Optional[int] = None,
    idle_timeout_seconds: Optional[int] = None,
    labels: Optional[Mapping[str, str]] = None,
    keep_alive: Optional[bool] = None,
    user: Optional[SandboxUser] = None,
    working_dir: Optional[str] = None,
    plugins: Optional[Sequence[str]] = None,
    oci_runtime: Optional[str] = None,
) -> Dict[str, Any]:
    """CreateSandboxBody (src/protocol/api.ts), with the fields left out that were not given."""
    fields: Dict[str, Any] = {
        "image": image,
        "workspace": workspace,
        "volumes": list(volumes) if volumes is not None else None,
        "env": dict(env) if env is not None else None,
        "limits": dict(limits) if limits is not None else None,
        "network": network,
        "timeout_seconds": timeout_seconds,
        "idle_timeout_seconds": idle_timeout_seconds,
        "labels": dict(labels) if labels is not None else None,
        "keep_alive": keep_alive,
        "user": dict(user) if user is not None else None,
        "working_dir": working_dir,
        "plugins": list(plugins) if plugins is not None else None,
        "oci_runtime": oci_runtime,
    }
    return {k: v for k, v in fields.items() if v is not None}


def create(body: Mapping[str, Any], timeout: float = 300.0) -> Op[SandboxInfo]:
    return Op(Request("POST", "/api/sandboxes", json=dict(body), timeout=timeout), _info)


def list_sandboxes(state: Optional[str], labels: Optional[Mapping[str, str]]) -> Op[List[SandboxInfo]]:
    params: List[Tuple[str, str]] = []
    if state:
        params.append(("state", state))
    for k, v in (labels or {}).items():
        params.append(("label", f"{k}={v}"))
    return Op(
        Request("GET", "/api/sandboxes", params=params),
        lambda r: [SandboxInfo.from_json(s) for s in r.json()["sandboxes"]],
    )


def get(sandbox_id: str) -> Op[SandboxInfo]:
    return Op(Request("GET", sid(sandbox_id)), _info)


def delete(sandbox_id: str, keep: bool = False) -> Op[None]:
    return Op(Request("DELETE", sid(sandbox_id), params=[("keep", "true")] if keep else None), _none)


def lifecycle(sandbox_id: str, verb: str) -> Op[SandboxInfo]:
    """pause, resume, stop, reset."""
    return Op(Request("POST", f"{sid(sandbox_id)}/{verb}", timeout=None if verb == "pause" else 120.0), _info)


def set_env(sandbox_id: str, env: Mapping[str, str]) -> Op[SandboxInfo]:
    return Op(Request("POST", f"{sid(sandbox_id)}/env", json={"env": dict(env)}), _info)


def extend_timeout(sandbox_id: str, timeout_seconds: int) -> Op[SandboxInfo]:
    return Op(Request("POST", f"{sid(sandbox_id)}/timeout", json={"timeout_seconds": timeout_seconds}), _info)


def stats(sandbox_id: str) -> Op[Dict[str, Any]]:
    return Op(Request("GET", f"{sid(sandbox_id)}/stats"), _json)


def health() -> Op[Dict[str, Any]]:
    return Op(Request("GET", "/health"), _json)


def check_auth() -> Op[None]:
    return Op(Request("GET", "/api/auth/check"), _none)


# ---- actions ------------------------------------------------------------------------------------


def action(
    sandbox_id: str, name: str, args: Mapping[str, Any], timeout: Optional[float] = None
) -> Request:
    body: Dict[str, Any] = {"action": {"action": name, "args": dict(args)}}
    if timeout:
        body["action"]["timeout"] = timeout
    http_timeout = (timeout or DEFAULT_ACTION_TIMEOUT) + 30.0
    return Request("POST", f"{sid(sandbox_id)}/execute_action", json=body, timeout=http_timeout)


def execute_action(
    sandbox_id: str, name: str, args: Mapping[str, Any], timeout: Optional[float] = None
) -> Op[Observation]:
    """Any OpenHands action; its observation as sent."""
    return Op(action(sandbox_id, name, args, timeout), lambda r: r.json())


def _metadata(obs: Observation) -> Dict[str, Any]:
    extras = obs.get("extras") or {}
    meta = extras.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _raise_error_observation(obs: Observation) -> None:
    if obs.get("observation") == "error":
        content = obs.get("content", "")
        if content.startswith("File not found") or "does not exist" in content:
            raise SandboxFileNotFoundError(content, obs)
        raise ActionError(content or obs.get("message", "action failed"), obs)


def command_result(obs: Observation) -> CommandResult:
    _raise_error_observation(obs)
    meta = _metadata(obs)
    suffix = str(meta.get("suffix") or "")
    extras = obs.get("extras") or {}
    exit_code = meta.get("exit_code", -1)
    return CommandResult(
        command=str(extras.get("command", "")),
        exit_code=int(exit_code) if isinstance(exit_code, int) else -1,
        output=obs.get("content", ""),
        still_running="has no new output after" in suffix or "timed out after" in suffix,
        working_dir=meta.get("working_dir"),
        observation=obs,
    )


def run(
    sandbox_id: str,
    command: str,
    *,
    timeout: Optional[float],
    soft: bool,
    is_input: bool,
    check: bool,
    interrupt_on_timeout: bool,
) -> Op[CommandResult]:
    """The run action. With a timeout (and not soft) it blocks up to that many seconds; a hard
    timeout raises CommandTimeoutError, after a Ctrl-C when interrupt_on_timeout (the reference leaves
    the command running, and the shell then refuses new commands)."""
    blocking = timeout is not None and not soft
    req = action(sandbox_id, "run", {"command": command, "is_input": is_input, "blocking": blocking}, timeout)

    def parse(res: httpx.Response) -> CommandResult:
        result = command_result(res.json())
        suffix = str(_metadata(result.observation).get("suffix") or "")
        if "is NOT executed" in suffix:
            raise ShellBusyError(result)
        return result

    def then(result: CommandResult) -> Optional[Op[Any]]:
        suffix = str(_metadata(result.observation).get("suffix") or "")
        if "timed out after" in suffix:
            error = CommandTimeoutError(result, timeout or DEFAULT_ACTION_TIMEOUT)
            if not interrupt_on_timeout:
                raise error
            interrupt = action(sandbox_id, "run", {"command": "C-c", "is_input": True, "blocking": False}, 10)

            def parse_interrupt(_res: httpx.Response) -> None:
                raise error

            return Op(interrupt, parse_interrupt)
        if check and result.exit_code != 0 and not result.still_running:
            raise CommandError(result)
        return None

    return Op(req, parse, then)


def ipython(sandbox_id: str, code: str, timeout: Optional[float]) -> Op[IPythonResult]:
    def parse(res: httpx.Response) -> IPythonResult:
        obs: Observation = res.json()
        _raise_error_observation(obs)
        extras = obs.get("extras") or {}
        return IPythonResult(
            output=obs.get("content", ""), image_urls=list(extras.get("image_urls") or []), observation=obs
        )

    return Op(action(sandbox_id, "run_ipython", {"code": code}, timeout), parse)


EDITOR_ERROR = re.compile(r"^ERROR:\s*")


def edit(sandbox_id: str, command: str, path: str, args: Mapping[str, Any]) -> Op[EditResult]:
    body = {"command": command, "path": path, "impl_source": "oh_aci"}
    body.update({k: v for k, v in args.items() if v is not None})

    def parse(res: httpx.Response) -> EditResult:
        obs: Observation = res.json()
        _raise_error_observation(obs)
        content = obs.get("content", "")
        if EDITOR_ERROR.match(content):
            text = EDITOR_ERROR.sub("", content, count=1)
            if "does not exist" in text:
                raise SandboxFileNotFoundError(text, obs)
            raise ActionError(text, obs)
        extras = obs.get("extras") or {}
        return EditResult(
            path=str(extras.get("path", path)),
            output=content,
            diff=extras.get("diff") or None,
            prev_exist=bool(extras.get("prev_exist", False)),
            observation=obs,
        )

    return Op(action(sandbox_id, "edit", body), parse)


# ---- files --------------------------------------------------------------------------------------


def list_files(sandbox_id: str, path: Optional[str]) -> Op[List[str]]:
    return Op(Request("POST", f"{sid(sandbox_id)}/list_files", json={} if path is None else {"path": path}), _json)


def _upload_result(res: httpx.Response) -> UploadResult:
    j = res.json()
    return UploadResult(filename=j["filename"], destination=j["destination"], recursive=bool(j["recursive"]))


def upload_bytes(
    sandbox_id: str, destination: str, filename: str, data: bytes, recursive: bool = False
) -> Op[UploadResult]:
    """destination/filename (the directory made if missing); recursive: data is a zip, extracted there."""
    params = [("destination", destination), ("recursive", "true" if recursive else "false")]
    return Op(
        Request(
            "POST",
            f"{sid(sandbox_id)}/upload_file",
            params=params,
            files={"file": (filename, data)},
            timeout=0,
        ),
        _upload_result,
    )


def write_bytes(sandbox_id: str, path: str, data: bytes) -> Op[UploadResult]:
    directory, name = posixpath.split(path)
    if not name:
        raise ValueError(f"not a file path: {path!r}")
    return upload_bytes(sandbox_id, directory or "/", name, data)


def download_zip(sandbox_id: str, path: str) -> Op[bytes]:
    return Op(
        Request("GET", f"{sid(sandbox_id)}/download_files", params=[("path", path)], timeout=0),
        lambda r: r.content,
    )


def read_bytes(sandbox_id: str, path: str) -> Op[bytes]:
    """A file's bytes, through download_files (whose zip holds the one file)."""

    def parse(res: httpx.Response) -> bytes:
        with zipfile.ZipFile(io.BytesIO(res.content)) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            base = posixpath.basename(path.rstrip("/"))
            if names != [base]:
                raise InvalidRequestError(0, "VALIDATION_FAILED", f"{path} is a directory, not a file")
            return z.read(base)

    return Op(Request("GET", f"{sid(sandbox_id)}/download_files", params=[("path", path)], timeout=0), parse)


def zip_directory(local: Path) -> bytes:
    """The directory's contents (not the directory itself), relative paths, directories included."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(local.rglob("*")):
            rel = p.relative_to(local).as_posix()
            if p.is_dir():
                z.writestr(rel + "/", b"")
            elif p.is_file():
                z.write(p, rel)
    return buf.getvalue()


def upload_path(sandbox_id: str, local: Union[str, "os.PathLike[str]"], destination: str) -> Op[UploadResult]:
    """A local file into the directory destination (as destination/<name>), or a local directory's
    contents into destination (zipped here, extracted there)."""
    p = Path(local)
    if p.is_dir():
        return upload_bytes(sandbox_id, destination, f"{p.name or 'upload'}.zip", zip_directory(p), recursive=True)
    return upload_bytes(sandbox_id, destination, p.name, p.read_bytes())


def safe_extract(data: bytes, target: Path) -> List[Path]:
    """Extracts a zip into target, refusing entries that would land outside it."""
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    written: List[Path] = []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            dest = (root / info.filename).resolve()
            if dest != root and root not in dest.parents:
                raise BerthError(0, "BAD_ARCHIVE", f"zip entry escapes the target directory: {info.filename}")
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(z.read(info))
            written.append(dest)
    return written


def save_download(data: bytes, path: str, local: Path) -> List[Path]:
    """What download writes: a file to local (or into local, if that is a directory); a directory's
    contents into local."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = [n for n in z.namelist() if not n.endswith("/")]
    base = posixpath.basename(path.rstrip("/"))
    if names == [base] and not path.endswith("/"):
        dest = local / base if local.is_dir() else local
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            dest.write_bytes(z.read(base))
        return [dest]
    return safe_extract(data, local)


# ---- events -------------------------------------------------------------------------------------


def events(sandbox_id: str, after: int, limit: int) -> Op[EventPage]:
    def parse(res: httpx.Response) -> EventPage:
        j = res.json()
        return EventPage(events=[Event.from_json(e) for e in j["events"]], next_after=int(j["next_after"]))

    return Op(Request("GET", f"{sid(sandbox_id)}/events", params=[("after", str(after)), ("limit", str(limit))]), parse)


def events_ws_url(base: str, sandbox_id: str, after: int) -> str:
    return re.sub(r"^http", "ws", base) + f"{sid(sandbox_id)}/events/stream?after={after}"


def parse_ws_message(raw: Union[str, bytes], sandbox_id: str) -> Event:
    j = json.loads(raw)
    if isinstance(j, dict) and j.get("type") == "error":
        raise error_from_response(404 if j.get("code") == "NOT_FOUND" else 500, json.dumps(j))
    return Event.from_json(j)


def ws_handshake_error(status: int, body: bytes, url: str) -> BerthError:
    """A WebSocket refused at the upgrade (a wrong key, ...): the answer's own error."""
    err = error_from_response(status, body.decode("utf-8", "replace"))
    return err


def ws_connect_error(exc: BaseException, url: str) -> BerthError:
    """A WebSocket that could not be opened at all (refused, DNS, no answer in time)."""
    return NetworkError(f"Cannot reach the control plane at {url} ({type(exc).__name__}: {exc})")


# ---- exec ---------------------------------------------------------------------------------------

#: ExecSignal's values, to refuse a wrong name here rather than as a frame the server reports.
EXEC_SIGNALS: Tuple[str, ...] = (
    "SIGINT", "SIGTERM", "SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGSTOP", "SIGCONT", "SIGWINCH"
)


def exec_ws_url(base: str, sandbox_id: str) -> str:
    return re.sub(r"^http", "ws", base) + f"{sid(sandbox_id)}/exec"


def exec_start_frame(
    argv: Sequence[str],
    *,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    user: Optional[str] = None,
    pty: Optional[PtySize] = None,
    stdin: bool = False,
    timeout: Optional[float] = None,
) -> str:
    """The first client frame (ExecStart in src/protocol/api.ts), the fields not given left out."""
    if isinstance(argv, (str, bytes)):
        raise TypeError("argv is the program and its arguments as a list of strings, not one string")
    args = list(argv)
    if not args or not all(isinstance(a, str) for a in args):
        raise TypeError("argv must be a non-empty sequence of strings")
    frame: Dict[str, Any] = {"type": "start", "argv": args}
    if cwd is not None:
        frame["cwd"] = cwd
    if env is not None:
        frame["env"] = dict(env)
    if user is not None:
        frame["user"] = user
    if pty is not None:
        frame["pty"] = {"cols": int(pty["cols"]), "rows": int(pty["rows"])}
    if stdin:
        frame["stdin"] = True
    if timeout is not None:
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        frame["timeout_ms"] = max(1, math.ceil(timeout * 1000))
    return json.dumps(frame)


def exec_input_frame(data: Union[str, bytes]) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return json.dumps({"type": "input", "data": base64.b64encode(raw).decode("ascii")})


def _signal_name(name: str) -> str:
    if name not in EXEC_SIGNALS:
        raise ValueError(f"not a signal an exec can be sent: {name!r} (one of {', '.join(EXEC_SIGNALS)})")
    return name


def exec_signal_frame(name: ExecSignal) -> str:
    return json.dumps({"type": "signal", "signal": _signal_name(name)})


def exec_kill_frame(name: Optional[ExecSignal] = None) -> str:
    return json.dumps({"type": "kill", **({} if name is None else {"signal": _signal_name(name)})})


def exec_resize_frame(cols: int, rows: int) -> str:
    return json.dumps({"type": "resize", "cols": int(cols), "rows": int(rows)})


EXEC_CLOSE_STDIN_FRAME = json.dumps({"type": "close_stdin"})


def socket_error(code: str, message: str) -> BerthError:
    """The typed error for an error frame's code (status 0: it came over a socket, not as a response)."""
    cls = ERROR_CLASS_BY_CODE.get(code, BerthError)
    return cls(0, code, message)


class ExecReader:
    """The server's frames of one exec (ExecServerMessage), parsed: the process's id and pid once
    ``started``, each output chunk, the ``exit``, an ``error``; the output kept as text for the result."""

    def __init__(self) -> None:
        self.id: Optional[str] = None
        self.pid: Optional[int] = None
        self.exit: Optional[Dict[str, Any]] = None
        self.error: Optional[BerthError] = None
        self._decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in ("stdout", "stderr", "pty")}
        self._text: Dict[str, List[str]] = {"stdout": [], "stderr": [], "pty": []}

    @property
    def started(self) -> bool:
        return self.id is not None

    def feed(self, raw: Union[str, bytes]) -> Optional[Tuple[ExecStream, bytes]]:
        """One frame; an output frame's (stream, bytes), else None."""
        m = json.loads(raw)
        kind = m.get("type") if isinstance(m, dict) else None
        if kind == "started":
            self.id, self.pid = str(m["id"]), int(m["pid"])
        elif kind == "exit":
            self.exit = m
        elif kind == "error":
            if self.error is None:
                self.error = socket_error(str(m.get("code") or "INTERNAL"), str(m.get("message") or "exec failed"))
        elif kind in ("stdout", "stderr", "pty"):
            data = base64.b64decode(m.get("data") or "")
            stream: ExecStream = kind
            self._text[stream].append(self._decoders[stream].decode(data))
            return stream, data
        return None

    def failure(self, closed: Optional[BaseException] = None) -> BerthError:
        """Why the exec ended without an exit status: the server's error, else a NetworkError."""
        if self.error is not None:
            return self.error
        why = f": {closed}" if closed is not None and str(closed) else " (the connection closed)"
        return NetworkError(f"exec in the sandbox ended without an exit status{why}")

    def result(self, closed: Optional[BaseException] = None) -> ExecResult:
        """The ExecResult once the exit came; the failure raised otherwise."""
        if self.exit is None:
            raise self.failure(closed)
        text = {s: "".join(parts) + self._decoders[s].decode(b"", True) for s, parts in self._text.items()}
        self._text = {s: [t] for s, t in text.items()}
        signal = self.exit.get("signal")
        return ExecResult(
            exit_code=int(self.exit.get("exit_code", -1)),
            signal=str(signal) if signal is not None else None,
            timed_out=bool(self.exit.get("timed_out", False)),
            stdout=text["stdout"] + text["pty"],
            stderr=text["stderr"],
        )
