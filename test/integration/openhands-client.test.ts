/**
 * The real OpenHands (openhands-ai 0.62 from PyPI) against a Berth control plane, end to end, all
 * through OpenHands' own code with RUNTIME=remote, SANDBOX_REMOTE_RUNTIME_API_URL at the control
 * plane's /openhands and SANDBOX_API_KEY set:
 *
 * - its RemoteRuntime class (test/openhands/remote_runtime_driver.py): connect, shell, IPython with
 *   AgentSkills, edit, read, write, upload, download, list, add_env_vars, pause on close and resume
 *   with keep_runtime_alive (a new client for the paused session, and a 503 behind the client's
 *   back), stop on close, a refused start;
 * - its image build flow (no runtime image; the base is Berth's base image): OpenHands prepares the
 *   build context itself, Berth layers its runtime on the context's FROM base;
 * - its headless main loop (`python -m openhands.core.main`) replaying a trajectory (no LLM: the
 *   LLM's base_url is a local listener that must see no connection), whose files must then be in
 *   the sandbox's workspace.
 *
 * The venv is the oracle's (scripts/oracle/setup.sh, $BERTH_ORACLE_VENV, default /opt/berth-oracle):
 * used as it is when OpenHands imports there, else made by setup.sh. When it cannot be made (PyPI
 * unreachable, no Python 3.12/3.13) every test is skipped, loudly: `SKIPPED: openhands-client (...)`.
 * The three Python runs go at once; each is killed past its time limit.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/api/start.js';
import { DEFAULT_BASE_IMAGE } from '../../src/config/docker.js';
import { pypiUnreachable } from '../support/pypi.js';
import { type CommandRun, runCommand as run } from '../support/run-command.js';
import { api, startInProcess } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';

const ROOT = resolve(import.meta.dirname, '../..');
const VENV = process.env.BERTH_ORACLE_VENV || '/opt/berth-oracle';
const PYTHON = join(VENV, 'bin', 'python');
const SETUP = join(ROOT, 'scripts', 'oracle', 'setup.sh');
const DRIVER = join(ROOT, 'test', 'openhands', 'remote_runtime_driver.py');
/** setup.sh on a fresh machine takes about 5 minutes (several hundred MB from PyPI). */
const SETUP_TIMEOUT_MS = 15 * 60_000;
/** Each Python run is killed past this (they take 10 to 60 s; the build waits OpenHands' 30 s poll). */
const RUN_TIMEOUT_MS = 4 * 60_000;
/** A test waits for its Python run (they run at once, from beforeAll). */
const TEST_TIMEOUT_MS = RUN_TIMEOUT_MS + 30_000;

const unavailable = await engineAvailable();
if (unavailable) console.warn(`SKIPPED: openhands-client (no Docker engine: ${unavailable})`);

type Run = CommandRun;

/** OpenHands in the oracle's venv (made by setup.sh if missing), or why it cannot be had here. */
async function ensureOpenHands(): Promise<{ python: string } | { skipped: string }> {
  const probe = ['-c', 'import openhands.runtime.impl.remote.remote_runtime, openhands.core.main'];
  if (existsSync(PYTHON) && (await run(PYTHON, probe, { timeoutMs: 120_000 })).code === 0) {
    return { python: PYTHON };
  }
  console.log(`openhands-client: installing openhands-ai into ${VENV} with scripts/oracle/setup.sh`);
  const setup = await run('bash', [SETUP], {
    env: { ...process.env, BERTH_ORACLE_VENV: VENV },
    timeoutMs: SETUP_TIMEOUT_MS,
  });
  if (setup.code === 0 && (await run(PYTHON, probe, { timeoutMs: 120_000 })).code === 0) {
    return { python: PYTHON };
  }
  if (/no Python 3\.12\/3\.13 found/.test(setup.out)) {
    return { skipped: 'no Python 3.12 or 3.13 to make the venv with (openhands-ai 0.62 needs one)' };
  }
  const unreachable = pypiUnreachable(setup, 'scripts/oracle/setup.sh');
  if (unreachable) return { skipped: unreachable };
  throw new Error(`scripts/oracle/setup.sh failed (exit ${setup.code}):\n${setup.out.slice(-4000)}`);
}

type Obs = { type: string; content: string; exit_code?: number; path?: string; working_dir?: string };
interface DriverResult {
  steps: Record<string, any>;
  errors: Record<string, string>;
  timings: Record<string, number>;
  seconds: number;
  openhands_version: string;
  runtime_class: string;
  [k: string]: any;
}

/** A local listener that counts connections: the LLM's base_url, which nothing may call. */
async function connectionCounter(): Promise<{ server: Server; url: string; count: () => number }> {
  let n = 0;
  const server = createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${port}/v1`, count: () => n };
}

describe.skipIf(unavailable !== undefined)("the real OpenHands' RemoteRuntime and main loop on Berth", () => {
  let tool: { python: string } | { skipped: string };
  let cp: RunningControlPlane & { apiKey: string };
  let work: string;
  let llm: Awaited<ReturnType<typeof connectionCounter>>;
  const runs: Record<string, Promise<{ run: Run; result?: DriverResult }>> = {};
  const timings: Record<string, number> = {};
  const suiteStart = performance.now();
  // At most 16 characters: generate_sid keeps the first 16 of a longer name before its hash.
  const HEADLESS_NAME = `oh-${Date.now().toString(36)}`;

  /** The environment the OpenHands app reads (load_from_env), nothing of this process's own. */
  const ohEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: join(work, 'home'),
    LANG: 'C.UTF-8',
    PYTHONUNBUFFERED: '1',
    LOG_LEVEL: 'info',
    RUNTIME: 'remote',
    SANDBOX_REMOTE_RUNTIME_API_URL: `${cp.url}/openhands`,
    SANDBOX_API_KEY: cp.apiKey,
    // No call may leave this machine: no telemetry, no LLM.
    OPENHANDS_DISABLE_TELEMETRY: '1',
    ...extra,
  });

  const driver = (mode: 'runtime' | 'build', env: Record<string, string>) => {
    const out = join(work, `${mode}.json`);
    return run((tool as { python: string }).python, [DRIVER, mode, out], {
      cwd: work,
      env: ohEnv(env),
      timeoutMs: RUN_TIMEOUT_MS,
    }).then((r) => {
      timings[mode] = r.seconds;
      return {
        run: r,
        result: existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as DriverResult) : undefined,
      };
    });
  };

  const headless = () => {
    const dir = join(work, 'headless');
    mkdirSync(dir, { recursive: true });
    // A trajectory as OpenHands saves one: the user's task, then the agent's actions.
    const trajectory = [
      {
        id: 0,
        source: 'user',
        action: 'message',
        args: {
          content: 'Write hello.txt and notes.md in the workspace, then finish.',
          wait_for_response: false,
        },
      },
      {
        id: 1,
        source: 'agent',
        action: 'run',
        args: {
          command: "mkdir -p out && echo 'hello from the headless loop' > out/hello.txt && cat out/hello.txt",
          is_input: false,
          thought: 'Write the first file.',
          blocking: false,
          hidden: false,
          confirmation_state: 'confirmed',
        },
        timeout: 60,
      },
      {
        id: 2,
        source: 'agent',
        action: 'write',
        args: { path: '/workspace/notes.md', content: '# Notes\nwritten by FileWriteAction', thought: '' },
      },
      {
        id: 3,
        source: 'agent',
        action: 'edit',
        args: {
          path: '/workspace/notes.md',
          command: 'str_replace',
          old_str: 'written by FileWriteAction',
          new_str: 'written by FileWriteAction, edited by the editor',
          impl_source: 'oh_aci',
          thought: '',
        },
      },
      {
        id: 4,
        source: 'agent',
        action: 'run_ipython',
        args: {
          code: "open('/workspace/from_ipython.txt', 'w').write('ipython wrote this')\nprint(open('/workspace/out/hello.txt').read())",
          thought: '',
          include_extra: true,
          confirmation_state: 'confirmed',
          kernel_init_code: '',
        },
      },
      {
        id: 5,
        source: 'agent',
        action: 'finish',
        args: { final_thought: 'The files are written.', outputs: {}, thought: '' },
      },
    ];
    writeFileSync(join(dir, 'trajectory.json'), JSON.stringify(trajectory, null, 2));
    // keep_runtime_alive without pausing: the sandbox outlives the run, so its workspace can be read.
    writeFileSync(
      join(dir, 'config.toml'),
      [
        '[core]',
        'runtime = "remote"',
        'file_store = "memory"',
        'max_iterations = 10',
        `replay_trajectory_path = "${join(dir, 'trajectory.json')}"`,
        `save_trajectory_path = "${join(dir, 'saved-trajectory.json')}"`,
        '',
        '[llm]',
        'model = "openai/berth-no-llm"',
        'api_key = "not-used"',
        `base_url = "${llm.url}"`,
        'num_retries = 0',
        '',
        '[sandbox]',
        'keep_runtime_alive = true',
        'pause_closed_runtimes = false',
        '',
      ].join('\n'),
    );
    // The task is read from standard input when it is not a terminal: an empty line, as replay wants.
    return run(
      (tool as { python: string }).python,
      ['-m', 'openhands.core.main', '--config-file', join(dir, 'config.toml'), '--name', HEADLESS_NAME],
      {
        cwd: dir,
        env: ohEnv({ SANDBOX_RUNTIME_CONTAINER_IMAGE: runtimeImage }),
        timeoutMs: RUN_TIMEOUT_MS,
        input: '\n',
      },
    ).then((r) => {
      timings.headless = r.seconds;
      return { run: r };
    });
  };

  let runtimeImage: string;

  beforeAll(async () => {
    tool = await ensureOpenHands();
    if ('skipped' in tool) {
      console.warn(`SKIPPED: openhands-client (${tool.skipped})`);
      return;
    }
    work = mkdtempSync(join(tmpdir(), 'berth-oh-client-'));
    mkdirSync(join(work, 'home'));
    llm = await connectionCounter();
    cp = await startInProcess({ poolSize: 0 });
    runtimeImage = await cp.manager['settings'].defaultImage();
    timings.setup = Math.round((performance.now() - suiteStart) / 100) / 10;
    runs.runtime = driver('runtime', { SANDBOX_RUNTIME_CONTAINER_IMAGE: runtimeImage });
    runs.build = driver('build', { SANDBOX_BASE_CONTAINER_IMAGE: DEFAULT_BASE_IMAGE });
    runs.headless = headless();
  }, SETUP_TIMEOUT_MS + 240_000);

  afterAll(async () => {
    await Promise.allSettled(Object.values(runs));
    if (cp) {
      const built = (await runs.build?.catch(() => undefined))?.result;
      for (const rec of cp.manager.list({})) {
        if (rec.state !== 'deleted') await cp.manager.delete(rec.id).catch(() => undefined);
      }
      await cp.close();
      // Only the names OpenHands' build asked for (computed by the driver with OpenHands' functions).
      const names: string[] = built?.image_names ?? [];
      if (names.length) spawnSync('docker', ['rmi', ...names], { stdio: 'ignore' });
    }
    // Made before the control plane starts: gone whether or not it started.
    llm?.server.close();
    if (work) rmSync(work, { recursive: true, force: true });
    timings.total = Math.round((performance.now() - suiteStart) / 100) / 10;
    console.log(`openhands-client timings (s): ${JSON.stringify(timings)}`);
  }, 180_000);

  const skipIfNoTool = (ctx: { skip: (note?: string) => void }) => {
    if ('skipped' in tool) ctx.skip(`SKIPPED: openhands-client (${tool.skipped})`);
  };

  /** The driver's result, failing with its output when it did not finish cleanly. */
  const resultOf = async (mode: 'runtime' | 'build'): Promise<DriverResult> => {
    const { run: r, result } = await runs[mode]!;
    expect(
      r.timedOut,
      `the ${mode} driver ran longer than ${RUN_TIMEOUT_MS / 1000} s:\n${r.out.slice(-4000)}`,
    ).toBe(false);
    expect(
      result,
      `the ${mode} driver wrote no result (exit ${r.code}):\n${r.out.slice(-4000)}`,
    ).toBeDefined();
    return result!;
  };

  it(
    "RemoteRuntime (OpenHands' own class) connects and runs shell, IPython, file and transfer actions",
    async (ctx) => {
      skipIfNoTool(ctx);
      const r = await resultOf('runtime');
      const s = r.steps as Record<string, Obs & any>;
      expect(r.openhands_version).toMatch(/^0\.62\./);
      expect(r.runtime_class).toBe('openhands.runtime.impl.remote.remote_runtime.RemoteRuntime');
      const noErrors = [
        'connect',
        'run',
        'ipython',
        'write',
        'read',
        'edit_create',
        'upload_file',
        'upload_dir',
      ];
      for (const name of noErrors) expect(r.errors[name], name).toBeUndefined();
      expect(r.errors, JSON.stringify(r.errors, null, 2)).toEqual({});

      expect(s.connect.url).toBe(`${cp.url}/api/sandboxes/${r.runtime_id}/runtime`);
      expect(Object.keys(s.connect.web_hosts)).toHaveLength(2);
      expect(r.container_image).toBe(runtimeImage);
      // The command OpenHands sent to /start: its own server's, with the plugins asked for.
      expect(r.startup_command).toEqual(expect.arrayContaining(['--plugins', 'agent_skills', 'jupyter']));

      // Shell: output, user, working dir, exit codes, a cd that stays.
      expect(s.run).toMatchObject({
        type: 'CmdOutputObservation',
        exit_code: 0,
        content: 'hello from berth\nopenhands\n1000\n/workspace',
        working_dir: '/workspace',
      });
      expect(s.run_exit_code).toMatchObject({ type: 'CmdOutputObservation', exit_code: 3 });
      expect(s.run_cd_persists.working_dir).toBe('/workspace/sub');
      expect(s.run_cwd).toMatchObject({ content: '/workspace/sub', working_dir: '/workspace/sub' });
      // add_env_vars (OpenHands' own: an IPython cell and a shell export) reached both.
      expect(s.env_shell.content).toBe('set by add_env_vars');
      expect(s.env_ipython.content.split('\n')[0]).toBe('set by add_env_vars');

      // IPython: output, state kept between cells, the Jupyter suffix OpenHands' agents read.
      expect(s.ipython.type).toBe('IPythonRunCellObservation');
      expect(s.ipython.content).toMatch(/^42\n\[Jupyter current working directory: \/workspace\]/);
      expect(s.ipython_state.content.split('\n')[0]).toBe('43');
      expect(s.ipython_cwd.content.split('\n')[0]).toBe('/workspace');

      // Write and read (the reference's write appends a newline to the last line, so does Berth).
      expect(s.write).toMatchObject({ type: 'FileWriteObservation', path: '/workspace/written.txt' });
      expect(s.read).toMatchObject({ type: 'FileReadObservation', content: 'alpha\nbeta\ngamma\n\n' });
      expect(s.read_range.content).toBe('beta\n');
      expect(s.read_missing.type).toBe('ErrorObservation');
      expect(s.read_missing.content).toContain('File not found: /workspace/no-such-file.txt');

      // Edit (OH_ACI: create, str_replace, view), and the file on disk.
      expect(s.edit_create).toMatchObject({
        type: 'FileEditObservation',
        content: 'File created successfully at: /workspace/edited.py',
      });
      expect(s.edit_replace.content).toContain('The file /workspace/edited.py has been edited.');
      expect(s.edit_replace.content).toContain('     2\t    return "hello"');
      expect(s.edit_view.content).toContain("Here's the result of running `cat -n` on /workspace/edited.py");
      expect(s.edit_result.content).toBe('def greet():\n    return "hello"');

      // AgentSkills in the kernel: open_file and file_editor.
      expect(s.skills_open_file.content).toContain('[File: /workspace/written.txt (4 lines total)]');
      expect(s.skills_open_file.content).toContain('1|alpha\n2|beta\n3|gamma');
      expect(s.skills_file_editor.content).toMatch(/^<oh_aci_output_[0-9a-f]+>\n/);
      expect(s.skills_file_editor.content).toContain(
        'File created successfully at: /workspace/by_skills.txt',
      );
      expect(s.skills_result.content).toBe('made by file_editor');

      // Upload (a file, a directory as a zip), list, download (a zip).
      expect(s.uploaded.content).toBe('./one.txt\n./tree/a.txt\n./tree/deep/b.txt\nuploaded one\ntree b');
      expect(s.list_root).toEqual(
        expect.arrayContaining(['sub/', 'up/', 'by_skills.txt', 'edited.py', 'written.txt']),
      );
      expect(s.list_up).toEqual(['tree/', 'one.txt']);
      expect(s.list_tree).toEqual(['deep/', 'a.txt']);
      expect(s.download).toEqual({
        'one.txt': 'uploaded one\n',
        'tree/a.txt': 'tree a\n',
        'tree/deep/b.txt': 'tree b\n',
      });

      // close() without keep_runtime_alive: /stop, and the session has no runtime any more.
      expect(s.close.session_after.status).toBe(404);
      expect(cp.manager.get(r.runtime_id).state).toBe('deleted');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'keep_runtime_alive: close pauses, a new client resumes the paused session, a 503 resumes, close stops',
    async (ctx) => {
      skipIfNoTool(ctx);
      const r = await resultOf('runtime');
      const s = r.steps as Record<string, any>;
      expect(r.errors).toEqual({});
      const id = s.keep_connect as string;
      expect(s.keep_close_pauses.session.json).toMatchObject({ runtime_id: id, status: 'paused' });
      expect(s.keep_close_pauses.runtime.json.pod_status).toBe('paused');
      // The second RemoteRuntime adopted the same runtime (GET /sessions said paused, it called /resume).
      expect(s.resume_connect.runtime_id).toBe(id);
      expect(s.resumed_state.content).toBe('still-running\nkept');
      // Paused behind its back: OpenHands met a 503 on the runtime URL, resumed and sent the request again.
      expect(s.pause_behind.session.json.status).toBe('paused');
      expect(s.after_503).toEqual(expect.arrayContaining(['bg.pid', 'kept.txt']));
      expect(s.after_503_run.content).toBe('still-running after 503');
      expect(s.after_503_session.json.status).toBe('running');
      expect(s.stop_close.session.status).toBe(404);
      expect(s.stop_close.runtime.status).toBe(404);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "a refused start surfaces as OpenHands' own error; the close after it (a /stop of no runtime) is not an error",
    async (ctx) => {
      skipIfNoTool(ctx);
      const r = await resultOf('runtime');
      expect(r.steps.refused_connect).toMatchObject({ raised: 'AgentRuntimeUnavailableError', closed: true });
      expect(r.steps.refused_connect.cause).toMatch(
        /404 Not Found.*\/openhands\/start[\s\S]*berth-no-such-image:never/,
      );
      expect(r.steps.refused_session.status).toBe(404);
      // The call OpenHands made in that close, as it makes it.
      for (const op of ['stop', 'pause']) {
        const res = await fetch(`${cp.url}/openhands/${op}`, {
          method: 'POST',
          headers: { 'X-API-Key': cp.apiKey, 'content-type': 'application/json' },
          body: JSON.stringify({ runtime_id: null }),
        });
        expect(res.status).toBe(200);
        expect(await res.json()).toMatchObject({ runtime_id: null });
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "OpenHands' build flow: it prepares the context, Berth builds on the FROM base, the runtime starts on the image",
    async (ctx) => {
      skipIfNoTool(ctx);
      const { run: r } = await runs.build!;
      const b = await resultOf('build');
      expect(b.errors, JSON.stringify(b.errors, null, 2)).toEqual({});
      expect(b.base_image).toBe(DEFAULT_BASE_IMAGE);
      expect(b.runtime_container_image_config).toBeNull();
      expect(b.image_repo).toMatch(/\/runtime$/);
      expect(b.container_image).toBe(b.image_names[0]);
      expect(b.container_image).toMatch(/^.+\/runtime:oh_v0\.62\.\d+_[0-9a-z]+_[0-9a-z]+$/);
      if (b.preexisting.length === 0) {
        // OpenHands called /build and polled /build_status until SUCCESS.
        expect(r.out).toMatch(/Build initiated with ID: build-/);
        expect(r.out).toMatch(/Build status: SUCCESS/);
      } else {
        console.warn(
          `openhands-client: the build's images were there already (${b.preexisting.join(', ')}): no /build`,
        );
      }
      expect(cp.manager.get(b.runtime_id).image).toBe(b.container_image);
      expect(b.steps.build_run.content).toBe(
        'built\nopenhands\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"',
      );
      expect(b.steps.build_ipython.content.split('\n')[0]).toBe('1024');
      expect(b.steps.build_close.status).toBe(404);
      // Every tag OpenHands asked about is there, reported with the fields its builder reads.
      for (const name of b.image_names) {
        const res = await fetch(`${cp.url}/openhands/image_exists?image=${encodeURIComponent(name)}`, {
          headers: { 'X-API-Key': cp.apiKey },
        });
        const j = (await res.json()) as { exists: boolean; image: { image_size_bytes: number } };
        expect(j.exists, name).toBe(true);
        expect(j.image.image_size_bytes).toBeGreaterThan(0);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "OpenHands' headless main loop replays a trajectory in a Berth sandbox; the files it wrote are in the workspace",
    async (ctx) => {
      skipIfNoTool(ctx);
      const { run: r } = await runs.headless!;
      expect(
        r.timedOut,
        `openhands.core.main ran longer than ${RUN_TIMEOUT_MS / 1000} s:\n${r.out.slice(-4000)}`,
      ).toBe(false);
      expect(r.code, r.out.slice(-4000)).toBe(0);
      expect(r.out).toContain('Trajectory replay is enabled');
      expect(r.out).toMatch(
        /Setting agent\(CodeActAgent\) state from AgentState\.RUNNING to AgentState\.FINISHED/,
      );
      expect(llm.count(), 'connections to the LLM base_url').toBe(0);

      // The observations OpenHands saved.
      const saved = JSON.parse(
        readFileSync(join(work, 'headless', 'saved-trajectory.json'), 'utf8'),
      ) as Array<any>;
      const observations = saved.filter(
        (e) => e.observation && e.observation !== 'recall' && e.cause !== undefined,
      );
      const byKind = (kind: string) => observations.filter((e) => e.observation === kind);
      expect(byKind('run')[0]).toMatchObject({
        content: 'hello from the headless loop',
        extras: { metadata: { exit_code: 0 } },
      });
      expect(byKind('write')[0].extras.path).toBe('/workspace/notes.md');
      expect(byKind('edit')[0].content).toContain('The file /workspace/notes.md has been edited.');
      expect(byKind('run_ipython')[0].content.split('\n')[0]).toBe('hello from the headless loop');
      expect(saved.at(-1)).toMatchObject({ action: 'finish', source: 'agent' });
      expect(byKind('error')).toEqual([]);

      // The sandbox is still there (keep_runtime_alive, not paused); its workspace has the files.
      const list = (await (
        await fetch(`${cp.url}/openhands/list`, { headers: { 'X-API-Key': cp.apiKey } })
      ).json()) as { runtimes: Array<{ session_id: string; runtime_id: string }> };
      const mine = list.runtimes.filter((x) => x.session_id.startsWith(`${HEADLESS_NAME}-`));
      expect(mine).toHaveLength(1);
      const id = mine[0]!.runtime_id;
      const files = await api(cp.url, cp.apiKey, 'POST', `/api/sandboxes/${id}/list_files`, {
        path: '/workspace',
      });
      expect(files.json).toEqual(expect.arrayContaining(['out/', 'from_ipython.txt', 'notes.md']));
      const cat = await api(cp.url, cp.apiKey, 'POST', `/api/sandboxes/${id}/execute_action`, {
        action: {
          action: 'run',
          args: {
            command: 'cat out/hello.txt notes.md; echo; cat from_ipython.txt; echo; stat -c %U out/hello.txt',
          },
        },
      });
      expect(cat.json.content).toBe(
        'hello from the headless loop\n# Notes\nwritten by FileWriteAction, edited by the editor\n\nipython wrote this\nopenhands',
      );
      // Berth recorded OpenHands' actions in the sandbox's event log.
      const events = await api(cp.url, cp.apiKey, 'GET', `/api/sandboxes/${id}/events`);
      const actions = (events.json.events as Array<{ kind: string; payload?: any }>).filter(
        (e) => e.kind === 'action',
      );
      expect(actions.length).toBeGreaterThanOrEqual(4);
    },
    TEST_TIMEOUT_MS,
  );
});
