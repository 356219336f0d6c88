/**
 * Builds the runtime server's services and owns their disposal. Only the agent's shell is started
 * up front; the other services are made on first use (see lazy.ts), so that their code is not even
 * loaded on the way to the first /alive.
 */

import { statfs } from 'node:fs/promises';
import { homedir } from 'node:os';
import { DEFAULT_RUNTIME_PLUGINS } from '../protocol/plugins.js';
import { SandboxEnvironment, validateVariables } from './core/process/environment.js';
import { ProcessTable } from './core/process/table.js';
import { PtyShell } from './core/shell/pty-shell.js';
import { lazy } from './lazy.js';
import { BashSession, type ShellProvider } from './openhands/bash-session.js';
import { ActionExecutor } from './openhands/executor.js';
import type { RuntimeServices, RuntimeServicesOptions } from './services.js';
import { readProcessStats } from './system-stats.js';

/** How long exporting set variables into the agent's shell may take (it waits behind the queue). */
const ENV_EXPORT_TIMEOUT_SECONDS = 30;

/** Keeps one persistent shell; starts a new one in the last known cwd if the agent ran `exit`. */
class PersistentShell implements ShellProvider {
  private current: PtyShell | undefined;
  private starting: Promise<PtyShell> | undefined;

  constructor(
    private readonly processes: ProcessTable,
    private cwd: string,
  ) {}

  async shell(): Promise<PtyShell> {
    if (this.current?.alive) return this.current;
    if (this.current) {
      this.cwd = this.current.prompt.workingDir || this.cwd;
      const dead = this.current;
      this.current = undefined;
      await dead.dispose();
    }
    this.starting ??= PtyShell.start({ processes: this.processes, cwd: this.cwd }).then((s) => {
      this.current = s;
      this.starting = undefined;
      return s;
    });
    return this.starting;
  }

  /** The shell as it is now, dead or alive; commands that need it alive call shell(). */
  peek(): PtyShell | undefined {
    return this.current;
  }

  async dispose(): Promise<void> {
    await this.current?.dispose();
  }

  /** Ends the shell (and its jobs) and starts a fresh one in the last known cwd. */
  async restart(): Promise<PtyShell> {
    const dead = this.current;
    this.cwd = dead?.prompt.workingDir || this.cwd;
    this.current = undefined;
    await dead?.dispose();
    return this.shell();
  }
}

export async function createRuntimeServices(options: RuntimeServicesOptions): Promise<RuntimeServices> {
  // Set variables are recorded in the user's home only in the sandbox's own container: a server run
  // on a shared machine (the tests) must not write into that user's ~/.bashrc.
  const processes = new ProcessTable(
    new SandboxEnvironment(options.ownsPidNamespace ? { home: homedir() } : {}),
  );
  const shells = new PersistentShell(processes, options.workingDir);
  await shells.shell();
  const bash = new BashSession(shells, processes, options.noChangeTimeoutSeconds);
  const editor = lazy(async () => {
    const { FileEditor } = await import('./core/editor/editor.js');
    return new FileEditor({ workspaceRoot: options.workingDir });
  });
  const plugins = options.plugins ?? DEFAULT_RUNTIME_PLUGINS;
  const python = lazy(async () => {
    // The reference's words when run_ipython reaches a server started without the jupyter plugin.
    if (!plugins.includes('jupyter'))
      throw new Error('JupyterRequirement not found. Unable to run IPython action.');
    const { PythonKernel } = await import('./core/python/kernel.js');
    if (!plugins.includes('agent_skills')) return new PythonKernel({ processes, logger: options.logger });
    const skills = await import('./openhands/agent-skills.js');
    return new PythonKernel({
      processes,
      logger: options.logger,
      hostCalls: skills.agentSkillsHostCalls(() => editor.get()),
      startup: { code: skills.agentSkillsStartupCode(), cwd: options.workingDir },
    });
  });
  const executor = new ActionExecutor({ bash, editor, python });
  const terminals = lazy(async () => {
    const { TerminalManager } = await import('./core/terminal/terminals.js');
    return new TerminalManager(processes, () => shells.peek()?.prompt.workingDir || options.workingDir);
  });
  const transfer = lazy(() => import('./core/transfer/index.js'));
  const mcp = lazy(async () => {
    const { McpProxy } = await import('./mcp/proxy.js');
    return new McpProxy({ processes, cwd: options.workingDir, logger: options.logger });
  });
  const envd = lazy(async () => {
    const [proc, fs] = await Promise.all([
      import('./envd/process-service.js'),
      import('./envd/filesystem-service.js'),
    ]);
    return { process: new proc.ProcessService(processes), filesystem: new fs.FilesystemService() };
  });
  const codeContexts = lazy(async () => {
    const { CodeContexts } = await import('./code-interpreter/contexts.js');
    return new CodeContexts(processes, options.workingDir);
  });
  const startedAt = Date.now();
  let disposed = false;
  return {
    options,
    processes,
    executor,
    terminals,
    transfer,
    mcp,
    envd,
    codeContexts,
    ready: () => !disposed,
    async reset() {
      const sweep = options.ownsPidNamespace
        ? await (await import('./core/process/sweep.js')).sweepUserProcesses()
        : undefined;
      await Promise.allSettled([
        terminals.reset((t) => t.dispose()),
        python.reset((p) => p.dispose()),
        editor.reset((e) => e.dispose()),
        // Its children end (the list is kept; each starts again on next use).
        mcp.ifMade((m) => m.reset()),
        // Contexts are processes too: made again (empty) on next use.
        codeContexts.reset((c) => c.dispose()),
      ]);
      await shells.restart();
      bash.forgetRunningCommand();
      return sweep ?? { killed: 0, left: 0, swept: false as const };
    },
    async setEnv(vars) {
      const valid = validateVariables(vars);
      if (Object.keys(valid).length === 0) return { names: [] };
      processes.environment.set(valid);
      // Into the agent's live shell too, through the action queue (after whatever runs now).
      const obs = await executor.execute({
        type: 'run',
        args: { command: SandboxEnvironment.exportCommand(valid), hidden: true, blocking: true },
        timeout: ENV_EXPORT_TIMEOUT_SECONDS,
      });
      const code = (obs.extras as { metadata?: { exit_code?: number } }).metadata?.exit_code;
      if (code !== 0) throw new Error(`exporting the variables into the shell failed: ${obs.content}`);
      return { names: Object.keys(valid) };
    },
    async serverInfo() {
      const now = Date.now();
      const disk = await statfs('/').catch(() => undefined);
      const total = disk ? disk.blocks * disk.bsize : 0;
      const free = disk ? disk.bavail * disk.bsize : 0;
      const used = disk ? (disk.blocks - disk.bfree) * disk.bsize : 0;
      return {
        uptime: (now - startedAt) / 1000,
        idle_time: (now - executor.lastExecutionStarted) / 1000,
        resources: {
          ...(await readProcessStats()),
          disk: { total, used, free, percent: total ? Math.round((used / total) * 1000) / 10 : 0 },
        },
      };
    },
    async dispose() {
      disposed = true;
      await Promise.allSettled([
        terminals.ifMade((t) => t.dispose()),
        shells.dispose(),
        editor.ifMade((e) => e.dispose()),
        python.ifMade((p) => p.dispose()),
        mcp.ifMade((m) => m.dispose()),
        envd.ifMade((e) => e.filesystem.close()),
        codeContexts.ifMade((c) => c.dispose()),
      ]);
      // Whatever is left (a process an owner forgot) goes too.
      await processes.dispose();
    },
  };
}
