/**
 * Action round trips against a runtime server on this machine, next to the floor: spawning
 * `bash -c true` from Node. Run: npm run bench -- runtime-server   (or: npx tsx bench/runtime-server.ts)
 */
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { RuntimeClient, startHostTarget } from '../test/contract/harness.js';
import { measure, printTable, summarize, writeJson } from './lib/stats.js';

const N = Number(process.env.BENCH_N ?? 300);
const N_BIG = Number(process.env.BENCH_N_BIG ?? 40);

function spawnTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-c', 'true'], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('exit', () => resolve());
  });
}

export async function benchRuntimeServer() {
  const target = await startHostTarget();
  const client = new RuntimeClient(target);
  // One kept-alive connection, as an agent's client would use.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(target.url);
  const post = (body: string) =>
    new Promise<string>((resolve, reject) => {
      const req = request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path: '/execute_action',
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-session-api-key': target.key },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const act = (action: string, args: Record<string, unknown>) =>
    post(JSON.stringify({ action: { action, args } }));

  const big = 'x'.repeat(1023);
  const mb = `${big}\n`.repeat(1024);
  await client.act('write', { path: 'one-mb.txt', content: mb.slice(0, -1) });
  await client.act('write', { path: 'edit.txt', content: 'alpha\nbeta\ngamma' });
  let flip = false;

  const rows = [
    summarize('floor: spawn bash -c true', await measure(N, spawnTrue)),
    summarize('run true', await measure(N, () => act('run', { command: 'true' })), {
      floor: 'floor: spawn bash -c true',
    }),
    summarize('run echo hi', await measure(N, () => act('run', { command: 'echo hi' })), {
      floor: 'floor: spawn bash -c true',
    }),
    summarize(
      'run: 1 MB of output',
      await measure(N_BIG, () => act('run', { command: 'head -c 1048576 one-mb.txt' })),
    ),
    summarize('read 1 MB file', await measure(N_BIG, () => act('read', { path: 'one-mb.txt' }))),
    summarize('write 1 MB file', await measure(N_BIG, () => act('write', { path: 'w.txt', content: mb }))),
    summarize(
      'edit str_replace',
      await measure(N, () => {
        flip = !flip;
        return act('edit', {
          command: 'str_replace',
          path: `${target.workspace}/edit.txt`,
          old_str: flip ? 'beta' : 'BETA',
          new_str: flip ? 'BETA' : 'beta',
        });
      }),
    ),
  ];
  agent.destroy();
  await target.close();
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await benchRuntimeServer();
  printTable('Runtime server action round trips (one kept-alive HTTP connection)', rows);
  process.stdout.write(`\nJSON: ${writeJson('runtime-server', { rows, at: new Date().toISOString() })}\n`);
}
