"""The synchronous client, on httpx.Client; the events stream on websockets' sync client."""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Generator,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
)

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from . import _core as core
from ._errors import BerthError
from ._types import (
    CommandResult,
    EditCommand,
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
PathLike = Union[str, "os.PathLike[str]"]
#: A callback of exec's output: each chunk's bytes as they arrive.
OutputCallback = Callable[[bytes], None]


class Berth:
    """A client of one Berth control plane.

    ``url`` defaults to ``$BERTH_URL``, then http://127.0.0.1:3000; ``api_key`` to ``$BERTH_API_KEY``
    (sent as ``Authorization: Bearer``). ``timeout``: seconds for calls that are not actions or
    transfers (actions wait for their own timeout plus 30 s; transfers have none).

        with Berth() as berth:
            with berth.sandboxes.create() as sb:
                print(sb.run("echo hi").output)
    """

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: float = core.DEFAULT_TIMEOUT,
        http_client: Optional[httpx.Client] = None,
    ) -> None:
        self.url = core.resolve_url(url)
        self._api_key = core.resolve_key(api_key)
        self._timeout = timeout
        self._http = http_client or httpx.Client()
        self._own_http = http_client is None
        self.sandboxes = Sandboxes(self)

    # -- transport

    def _call(self, op: core.Op[T]) -> T:
        req = op.request
        timeout = self._timeout if req.timeout is None else (req.timeout or None)
        try:
            res = self._http.request(
                req.method,
                self.url + req.path,
                json=req.json,
                params=tuple(req.params) if req.params else None,
                files=req.files,
                headers=core.auth_headers(self._api_key),
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            raise core.transport_error(exc, self.url, timeout) from exc
        core.check_response(res)
        result = op.parse(res)
        if op.then is not None:
            follow = op.then(result)
            if follow is not None:
                self._call(follow)
        return result

    def _ws(self, url: str) -> ClientConnection:
        """A WebSocket to the control plane, with the key; a refusal raised as its typed error."""
        try:
            return ws_connect(url, additional_headers=core.auth_headers(self._api_key), open_timeout=30)
        except InvalidStatus as exc:
            raise core.ws_handshake_error(exc.response.status_code, exc.response.body or b"", url) from exc
        except (OSError, TimeoutError) as exc:
            raise core.ws_connect_error(exc, self.url) from exc

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> Berth:
        return self

    def __exit__(
        self, t: Optional[Type[BaseException]], e: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()

    # -- the control plane

    def health(self) -> Dict[str, Any]:
        return self._call(core.health())

    def check_auth(self) -> None:
        """Returns when the API key (or no key) is accepted; AuthenticationError when not."""
        self._call(core.check_auth())

    def sandbox(self, sandbox_id: str) -> Sandbox:
        """A handle on a sandbox by id, without asking the server (``info`` is None until refresh)."""
        return Sandbox(self, sandbox_id, None)


class Sandboxes:
    """``berth.sandboxes``: create, list, get, and the lifecycle by id."""

    def __init__(self, client: Berth) -> None:
        self._c = client

    def create(
        self,
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
        request_timeout: float = 300.0,
    ) -> Sandbox:
        """POST /api/sandboxes; returns when the sandbox runs. The fields are CreateSandboxBody's."""
        body = core.create_body(
            image=image,
            workspace=workspace,
            volumes=volumes,
            env=env,
            limits=limits,
            network=network,
            timeout_seconds=timeout_seconds,
            idle_timeout_seconds=idle_timeout_seconds,
            labels=labels,
            keep_alive=keep_alive,
            user=user,
            working_dir=working_dir,
            plugins=plugins,
            oci_runtime=oci_runtime,
        )
        return self._handle(self._c._call(core.create(body, request_timeout)))

    def list(self, *, state: Optional[str] = None, labels: Optional[Mapping[str, str]] = None) -> List[Sandbox]:
        return [self._handle(i) for i in self._c._call(core.list_sandboxes(state, labels))]

    def get(self, sandbox_id: str) -> Sandbox:
        return self._handle(self._c._call(core.get(sandbox_id)))

    def delete(self, sandbox_id: str, *, keep: bool = False) -> None:
        self._c._call(core.delete(sandbox_id, keep))

    def pause(self, sandbox_id: str) -> Sandbox:
        return self._handle(self._c._call(core.lifecycle(sandbox_id, "pause")))

    def resume(self, sandbox_id: str) -> Sandbox:
        return self._handle(self._c._call(core.lifecycle(sandbox_id, "resume")))

    def stop(self, sandbox_id: str) -> Sandbox:
        return self._handle(self._c._call(core.lifecycle(sandbox_id, "stop")))

    def reset(self, sandbox_id: str) -> Sandbox:
        """Ends every process of the sandbox user and starts a fresh shell (files stay)."""
        return self._handle(self._c._call(core.lifecycle(sandbox_id, "reset")))

    def set_env(self, sandbox_id: str, env: Mapping[str, str]) -> Sandbox:
        return self._handle(self._c._call(core.set_env(sandbox_id, env)))

    def extend_timeout(self, sandbox_id: str, timeout_seconds: int) -> Sandbox:
        return self._handle(self._c._call(core.extend_timeout(sandbox_id, timeout_seconds)))

    def _handle(self, info: SandboxInfo) -> Sandbox:
        return Sandbox(self._c, info.id, info)


class Sandbox:
    """One sandbox: its record (``info``), lifecycle, commands, files, the editor, IPython and events.
    A context manager that deletes the sandbox on exit."""

    def __init__(self, client: Berth, sandbox_id: str, info: Optional[SandboxInfo]) -> None:
        self._c = client
        self.id = sandbox_id
        self.info = info
        self.files = Files(client, sandbox_id)
        self.events = Events(client, sandbox_id)

    def __repr__(self) -> str:
        return f"Sandbox(id={self.id!r}, state={self.info.state if self.info else None!r})"

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, t: Optional[Type[BaseException]], e: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.delete()

    @property
    def state(self) -> Optional[str]:
        return self.info.state if self.info else None

    def _set(self, op: core.Op[SandboxInfo]) -> Sandbox:
        self.info = self._c._call(op)
        return self

    def refresh(self) -> Sandbox:
        return self._set(core.get(self.id))

    def pause(self) -> Sandbox:
        return self._set(core.lifecycle(self.id, "pause"))

    def resume(self) -> Sandbox:
        return self._set(core.lifecycle(self.id, "resume"))

    def stop(self) -> Sandbox:
        return self._set(core.lifecycle(self.id, "stop"))

    def reset(self) -> Sandbox:
        return self._set(core.lifecycle(self.id, "reset"))

    def set_env(self, env: Mapping[str, str]) -> Sandbox:
        return self._set(core.set_env(self.id, env))

    def extend_timeout(self, timeout_seconds: int) -> Sandbox:
        return self._set(core.extend_timeout(self.id, timeout_seconds))

    def delete(self, *, keep: bool = False) -> None:
        self._c._call(core.delete(self.id, keep))

    def stats(self) -> Dict[str, Any]:
        return self._c._call(core.stats(self.id))

    def execute_action(
        self, action: str, args: Mapping[str, Any], *, timeout: Optional[float] = None
    ) -> Observation:
        """Any OpenHands action; the raw observation (error observations are returned, not raised)."""
        return self._c._call(core.execute_action(self.id, action, args, timeout))

    def run(
        self,
        command: str,
        *,
        timeout: Optional[float] = None,
        check: bool = False,
        soft: bool = False,
        is_input: bool = False,
        interrupt_on_timeout: bool = True,
    ) -> CommandResult:
        """Runs a command in the sandbox's persistent shell and returns when it ends.

        ``timeout``: a hard timeout in seconds; past it CommandTimeoutError is raised (its ``result``
        has the output so far), after a Ctrl-C unless ``interrupt_on_timeout=False``. Without one,
        the reference's soft timeout applies: a command silent for 10 s comes back with
        ``still_running=True``. ``check``: raise CommandError on a non-zero exit code.
        """
        return self._c._call(
            core.run(
                self.id,
                command,
                timeout=timeout,
                soft=soft,
                is_input=is_input,
                check=check,
                interrupt_on_timeout=interrupt_on_timeout,
            )
        )

    def run_ipython(self, code: str, *, timeout: Optional[float] = None) -> IPythonResult:
        """Runs a cell in the sandbox's IPython kernel (the jupyter plugin)."""
        return self._c._call(core.ipython(self.id, code, timeout))

    def edit(
        self,
        command: EditCommand,
        path: str,
        *,
        file_text: Optional[str] = None,
        old_str: Optional[str] = None,
        new_str: Optional[str] = None,
        insert_line: Optional[int] = None,
        view_range: Optional[Sequence[int]] = None,
    ) -> EditResult:
        """The OpenHands editor (oh_aci): view, create, str_replace, insert, undo_edit. An editor
        error (no match, several matches, a missing path) is raised as ActionError."""
        args = {
            "file_text": file_text,
            "old_str": old_str,
            "new_str": new_str,
            "insert_line": insert_line,
            "view_range": list(view_range) if view_range is not None else None,
        }
        return self._c._call(core.edit(self.id, command, path, args))

    def exec_start(
        self,
        argv: Sequence[str],
        *,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        user: Optional[str] = None,
        pty: Optional[PtySize] = None,
        stdin: bool = False,
        timeout: Optional[float] = None,
    ) -> ExecProcess:
        """Starts a command on its own in the sandbox, like ``docker exec`` (not in the agent's shell:
        its cwd, variables and jobs neither leak in nor out), and returns once it runs.

        ``argv`` is passed exactly (no shell). ``cwd``: default the sandbox's working directory.
        ``user``: a name or uid (default the sandbox user). ``pty``: a PTY of ``{"cols", "rows"}``
        instead of pipes (output is then one ``pty`` stream). ``stdin``: keep stdin open for
        ``write`` (else it is /dev/null). ``timeout``: seconds, after which the process is ended and
        the result says ``timed_out``. A missing sandbox raises NotFoundError.

            with sb.exec_start(["cat"], stdin=True) as p:
                p.write("hi")
                p.close_stdin()
                print(p.wait().stdout)
        """
        start = core.exec_start_frame(argv, cwd=cwd, env=env, user=user, pty=pty, stdin=stdin, timeout=timeout)
        ws = self._c._ws(core.exec_ws_url(self._c.url, self.id))
        proc = ExecProcess(ws)
        try:
            proc._send(start)
            proc._await_start()
        except BaseException:
            proc.close()
            raise
        return proc

    def exec(
        self,
        argv: Sequence[str],
        *,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        user: Optional[str] = None,
        pty: Optional[PtySize] = None,
        stdin: bool = False,
        timeout: Optional[float] = None,
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
    ) -> ExecResult:
        """Runs a command on its own in the sandbox (as ``exec_start``) to its end: the exit code and
        stdout and stderr apart. ``on_stdout`` / ``on_stderr`` get each chunk's bytes as it arrives
        (a PTY's output goes to ``on_stdout``). A non-zero exit is returned, not raised.

            r = sb.exec(["python3", "-c", "print(1)"])
            assert (r.exit_code, r.stdout) == (0, "1\n")
        """
        with self.exec_start(argv, cwd=cwd, env=env, user=user, pty=pty, stdin=stdin, timeout=timeout) as p:
            for stream, chunk in p:
                callback = on_stderr if stream == "stderr" else on_stdout
                if callback is not None:
                    callback(chunk)
            return p.wait()


class ExecProcess:
    """A command running on its own in a sandbox (``sandbox.exec_start``), over its exec WebSocket.
    Iterate over it for its output as ``(stream, bytes)`` chunks while it runs; ``wait`` for its
    ExecResult. A context manager: leaving it closes the link, which ends a process still running.
    Sending (``write``, ``signal``...) may happen from another thread than the one iterating."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._reader = core.ExecReader()
        self._pending: Deque[Tuple[ExecStream, bytes]] = deque()
        self._finished = False
        self._closed_by: Optional[BaseException] = None

    def __repr__(self) -> str:
        return f"ExecProcess(id={self.id!r}, pid={self.pid!r}, exited={self.exited})"

    @property
    def id(self) -> Optional[str]:
        """The process's id in the sandbox's process table (None if the program could not start)."""
        return self._reader.id

    @property
    def pid(self) -> Optional[int]:
        return self._reader.pid

    @property
    def exited(self) -> bool:
        return self._reader.exit is not None

    # -- frames

    def _send(self, frame: str) -> None:
        if self._reader.exit is not None:
            return  # the process is gone: nothing to signal or feed
        try:
            self._ws.send(frame)
        except ConnectionClosed as exc:
            # Closed by the server (a refusal can come before the start frame is out): what it sent
            # first says why.
            while not self._finished:
                self._read()
            if self._reader.exit is None:
                raise self._reader.failure(self._closed_by or exc) from exc

    def _read(self) -> None:
        """One frame from the server; the end once the exit came or the link closed."""
        try:
            raw = self._ws.recv()
        except ConnectionClosed as exc:
            self._finished, self._closed_by = True, exc
            return
        chunk = self._reader.feed(raw)
        if chunk is not None:
            self._pending.append(chunk)
        if self._reader.exit is not None:
            self._finished = True
            self._ws.close()

    def _await_start(self) -> None:
        """Reads until the process runs (output before that is kept for the iteration); raises what
        the server refused it with."""
        while not self._reader.started and not self._finished:
            self._read()
        if self._finished and self._reader.exit is None:
            raise self._reader.failure(self._closed_by)

    # -- output

    def __iter__(self) -> Iterator[Tuple[ExecStream, bytes]]:
        """The output chunks as they arrive, to the process's exit; raises if the link ends before
        the exit status (the server's error, or a NetworkError)."""
        while True:
            while self._pending:
                yield self._pending.popleft()
            if self._finished:
                if self._reader.exit is None:
                    raise self._reader.failure(self._closed_by)
                return
            self._read()

    def wait(self) -> ExecResult:
        """Waits for the exit (reading whatever output is left) and returns the ExecResult."""
        for _ in self:
            pass
        return self._reader.result(self._closed_by)

    # -- input and control

    def write(self, data: Union[bytes, str]) -> None:
        """Input for the process: its stdin (``stdin=True``) or its PTY; text is sent as UTF-8."""
        self._send(core.exec_input_frame(data))

    def close_stdin(self) -> None:
        """End of input: the process reads EOF."""
        self._send(core.EXEC_CLOSE_STDIN_FRAME)

    def signal(self, name: ExecSignal) -> None:
        """One signal to the process's group, as is (``"SIGINT"``: a Ctrl-C)."""
        self._send(core.exec_signal_frame(name))

    def kill(self, name: Optional[ExecSignal] = None) -> None:
        """Ends the process: ``name`` (default SIGTERM) to its group, SIGKILL after a grace if it is
        still there."""
        self._send(core.exec_kill_frame(name))

    def resize(self, cols: int, rows: int) -> None:
        """A new size for the PTY."""
        self._send(core.exec_resize_frame(cols, rows))

    def close(self) -> None:
        """Closes the link; a process still running is ended on the sandbox's side."""
        self._finished = True
        self._ws.close()

    def __enter__(self) -> ExecProcess:
        return self

    def __exit__(
        self, t: Optional[Type[BaseException]], e: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()


class Files:
    """``sandbox.files``: text and bytes, listings, uploads and downloads."""

    def __init__(self, client: Berth, sandbox_id: str) -> None:
        self._c = client
        self._id = sandbox_id

    def read(self, path: str, encoding: str = "utf-8") -> str:
        """A text file, exactly as stored (decoded). A missing file raises NotFoundError."""
        return (self._c._call(core.read_bytes(self._id, path))).decode(encoding)

    def read_bytes(self, path: str) -> bytes:
        """A file's bytes (through download_files). A missing file raises NotFoundError."""
        return self._c._call(core.read_bytes(self._id, path))

    def write(self, path: str, data: Union[str, bytes]) -> None:
        """Writes text (UTF-8) or bytes exactly, as the sandbox user (an upload); parent directories
        are made. (OpenHands' own write action normalises the trailing newline; use execute_action
        for it.)"""
        raw = data if isinstance(data, bytes) else data.encode("utf-8")
        self._c._call(core.write_bytes(self._id, path, raw))

    def list(self, path: Optional[str] = None) -> List[str]:
        """Names in a directory (default: the workspace), directories first with a trailing /."""
        return self._c._call(core.list_files(self._id, path))

    def upload(self, local: PathLike, destination: str) -> UploadResult:
        """A local file into the sandbox directory ``destination``, or a local directory's contents."""
        return self._c._call(core.upload_path(self._id, local, destination))

    def download(self, path: str, local: PathLike) -> List[Path]:
        """A sandbox file to ``local`` (a path, or a directory to put it in), or a sandbox directory's
        contents into the directory ``local``; returns the files written."""
        return core.save_download(self._c._call(core.download_zip(self._id, path)), path, Path(local))

    def download_zip(self, path: str) -> bytes:
        """A file or directory as the zip the server sends."""
        return self._c._call(core.download_zip(self._id, path))


class Events:
    """``sandbox.events``: the sandbox's event log (actions, observations, lifecycle)."""

    def __init__(self, client: Berth, sandbox_id: str) -> None:
        self._c = client
        self._id = sandbox_id

    def list(self, *, after: int = 0, limit: int = 200) -> EventPage:
        return self._c._call(core.events(self._id, after, limit))

    def follow(self, *, after: int = 0, idle_timeout: Optional[float] = None) -> Generator[Event, None, None]:
        """Every event after ``after`` (replayed), then live ones as they are recorded, over the
        WebSocket. Ends when ``idle_timeout`` seconds pass without one (None: never) or the server
        closes; break out of the loop to stop (the socket is closed)."""
        ws = self._c._ws(core.events_ws_url(self._c.url, self._id, after))
        with ws:
            while True:
                try:
                    raw = ws.recv(timeout=idle_timeout)
                except TimeoutError:
                    return
                except ConnectionClosed:
                    return
                yield core.parse_ws_message(raw, self._id)


__all__ = ["Berth", "Sandboxes", "Sandbox", "ExecProcess", "Files", "Events", "BerthError"]
