"""The asyncio client: the same calls, awaited (asyncio.run: no plugin needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import berth
from berth import AsyncBerth


def test_async_round_trip(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncBerth() as client:
            async with await client.sandboxes.create(labels={"suite": "python-sdk-async"}, env={"A": "1"}) as sb:
                r = await sb.run("echo $A; exit 4", timeout=30)
                assert (r.exit_code, r.output) == (4, "1")
                # Two sandboxes' calls at once.
                other = await client.sandboxes.create(labels={"suite": "python-sdk-async"})
                try:
                    a, b = await asyncio.gather(sb.run("echo a", timeout=30), other.run("echo b", timeout=30))
                    assert (a.output, b.output) == ("a", "b")
                finally:
                    await other.delete()

                await sb.files.write("/tmp/a.txt", "text")
                await sb.files.write("/tmp/b.bin", b"\x01\x02")
                assert await sb.files.read("/tmp/a.txt") == "text"
                assert await sb.files.read_bytes("/tmp/b.bin") == b"\x01\x02"
                with pytest.raises(berth.NotFoundError):
                    await sb.files.read("/tmp/missing")
                (tmp_path / "d").mkdir()
                (tmp_path / "d" / "f.txt").write_text("f")
                await sb.files.upload(tmp_path / "d", "/tmp/d")
                assert await sb.files.list("/tmp/d") == ["f.txt"]
                await sb.files.download("/tmp/d", tmp_path / "back")
                assert (tmp_path / "back" / "f.txt").read_text() == "f"

                await sb.edit("create", "/tmp/e.py", file_text="a = 1\n")
                await sb.edit("str_replace", "/tmp/e.py", old_str="a = 1", new_str="a = 2")
                assert await sb.files.read("/tmp/e.py") == "a = 2\n"
                assert "3" in (await sb.run_ipython("print(1 + 2)")).output

                with pytest.raises(berth.CommandTimeoutError):
                    await sb.run("sleep 20", timeout=1)

                page = await sb.events.list()
                await sb.run("echo async-replayed", timeout=30)
                seen = []
                async for e in sb.events.follow(after=page.next_after, idle_timeout=10):
                    seen.append(e)
                    if len(seen) == 2:  # the replayed action and observation; then one live
                        await sb.run("echo async-live", timeout=30)
                    if e.kind == "observation" and e.payload.get("content") == "async-live":
                        break
                assert [e.kind for e in seen] == ["action", "observation", "action", "observation"]
                assert seen[0].seq == page.next_after + 1

                assert (await sb.pause()).state == "paused"
                assert (await sb.resume()).state == "running"
                assert (await client.sandboxes.get(sb.id)).state == "running"
            assert (await client.sandboxes.get(sb.id)).state == "deleted"

            with pytest.raises(berth.NotFoundError):
                await client.sandboxes.get("doesnotexist")
        async with AsyncBerth(api_key="wrong") as bad:
            with pytest.raises(berth.AuthenticationError):
                await bad.sandboxes.list()
        async with AsyncBerth(url="http://127.0.0.1:1") as down:
            with pytest.raises(berth.NetworkError, match=r"http://127\.0\.0\.1:1"):
                await down.health()

    asyncio.run(asyncio.wait_for(main(), 150))
