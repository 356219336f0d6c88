"""exec: a command on its own in the sandbox over the exec WebSocket, sync and async."""

from __future__ import annotations

import asyncio
from typing import List, Tuple

import pytest

import berth
from berth import AsyncBerth, Berth, Sandbox

#: Prints "first", then waits for a line on stdin before printing "second": its second line cannot
#: come before the client has seen the first and answered it, so no clock is needed.
GATED = ["sh", "-c", "echo first; read go; echo second"]


def test_exec_argv_exactly(sandbox: Sandbox) -> None:
    r = sandbox.exec(["printf", "%s|", "a b", "$HOME"])
    assert isinstance(r, berth.ExecResult)
    assert (r.exit_code, r.stdout, r.stderr, r.signal, r.timed_out) == (0, "a b|$HOME|", "", None, False)
    assert r.ok


def test_exec_stdout_and_stderr_apart(sandbox: Sandbox) -> None:
    r = sandbox.exec(["sh", "-c", "echo out; echo err >&2; echo out2"])
    assert (r.stdout, r.stderr) == ("out\nout2\n", "err\n")


def test_exec_exit_code(sandbox: Sandbox) -> None:
    r = sandbox.exec(["sh", "-c", "exit 3"])
    assert (r.exit_code, r.ok, r.signal) == (3, False, None)


def test_exec_cwd_env_and_not_the_agent_shell(sandbox: Sandbox) -> None:
    sandbox.run("export ONLY_IN_SHELL=1; cd /", timeout=30)
    try:
        r = sandbox.exec(["sh", "-c", 'pwd; echo "$V|$ONLY_IN_SHELL"; id -u'], cwd="/usr", env={"V": "x"})
        assert r.stdout == "/usr\nx|\n1000\n"
        assert sandbox.exec(["pwd"]).stdout == "/tmp\n"  # the sandbox's working directory
    finally:
        sandbox.run("cd /tmp", timeout=30)


def test_exec_streams_chunks_to_callbacks(sandbox: Sandbox) -> None:
    events: List[Tuple[str, bytes]] = []
    r = sandbox.exec(
        ["sh", "-c", "echo first; sleep 2; echo second; echo warn >&2"],
        on_stdout=lambda b: events.append(("stdout", b)),
        on_stderr=lambda b: events.append(("stderr", b)),
    )
    events.append(("returned", b""))
    assert events == [("stdout", b"first\n"), ("stdout", b"second\n"), ("stderr", b"warn\n"), ("returned", b"")]
    assert (r.stdout, r.stderr) == ("first\nsecond\n", "warn\n")


def test_exec_first_chunk_arrives_while_the_process_runs(sandbox: Sandbox) -> None:
    events: List[str] = []
    with sandbox.exec_start(GATED, stdin=True) as p:
        assert p.id and p.pid
        for stream, chunk in p:
            events.append(f"{stream}:{chunk.decode()}")
            if chunk == b"first\n":
                assert not p.exited
                p.write(b"go\n")
                events.append("wrote")
        r = p.wait()
    events.append(f"exit:{r.exit_code}")
    assert events == ["stdout:first\n", "wrote", "stdout:second\n", "exit:0"]


def test_exec_stdin_and_close_stdin(sandbox: Sandbox) -> None:
    with sandbox.exec_start(["cat"], stdin=True) as p:
        p.write(b"hello ")
        p.write("w\u00f6rld")
        p.close_stdin()
        r = p.wait()
    assert (r.exit_code, r.stdout, r.stderr) == (0, "hello w\u00f6rld", "")


def test_exec_kill_and_signal_sigint_is_130(sandbox: Sandbox) -> None:
    with sandbox.exec_start(["sleep", "30"]) as p:
        p.kill("SIGINT")
        r = p.wait()
    assert (r.exit_code, r.signal, r.timed_out) == (130, "SIGINT", False)
    with sandbox.exec_start(["sleep", "30"]) as p:
        p.signal("SIGINT")
        assert p.wait().exit_code == 130
    # Once it has exited, signals are nothing to send.
    p.kill()
    with pytest.raises(ValueError):
        p.signal("SIGNOPE")  # type: ignore[arg-type]


def test_exec_timeout(sandbox: Sandbox) -> None:
    r = sandbox.exec(["sh", "-c", "echo before; exec sleep 30"], timeout=1)
    assert r.timed_out is True
    assert r.stdout == "before\n"
    assert r.exit_code != 0 and r.signal is not None


def test_exec_pty(sandbox: Sandbox) -> None:
    chunks: List[Tuple[str, bytes]] = []
    with sandbox.exec_start(["sh", "-c", "test -t 0 && stty size"], pty={"cols": 91, "rows": 27}) as p:
        chunks.extend(p)
        r = p.wait()
    assert r.exit_code == 0
    assert {s for s, _ in chunks} == {"pty"}
    assert r.stdout.strip() == "27 91"


def test_exec_program_not_found(sandbox: Sandbox) -> None:
    r = sandbox.exec(["no-such-program-here"])
    assert r.exit_code == 127
    assert r.stderr.startswith("berth:")


def test_exec_argv_must_be_a_list(sandbox: Sandbox) -> None:
    with pytest.raises(TypeError):
        sandbox.exec("echo hi")
    with pytest.raises(TypeError):
        sandbox.exec([])


def test_exec_missing_sandbox_is_not_found(client: Berth) -> None:
    with pytest.raises(berth.NotFoundError) as e:
        client.sandbox("doesnotexist").exec(["true"])
    assert e.value.code == "NOT_FOUND"
    with pytest.raises(berth.NotFoundError):
        client.sandbox("doesnotexist").exec_start(["true"])


def test_exec_wrong_key_is_authentication_error(sandbox: Sandbox) -> None:
    with Berth(api_key="wrong-key") as bad:
        with pytest.raises(berth.AuthenticationError):
            bad.sandbox(sandbox.id).exec(["true"])


def test_async_exec(sandbox: Sandbox) -> None:
    async def main() -> None:
        async with AsyncBerth() as client:
            sb = client.sandbox(sandbox.id)

            r = await sb.exec(["printf", "%s|", "a b", "$HOME"])
            assert (r.exit_code, r.stdout, r.stderr) == (0, "a b|$HOME|", "")
            r = await sb.exec(["sh", "-c", "echo out; echo err >&2; exit 3"])
            assert (r.exit_code, r.stdout, r.stderr) == (3, "out\n", "err\n")

            # Callbacks, plain and coroutine functions.
            events: List[Tuple[str, bytes]] = []

            async def on_stderr(b: bytes) -> None:
                events.append(("stderr", b))

            r = await sb.exec(
                ["sh", "-c", "echo first; sleep 2; echo second; echo warn >&2"],
                on_stdout=lambda b: events.append(("stdout", b)),
                on_stderr=on_stderr,
            )
            assert events == [("stdout", b"first\n"), ("stdout", b"second\n"), ("stderr", b"warn\n")]

            order: List[str] = []
            async with await sb.exec_start(GATED, stdin=True) as p:
                async for stream, chunk in p:
                    order.append(f"{stream}:{chunk.decode()}")
                    if chunk == b"first\n":
                        assert not p.exited
                        await p.write("go\n")
                        order.append("wrote")
                order.append(f"exit:{(await p.wait()).exit_code}")
            assert order == ["stdout:first\n", "wrote", "stdout:second\n", "exit:0"]

            async with await sb.exec_start(["cat"], stdin=True) as p:
                await p.write(b"in")
                await p.write("put")
                await p.close_stdin()
                assert (await p.wait()).stdout == "input"

            async with await sb.exec_start(["sleep", "30"]) as p:
                await p.kill("SIGINT")
                r = await p.wait()
            assert (r.exit_code, r.signal) == (130, "SIGINT")

            r = await sb.exec(["sleep", "30"], timeout=1)
            assert r.timed_out is True

            # Two at once on one client.
            a, b = await asyncio.gather(sb.exec(["echo", "a"]), sb.exec(["echo", "b"]))
            assert (a.stdout, b.stdout) == ("a\n", "b\n")

            with pytest.raises(berth.NotFoundError):
                await client.sandbox("doesnotexist").exec(["true"])

    asyncio.run(asyncio.wait_for(main(), 120))
