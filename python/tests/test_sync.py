"""The sync client end to end: create, commands, files, the editor, IPython, events, pause/resume."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

import berth
from berth import Berth, Sandbox


def test_create_fields(sandbox: Sandbox) -> None:
    assert sandbox.info is not None
    assert sandbox.state == "running"
    assert sandbox.info.labels == {"suite": "python-sdk"}
    assert sandbox.info.url.startswith("http")
    assert sandbox.run("id -u").output.strip() == "1000"
    assert sandbox.run("pwd").output.strip() == "/tmp"
    assert sandbox.run("echo $GREETING").output.strip() == "hello from env"


def test_run_exit_codes_and_output(sandbox: Sandbox) -> None:
    r = sandbox.run("echo out; echo err >&2", timeout=30)
    assert isinstance(r, berth.CommandResult)
    assert r.exit_code == 0 and r.ok
    assert r.output.splitlines() == ["out", "err"]
    assert r.stdout == r.output and r.stderr == ""
    assert r.working_dir == "/tmp"
    assert r.observation["observation"] == "run"
    assert r.observation["extras"]["metadata"]["exit_code"] == 0

    r = sandbox.run("echo failing; (exit 3)", timeout=30)
    assert (r.exit_code, r.output, r.ok) == (3, "failing", False)
    with pytest.raises(berth.CommandError) as e:
        sandbox.run("false", timeout=30, check=True)
    assert e.value.result.exit_code == 1

    # The shell persists between calls.
    sandbox.run("export KEPT=yes; cd /", timeout=30)
    r = sandbox.run("echo $KEPT; pwd", timeout=30)
    assert r.output.splitlines() == ["yes", "/"]
    assert r.working_dir == "/"
    sandbox.run("cd /tmp", timeout=30)


def test_hard_timeout_raises_and_interrupts(sandbox: Sandbox) -> None:
    with pytest.raises(berth.CommandTimeoutError) as e:
        sandbox.run("echo started; sleep 30", timeout=2)
    assert isinstance(e.value, berth.TimeoutError) and isinstance(e.value, TimeoutError)
    assert e.value.result.output == "started"
    # Interrupted: the shell takes the next command at once.
    assert sandbox.run("echo next", timeout=10).output == "next"


def test_shell_busy_without_interrupt(sandbox: Sandbox) -> None:
    with pytest.raises(berth.CommandTimeoutError):
        sandbox.run("sleep 30", timeout=1, interrupt_on_timeout=False)
    with pytest.raises(berth.ShellBusyError):
        sandbox.run("echo refused", timeout=5)
    r = sandbox.run("C-c", is_input=True)
    assert r.exit_code == 130
    assert sandbox.run("echo free", timeout=10).output == "free"


def test_files_text_and_bytes(sandbox: Sandbox) -> None:
    sandbox.files.write("/tmp/py/notes.txt", "line one\nline two\n")
    assert sandbox.files.read("/tmp/py/notes.txt") == "line one\nline two\n"
    sandbox.files.write("/tmp/py/exact.txt", "no newline, ünïcode")
    assert sandbox.files.read("/tmp/py/exact.txt") == "no newline, ünïcode"
    sandbox.files.write("/tmp/py/exact.txt", "overwritten")
    assert sandbox.run("cat /tmp/py/exact.txt").output == "overwritten"
    blob = bytes(range(256)) * 40
    sandbox.files.write("/tmp/py/bin/blob.dat", blob)
    assert sandbox.files.read_bytes("/tmp/py/bin/blob.dat") == blob
    assert sandbox.files.read_bytes("/tmp/py/notes.txt") == b"line one\nline two\n"
    assert sandbox.files.list("/tmp/py") == ["bin/", "exact.txt", "notes.txt"]
    assert sandbox.run("stat -c %U /tmp/py/bin/blob.dat").output == "openhands"


def test_directory_upload_and_download(sandbox: Sandbox, tmp_path: Path) -> None:
    src = tmp_path / "project"
    (src / "pkg").mkdir(parents=True)
    (src / "README").write_text("top\n")
    (src / "pkg" / "mod.py").write_text("X = 1\n")
    (src / "pkg" / "data.bin").write_bytes(b"\x00\xff" * 100)
    up = sandbox.files.upload(src, "/tmp/up")
    assert up.destination == "/tmp/up" and up.recursive
    assert sorted(sandbox.run("cd /tmp/up && find . -type f | sort").output.split()) == [
        "./README",
        "./pkg/data.bin",
        "./pkg/mod.py",
    ]
    single = sandbox.files.upload(src / "README", "/tmp/single")
    assert (single.filename, single.recursive) == ("README", False)
    assert sandbox.files.read("/tmp/single/README") == "top\n"

    out = tmp_path / "back"
    written = sandbox.files.download("/tmp/up", out)
    assert len(written) == 3
    assert (out / "pkg" / "mod.py").read_text() == "X = 1\n"
    assert (out / "pkg" / "data.bin").read_bytes() == b"\x00\xff" * 100
    one = sandbox.files.download("/tmp/up/README", tmp_path / "readme.txt")
    assert one == [tmp_path / "readme.txt"] and one[0].read_text() == "top\n"
    with zipfile.ZipFile(io.BytesIO(sandbox.files.download_zip("/tmp/up"))) as z:
        assert "pkg/mod.py" in z.namelist()


def test_missing_files_are_typed_errors(sandbox: Sandbox) -> None:
    with pytest.raises(berth.NotFoundError) as e:
        sandbox.files.read("/tmp/no/such/file")
    assert (e.value.status, e.value.code) == (404, "NOT_FOUND")
    assert "/tmp/no/such/file" in e.value.message
    with pytest.raises(berth.NotFoundError):
        sandbox.files.read_bytes("/tmp/no/such/file")
    with pytest.raises(berth.NotFoundError):
        sandbox.files.download("/tmp/nothing-here", "/tmp/unused")
    with pytest.raises(berth.InvalidRequestError):
        sandbox.files.read("/tmp/up")  # a directory
    # The OpenHands read action's own error observation, raw and typed.
    obs = sandbox.execute_action("read", {"path": "/tmp/no/such/file"})
    assert obs["observation"] == "error" and obs["content"].startswith("File not found")


def test_edit(sandbox: Sandbox) -> None:
    path = "/tmp/edit_app.py"
    created = sandbox.edit("create", path, file_text="def f():\n    return 'foo'\n")
    assert created.prev_exist is False
    r = sandbox.edit("str_replace", path, old_str="'foo'", new_str="'bar'")
    assert "has been edited" in r.output and r.prev_exist
    assert r.diff and "+    return 'bar'" in r.diff
    assert sandbox.files.read(path) == "def f():\n    return 'bar'\n"
    sandbox.edit("insert", path, insert_line=0, new_str="# header")
    assert sandbox.files.read(path).splitlines()[0] == "# header"
    sandbox.edit("undo_edit", path)
    assert sandbox.files.read(path) == "def f():\n    return 'bar'\n"
    view = sandbox.edit("view", path)
    assert "return 'bar'" in view.output
    with pytest.raises(berth.ActionError) as e:
        sandbox.edit("str_replace", path, old_str="not there", new_str="x")
    assert "No replacement was performed" in e.value.message
    with pytest.raises(berth.SandboxFileNotFoundError):
        sandbox.edit("str_replace", "/tmp/edit_missing.py", old_str="a", new_str="b")


def test_ipython(sandbox: Sandbox) -> None:
    r = sandbox.run_ipython("x = 6 * 7\nprint(x)")
    assert isinstance(r, berth.IPythonResult)
    assert "42" in r.output
    assert "42" in sandbox.run_ipython("print(x)").output  # the kernel keeps state
    assert r.observation["observation"] == "run_ipython"


def test_events_list_and_follow(sandbox: Sandbox) -> None:
    sandbox.run("echo event-marker", timeout=30)
    page = sandbox.events.list(limit=1000)
    kinds = {e.kind for e in page.events}
    assert {"lifecycle", "action", "observation"} <= kinds
    assert page.next_after == page.events[-1].seq
    commands = [
        e.payload["action"]["args"]["command"]
        for e in page.events
        if e.kind == "action" and e.payload["action"]["action"] == "run"
    ]
    assert "echo event-marker" in commands
    # Replay after a seq, then a live event.
    last = page.next_after
    seen = []
    follow = sandbox.events.follow(after=last - 2, idle_timeout=10)
    first = next(follow)
    assert first.seq == last - 1
    sandbox.run("echo live-one", timeout=30)
    for e in follow:
        seen.append(e)
        if e.kind == "observation" and e.payload.get("content") == "live-one":
            break
    follow.close()
    assert any(e.kind == "action" for e in seen)


def test_pause_resume_and_list(client: Berth, sandbox: Sandbox) -> None:
    sandbox.run("export BEFORE_PAUSE=kept", timeout=30)
    assert sandbox.pause().state == "paused"
    with pytest.raises(berth.ConflictError):
        sandbox.run("echo while paused", timeout=5)
    assert client.sandboxes.get(sandbox.id).state == "paused"
    assert sandbox.resume().state == "running"
    assert sandbox.run("echo $BEFORE_PAUSE", timeout=30).output == "kept"
    ids = [s.id for s in client.sandboxes.list(labels={"suite": "python-sdk"})]
    assert sandbox.id in ids
    assert sandbox.id not in [s.id for s in client.sandboxes.list(labels={"suite": "other"})]
    assert sandbox.set_env({"LATER": "set"}).state == "running"
    assert sandbox.run("echo $LATER", timeout=30).output == "set"
    assert sandbox.stats()["uptime"] >= 0


def test_delete(client: Berth) -> None:
    sb = client.sandboxes.create(labels={"suite": "python-sdk-delete"})
    assert sb.run("echo bye", timeout=30).output == "bye"
    sb.delete()
    assert client.sandboxes.get(sb.id).state == "deleted"
    with pytest.raises(berth.BerthError):
        sb.run("echo after delete", timeout=5)
