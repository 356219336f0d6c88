"""Drives a Berth control plane with OpenHands' own RemoteRuntime (openhands-ai from PyPI).

Run by test/integration/openhands-client.test.ts with the venv's Python:

    python remote_runtime_driver.py runtime <out.json>   # actions, upload/download/list, pause/resume, close
    python remote_runtime_driver.py build <out.json>     # OpenHands' image build flow on the base image

The configuration comes from the environment the way the OpenHands app reads it (RUNTIME=remote,
SANDBOX_REMOTE_RUNTIME_API_URL, SANDBOX_API_KEY, SANDBOX_RUNTIME_CONTAINER_IMAGE or
SANDBOX_BASE_CONTAINER_IMAGE), through load_openhands_config(); the runtime class is the one
get_runtime_cls() picks. Every call to Berth goes through OpenHands' classes: this file only
chooses the actions and records what came back. It writes one JSON object to <out.json> with the
observations (type, content, exit code, ...) for the test to assert on; OpenHands' log goes to
stdout/stderr. A step that raises is recorded with its exception and the run goes on, so one
failure does not hide the others.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
import zipfile
from typing import Any, Callable


PACKAGE_ROOT: str | None = None


def _package_root_with_microagents() -> None:
    """OpenHands' build flow copies `<the openhands package's parent>/microagents` into the build
    context (runtime_build.prep_build_folder); that directory is in OpenHands' source tree but not
    in the PyPI wheel, so from a pip install the build fails with FileNotFoundError before any
    request. Import the same installed package from a copy (14 MB; a symlink makes OpenHands'
    source hash fail on the recursion) with an empty microagents/ beside it. Nothing of
    OpenHands' code changes.
    """
    import importlib.util

    spec = importlib.util.find_spec('openhands')
    assert spec is not None and spec.origin is not None
    package = os.path.dirname(spec.origin)
    if os.path.isdir(os.path.join(os.path.dirname(package), 'microagents')):
        return
    # In the working directory, which the test removes (so does main(), at the end).
    root = tempfile.mkdtemp(prefix='oh-package-root-', dir=os.getcwd())
    global PACKAGE_ROOT
    PACKAGE_ROOT = root
    import shutil

    shutil.copytree(package, os.path.join(root, 'openhands'), symlinks=True)
    os.mkdir(os.path.join(root, 'microagents'))
    sys.path.insert(0, root)


if len(sys.argv) > 1 and sys.argv[1] == 'build':
    _package_root_with_microagents()

import httpx  # noqa: E402

from openhands.core.config import load_openhands_config  # noqa: E402
from openhands.events import EventStream
from openhands.events.action import (
    CmdRunAction,
    FileEditAction,
    FileReadAction,
    FileWriteAction,
    IPythonRunCellAction,
)
from openhands.events.event import FileEditSource
from openhands.events.observation import Observation
from openhands.llm.llm_registry import LLMRegistry
from openhands.runtime import get_runtime_cls
from openhands.runtime.impl.remote.remote_runtime import RemoteRuntime
from openhands.runtime.plugins import AgentSkillsRequirement, JupyterRequirement
from openhands.storage import get_file_store
from openhands.utils.async_utils import call_async_from_sync

RESULTS: dict[str, Any] = {'steps': {}, 'errors': {}}


def obs_dict(obs: Observation) -> dict[str, Any]:
    d: dict[str, Any] = {'type': type(obs).__name__, 'content': obs.content}
    for attr in ('exit_code', 'path', 'command', 'error_id'):
        if hasattr(obs, attr):
            d[attr] = getattr(obs, attr)
    if hasattr(obs, 'metadata') and hasattr(obs.metadata, 'working_dir'):
        d['working_dir'] = obs.metadata.working_dir
    return d


def step(name: str, fn: Callable[[], Any]) -> Any:
    """Runs one step; records its result (or its exception) under `name`."""
    t0 = time.monotonic()
    try:
        value = fn()
        RESULTS['steps'][name] = value
        return value
    except Exception as e:  # noqa: BLE001 - recorded for the test to report
        RESULTS['errors'][name] = f'{type(e).__name__}: {e}\n{traceback.format_exc()[-3000:]}'
        return None
    finally:
        RESULTS.setdefault('timings', {})[name] = round(time.monotonic() - t0, 2)


def make_runtime(sid: str, keep_alive: bool = False) -> RemoteRuntime:
    config = load_openhands_config()
    config.sandbox.keep_runtime_alive = keep_alive
    runtime_cls = get_runtime_cls(config.runtime)
    RESULTS['runtime_class'] = f'{runtime_cls.__module__}.{runtime_cls.__name__}'
    file_store = get_file_store('memory')
    event_stream = EventStream(sid, file_store)
    runtime = runtime_cls(
        config=config,
        event_stream=event_stream,
        llm_registry=LLMRegistry(config),
        sid=sid,
        plugins=[AgentSkillsRequirement(), JupyterRequirement()],
        headless_mode=True,
    )
    assert isinstance(runtime, RemoteRuntime)
    return runtime


def act(runtime: RemoteRuntime, action: Any, timeout: int = 60) -> dict[str, Any]:
    action.set_hard_timeout(timeout)
    return obs_dict(runtime.run_action(action))


def api_get(path: str) -> dict[str, Any]:
    """A runtime-API call the test makes itself (not OpenHands): what the control plane says now."""
    base = os.environ['SANDBOX_REMOTE_RUNTIME_API_URL']
    r = httpx.get(f'{base}{path}', headers={'X-API-Key': os.environ['SANDBOX_API_KEY']}, timeout=30)
    return {'status': r.status_code, 'json': r.json() if r.content else None}


def runtime_flow() -> None:
    sid = f'oh-client-{int(time.time() * 1000)}'
    RESULTS['sid'] = sid
    rt = make_runtime(sid)
    step('connect', lambda: call_async_from_sync(rt.connect) or {'runtime_id': rt.runtime_id, 'url': rt.runtime_url, 'web_hosts': rt.web_hosts})
    RESULTS['runtime_id'] = rt.runtime_id
    RESULTS['container_image'] = getattr(rt, 'container_image', None)
    RESULTS['startup_command'] = rt.get_action_execution_server_startup_command()
    if 'connect' in RESULTS['errors']:
        return

    ws = rt.config.workspace_mount_path_in_sandbox
    step('run', lambda: act(rt, CmdRunAction(command='echo hello from berth; id -un; id -u; pwd')))
    step('run_exit_code', lambda: act(rt, CmdRunAction(command='bash -c "exit 3"')))
    step('run_cd_persists', lambda: act(rt, CmdRunAction(command='mkdir -p sub && cd sub && true')))
    step('run_cwd', lambda: act(rt, CmdRunAction(command='pwd')))
    step('run_back', lambda: act(rt, CmdRunAction(command=f'cd {ws}')))
    # Environment through OpenHands' add_env_vars: one IPython cell and one shell export (+ ~/.bashrc).
    step('add_env_vars', lambda: rt.add_env_vars({'BERTH_OH_VAR': 'set by add_env_vars'}))
    step('env_shell', lambda: act(rt, CmdRunAction(command='echo "$BERTH_OH_VAR"')))
    step(
        'env_ipython',
        lambda: act(rt, IPythonRunCellAction(code='import os\nprint(os.environ.get("BERTH_OH_VAR"))')),
    )
    step('ipython', lambda: act(rt, IPythonRunCellAction(code='x = 6 * 7\nprint(x)')))
    step('ipython_state', lambda: act(rt, IPythonRunCellAction(code='print(x + 1)')))
    step('ipython_cwd', lambda: act(rt, IPythonRunCellAction(code='import os\nprint(os.getcwd())')))

    step('write', lambda: act(rt, FileWriteAction(path=f'{ws}/written.txt', content='alpha\nbeta\ngamma\n')))
    step('read', lambda: act(rt, FileReadAction(path=f'{ws}/written.txt')))
    step('read_range', lambda: act(rt, FileReadAction(path=f'{ws}/written.txt', start=1, end=2)))
    step('read_missing', lambda: act(rt, FileReadAction(path=f'{ws}/no-such-file.txt')))
    step(
        'edit_create',
        lambda: act(
            rt,
            FileEditAction(
                path=f'{ws}/edited.py',
                command='create',
                file_text='def greet():\n    return "hi"\n',
                impl_source=FileEditSource.OH_ACI,
            ),
        ),
    )
    step(
        'edit_replace',
        lambda: act(
            rt,
            FileEditAction(
                path=f'{ws}/edited.py',
                command='str_replace',
                old_str='return "hi"',
                new_str='return "hello"',
                impl_source=FileEditSource.OH_ACI,
            ),
        ),
    )
    step(
        'edit_view',
        lambda: act(
            rt, FileEditAction(path=f'{ws}/edited.py', command='view', impl_source=FileEditSource.OH_ACI)
        ),
    )
    step('edit_result', lambda: act(rt, CmdRunAction(command=f'cat {ws}/edited.py')))

    # AgentSkills in the kernel (the agent_skills plugin): open_file and file_editor.
    step('skills_open_file', lambda: act(rt, IPythonRunCellAction(code=f"open_file('{ws}/written.txt')")))
    step(
        'skills_file_editor',
        lambda: act(
            rt,
            IPythonRunCellAction(
                code=f"print(file_editor(command='create', path='{ws}/by_skills.txt', file_text='made by file_editor\\n'))"
            ),
        ),
    )
    step('skills_result', lambda: act(rt, CmdRunAction(command=f'cat {ws}/by_skills.txt')))

    # Upload (copy_to: one file, then a directory as a zip), list, download (copy_from: a zip).
    host = tempfile.mkdtemp(prefix='oh-client-', dir=os.getcwd())
    with open(os.path.join(host, 'one.txt'), 'w') as f:
        f.write('uploaded one\n')
    os.makedirs(os.path.join(host, 'tree', 'deep'))
    with open(os.path.join(host, 'tree', 'a.txt'), 'w') as f:
        f.write('tree a\n')
    with open(os.path.join(host, 'tree', 'deep', 'b.txt'), 'w') as f:
        f.write('tree b\n')
    step('upload_file', lambda: rt.copy_to(os.path.join(host, 'one.txt'), f'{ws}/up'))
    step('upload_dir', lambda: rt.copy_to(os.path.join(host, 'tree'), f'{ws}/up', recursive=True))
    step('uploaded', lambda: act(rt, CmdRunAction(command=f'cd {ws}/up && find . -type f | sort && cat one.txt tree/deep/b.txt')))
    step('list_root', lambda: rt.list_files())
    step('list_up', lambda: rt.list_files(f'{ws}/up'))
    step('list_tree', lambda: rt.list_files(f'{ws}/up/tree'))

    def download() -> dict[str, str]:
        path = rt.copy_from(f'{ws}/up')
        try:
            with zipfile.ZipFile(path) as z:
                return {n: z.read(n).decode() for n in sorted(z.namelist()) if not n.endswith('/')}
        finally:
            os.unlink(path)

    step('download', download)

    def close_and_check() -> dict[str, Any]:
        rt.close()
        return {'session_after': api_get(f'/sessions/{sid}')}

    step('close', close_and_check)


def refused_flow() -> None:
    """A start the control plane refuses: connect raises OpenHands' own error for it, and its close
    (a /stop with runtime_id null, as after any failed connect) does not replace that error."""
    sid = f'oh-client-refused-{int(time.time() * 1000)}'
    rt = make_runtime(sid)
    rt.config.sandbox.runtime_container_image = 'berth-no-such-image:never'
    try:
        call_async_from_sync(rt.connect)
        RESULTS['steps']['refused_connect'] = {'raised': None}
    except Exception as e:  # noqa: BLE001
        cause = e.__cause__
        RESULTS['steps']['refused_connect'] = {
            'raised': type(e).__name__,
            'cause': f'{type(cause).__name__}: {cause}' if cause else None,
            'closed': rt._runtime_closed,
        }
    RESULTS['steps']['refused_session'] = api_get(f'/sessions/{sid}')


def pause_resume_flow() -> None:
    sid = f'oh-client-keep-{int(time.time() * 1000)}'
    RESULTS['keep_sid'] = sid
    first = make_runtime(sid, keep_alive=True)
    step('keep_connect', lambda: call_async_from_sync(first.connect) or first.runtime_id)
    if 'keep_connect' in RESULTS['errors']:
        return
    runtime_id = first.runtime_id
    step(
        'keep_setup',
        lambda: act(first, CmdRunAction(command='sleep 600 >/dev/null 2>&1 & echo $! > /tmp/bg.pid; echo kept > /tmp/kept.txt; cat /tmp/bg.pid')),
    )

    def close_pauses() -> dict[str, Any]:
        first.close()  # keep_runtime_alive + pause_closed_runtimes: POST /pause
        return {'session': api_get(f'/sessions/{sid}'), 'runtime': api_get(f'/runtime/{runtime_id}')}

    step('keep_close_pauses', close_pauses)

    # A new RemoteRuntime for the same conversation finds it paused and resumes it.
    second = make_runtime(sid, keep_alive=True)
    step('resume_connect', lambda: call_async_from_sync(second.connect) or {'runtime_id': second.runtime_id})
    if 'resume_connect' in RESULTS['errors']:
        return
    step('resumed_state', lambda: act(second, CmdRunAction(command='kill -0 "$(cat /tmp/bg.pid)" && echo still-running; cat /tmp/kept.txt')))

    # Paused behind the client's back: its next request gets a 503 and OpenHands resumes by itself
    # (keep_runtime_alive), then sends the request again. A request other than an action: in 0.62 an
    # action that meets the 503 deadlocks inside OpenHands, whatever the server does (it holds the
    # non-reentrant action_semaphore while _resume_runtime -> setup_initial_env runs actions).
    # A later action then checks that the resumed runtime still has its processes.
    def pause_behind() -> dict[str, Any]:
        second._send_runtime_api_request(
            'POST',
            f'{second.config.sandbox.remote_runtime_api_url}/pause',
            json={'runtime_id': second.runtime_id},
        )
        return {'session': api_get(f'/sessions/{sid}')}

    step('pause_behind', pause_behind)
    step('after_503', lambda: second.list_files('/tmp'))
    step('after_503_run', lambda: act(second, CmdRunAction(command='kill -0 "$(cat /tmp/bg.pid)" && echo still-running after 503')))
    step('after_503_session', lambda: api_get(f'/sessions/{sid}'))

    def close_stops() -> dict[str, Any]:
        second.config.sandbox.keep_runtime_alive = False
        second.close()  # POST /stop
        return {'session': api_get(f'/sessions/{sid}'), 'runtime': api_get(f'/runtime/{runtime_id}')}

    step('stop_close', close_stops)


def build_flow() -> None:
    sid = f'oh-client-build-{int(time.time() * 1000)}'
    RESULTS['sid'] = sid
    rt = make_runtime(sid)
    RESULTS['base_image'] = rt.config.sandbox.base_container_image
    RESULTS['runtime_container_image_config'] = rt.config.sandbox.runtime_container_image

    # The names OpenHands will ask for (runtime_build.build_runtime_image_in_folder), computed with
    # its own functions, so the test can remove exactly these afterwards; and whether they already
    # exist (then OpenHands would not build, and the test says so).
    from openhands.runtime.utils import runtime_build as rb

    prefix = api_get('/registry_prefix')['json']['registry_prefix']
    os.environ['OH_RUNTIME_RUNTIME_IMAGE_REPO'] = prefix.rstrip('/') + '/runtime'
    base = rt.config.sandbox.base_container_image
    repo, _ = rb.get_runtime_image_repo_and_tag(base)
    version = rb.get_version()
    lock = f'oh_v{version}_{rb.get_hash_for_lock_files(base, rt.config.enable_browser)}'
    versioned = f'oh_v{version}_{rb.get_tag_for_versioned_image(base)}'
    names = [f'{repo}:{lock}_{rb.get_hash_for_source_files()}', f'{repo}:{lock}', f'{repo}:{versioned}']
    RESULTS['image_names'] = names
    RESULTS['preexisting'] = [n for n in names if api_get(f'/image_exists?image={n}')['json']['exists']]
    step('build_connect', lambda: call_async_from_sync(rt.connect) or {'runtime_id': rt.runtime_id})
    RESULTS['container_image'] = getattr(rt, 'container_image', None)
    RESULTS['image_repo'] = os.environ.get('OH_RUNTIME_RUNTIME_IMAGE_REPO')
    if 'build_connect' in RESULTS['errors']:
        return
    RESULTS['runtime_id'] = rt.runtime_id
    step('build_run', lambda: act(rt, CmdRunAction(command='echo built; id -un; cat /etc/os-release | head -1')))
    step('build_ipython', lambda: act(rt, IPythonRunCellAction(code='print(2 ** 10)')))
    step('build_close', lambda: rt.close() or api_get(f'/sessions/{sid}'))


def main() -> None:
    mode, out = sys.argv[1], sys.argv[2]
    t0 = time.monotonic()
    try:
        if mode == 'runtime':
            runtime_flow()
            pause_resume_flow()
            refused_flow()
        elif mode == 'build':
            build_flow()
        else:
            raise SystemExit(f'unknown mode {mode}')
    finally:
        RESULTS['seconds'] = round(time.monotonic() - t0, 1)
        import openhands

        RESULTS['openhands_version'] = getattr(openhands, '__version__', None)
        with open(out, 'w') as f:
            json.dump(RESULTS, f, indent=2, default=str)
        if PACKAGE_ROOT:
            import shutil

            shutil.rmtree(PACKAGE_ROOT, ignore_errors=True)


if __name__ == '__main__':
    main()
    # OpenHands leaves threads behind (event stream, atexit close hooks); the results are written.
    sys.stdout.flush()
    os._exit(0)
