"""The official `e2b` Python SDK, unchanged, against Berth: run by test/integration/e2b-python-sdk.test.ts
with only E2B_API_KEY, E2B_API_URL and E2B_SANDBOX_URL set, as a user moving from E2B would.

Each check prints `ok <name>` or `FAIL <name>: <error>`; the exit status is the number of failures.
Both clients are driven: the sync Sandbox (whose directory watch polls CreateWatcher/GetWatcherEvents)
and AsyncSandbox (whose watch is a WatchDir stream).
"""

import asyncio
import sys
import time
import traceback
import urllib.request

from e2b import AsyncSandbox, CommandExitException, FileType, PtySize, Sandbox, SandboxQuery
from e2b.exceptions import NotFoundException

failures = 0


def check(fn):
    global failures
    try:
        fn()
        print(f"ok {fn.__name__}", flush=True)
    except Exception:  # noqa: BLE001 - every failure is reported, then counted
        failures += 1
        print(f"FAIL {fn.__name__}: {traceback.format_exc()}", flush=True)
    return fn


def eventually(probe, seconds=10.0):
    """Polls probe until it returns something truthy; the last value, or an AssertionError."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


sbx = Sandbox.create(metadata={"suite": "e2b-python"}, envs={"FROM_CREATE": "yes"}, secure=True)


@check
def commands_run():
    r = sbx.commands.run("echo out; echo err >&2; echo $FROM_CREATE")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "out\nyes\n", "err\n"), r
    try:
        sbx.commands.run("echo partial; exit 3")
        raise AssertionError("a failing command raised nothing")
    except CommandExitException as e:
        assert e.exit_code == 3 and e.stdout == "partial\n", e
    r = sbx.commands.run('echo "$GREETING $PWD"', envs={"GREETING": "hi"}, cwd="/tmp")
    assert r.stdout == "hi /tmp\n", r


@check
def streaming_callbacks():
    seen = []
    sbx.commands.run("echo one; sleep 0.2; echo two", on_stdout=seen.append)
    assert "".join(seen) == "one\ntwo\n", seen


@check
def background_connect_kill():
    h = sbx.commands.run("echo started; sleep 300", background=True)
    eventually(lambda: h.pid in [p.pid for p in sbx.commands.list()])
    again = sbx.commands.connect(h.pid)
    assert sbx.commands.kill(h.pid) is True
    try:
        again.wait()
        raise AssertionError("a killed command ended cleanly")
    except CommandExitException as e:
        assert e.exit_code != 0
    assert sbx.commands.kill(h.pid) is False


@check
def stdin():
    h = sbx.commands.run("cat", background=True, stdin=True)
    sbx.commands.send_stdin(h.pid, "through stdin\n")
    sbx.commands.close_stdin(h.pid)
    assert h.wait().stdout == "through stdin\n"


@check
def files():
    info = sbx.files.write("/tmp/py/a/hello.txt", "hello from python")
    assert info.path == "/tmp/py/a/hello.txt", info
    assert sbx.files.read("/tmp/py/a/hello.txt") == "hello from python"
    assert bytes(sbx.files.read("/tmp/py/a/hello.txt", format="bytes")) == b"hello from python"
    sbx.files.write_files([{"path": "/tmp/py/b.bin", "data": b"\x00\x01\xff"}, {"path": "/tmp/py/c.txt", "data": "c"}])
    names = sorted(e.name for e in sbx.files.list("/tmp/py"))
    assert names == ["a", "b.bin", "c.txt"], names
    assert sbx.files.get_info("/tmp/py/a").type == FileType.DIR
    assert sbx.files.exists("/tmp/py/c.txt") and not sbx.files.exists("/tmp/py/none")
    assert sbx.files.make_dir("/tmp/py/d/e") is True
    sbx.files.rename("/tmp/py/c.txt", "/tmp/py/d/c2.txt")
    assert sbx.files.read("/tmp/py/d/c2.txt") == "c"
    sbx.files.remove("/tmp/py/d")
    assert not sbx.files.exists("/tmp/py/d")
    try:
        sbx.files.read("/tmp/py/missing")
        raise AssertionError("reading a missing file raised nothing")
    except NotFoundException:
        pass


@check
def signed_urls():
    # secure=True: these URLs carry a signature made with the sandbox's access token, no header.
    up = sbx.upload_url("/tmp/py/signed.txt")
    body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"signed.txt\"\r\n\r\nsigned\r\n--b--\r\n"
    req = urllib.request.Request(up, data=body, method="POST", headers={"Content-Type": "multipart/form-data; boundary=b"})
    with urllib.request.urlopen(req, timeout=30) as res:
        assert res.status == 200
    with urllib.request.urlopen(sbx.download_url("/tmp/py/signed.txt"), timeout=30) as res:
        assert res.read() == b"signed"


@check
def sync_watch():
    sbx.files.make_dir("/tmp/py/watched")
    w = sbx.files.watch_dir("/tmp/py/watched")
    sbx.files.write("/tmp/py/watched/new.txt", "x")
    events = eventually(lambda: [e for e in w.get_new_events() if e.name == "new.txt"])
    assert events, events
    w.stop()


@check
def pty():
    h = sbx.pty.create(size=PtySize(rows=24, cols=80), timeout=30)
    sbx.pty.send_stdin(h.pid, b"echo pty-$((6*7))\n")
    sbx.pty.resize(h.pid, PtySize(rows=30, cols=100))
    sbx.pty.send_stdin(h.pid, b"stty size; exit\n")
    out = []
    h.wait(on_pty=out.append)
    text = b"".join(out).decode()
    assert "pty-42" in text and "30 100" in text, text


@check
def info_list_timeout():
    info = sbx.get_info()
    assert info.sandbox_id == sbx.sandbox_id and info.metadata == {"suite": "e2b-python"}, info
    listed = Sandbox.list(query=SandboxQuery(metadata={"suite": "e2b-python"})).next_items()
    assert [s.sandbox_id for s in listed] == [sbx.sandbox_id], listed
    sbx.set_timeout(120)
    assert sbx.is_running()


@check
def pause_and_connect():
    h = sbx.commands.run("sleep 600", background=True)
    sbx.pause()
    assert not sbx.is_running()
    again = Sandbox.connect(sbx.sandbox_id)
    assert again.is_running()
    assert h.pid in [p.pid for p in again.commands.list()]


async def async_client():
    box = await AsyncSandbox.create()
    try:
        r = await box.commands.run("echo async")
        assert r.stdout == "async\n", r
        seen = []
        await box.files.make_dir("/tmp/aw")
        w = await box.files.watch_dir("/tmp/aw", on_event=lambda e: seen.append(e.name))
        await box.files.write("/tmp/aw/f.txt", "async file")
        deadline = time.monotonic() + 10
        while "f.txt" not in seen and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await w.stop()
        assert "f.txt" in seen, seen
        assert await box.files.read("/tmp/aw/f.txt") == "async file"
    finally:
        assert await box.kill() is True
    assert await AsyncSandbox.kill(box.sandbox_id) is False


@check
def async_sandbox():
    asyncio.run(async_client())


@check
def code_interpreter():
    from e2b_code_interpreter import Sandbox as CodeSandbox

    box = CodeSandbox.create()
    try:
        run = box.run_code("x = 20\nprint('hi')\nx + 1")
        assert run.text == "21" and run.logs.stdout == ["hi\n"], run
        assert box.run_code("1/0").error.name == "ZeroDivisionError"
        ctx = box.create_code_context()
        box.run_code("y = 5", context=ctx)
        assert box.run_code("y * 2", context=ctx).text == "10"
        assert box.run_code("y").error.name == "NameError"
        box.remove_code_context(ctx)
    finally:
        box.kill()


@check
def kill():
    assert sbx.kill() is True
    assert not sbx.is_running()
    assert Sandbox.kill(sbx.sandbox_id) is False


sys.exit(failures)
