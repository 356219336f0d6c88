"""Starts the reference OpenHands V0 action-execution server bound to loopback only.

Usage (inside the oracle venv):
    python scripts/oracle/launch.py <PORT> --working-dir DIR [--plugins agent_skills jupyter]
           --username USER --user-id UID --no-enable-browser

It runs `openhands.runtime.action_execution_server` as `__main__` exactly as LocalRuntime does, with
two patches so nothing listens beyond 127.0.0.1: uvicorn's host (the reference hard-codes 0.0.0.0) and
the Jupyter kernel gateway's --KernelGatewayApp.ip. Nothing else is changed.
"""

import asyncio
import os
import runpy
import sys

import uvicorn

HOST = os.environ.get('BERTH_ORACLE_HOST', '127.0.0.1')

_run = uvicorn.run


def _loopback_run(app, *args, **kwargs):
    kwargs['host'] = HOST
    return _run(app, *args, **kwargs)


uvicorn.run = _loopback_run

_create_subprocess_shell = asyncio.create_subprocess_shell


async def _loopback_shell(cmd, *args, **kwargs):
    if isinstance(cmd, str):
        cmd = cmd.replace('--KernelGatewayApp.ip=0.0.0.0', f'--KernelGatewayApp.ip={HOST}')
    return await _create_subprocess_shell(cmd, *args, **kwargs)


asyncio.create_subprocess_shell = _loopback_shell

sys.argv = ['action_execution_server', *sys.argv[1:]]
runpy.run_module('openhands.runtime.action_execution_server', run_name='__main__', alter_sys=True)
