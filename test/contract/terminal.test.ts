/** Contract: Berth's interactive terminal WebSocket on the runtime server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type RuntimeTarget, startRuntimeTarget } from './harness.js';

let target: RuntimeTarget;

beforeAll(async () => {
  target = await startRuntimeTarget();
});
afterAll(async () => {
  await target?.close();
});

function connect(id: string, key = target.key) {
  const url = `${target.url.replace('http', 'ws')}/berth/terminals/${id}?cols=100&rows=30`;
  const ws = new WebSocket(url, { headers: { 'X-Session-API-Key': key } });
  let output = '';
  ws.on('message', (raw) => {
    const m = JSON.parse(raw.toString());
    if (m.type === 'output') output += m.data;
  });
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  return {
    ws,
    opened,
    output: () => output,
    send: (m: unknown) => ws.send(JSON.stringify(m)),
    async waitFor(text: string, ms = 10_000) {
      const end = Date.now() + ms;
      while (!output.includes(text)) {
        if (Date.now() > end)
          throw new Error(`did not see ${JSON.stringify(text)} in ${JSON.stringify(output.slice(-500))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

describe('terminal', () => {
  it('needs the session key', async () => {
    const t = connect('t0', 'wrong');
    await expect(t.opened).rejects.toThrow(/401/);
  });

  it('types a command and sees its output, resizes, and replays scrollback on reconnect', async () => {
    const t = connect('main');
    await t.opened;
    t.send({ type: 'input', data: 'echo "hel""lo from term"\r' });
    await t.waitFor('hello from term');
    t.send({ type: 'resize', cols: 77, rows: 20 });
    t.send({ type: 'input', data: 'stty size\r' });
    await t.waitFor('20 77');
    t.ws.close();
    const again = connect('main');
    await again.opened;
    await again.waitFor('hello from term');
    again.send({ type: 'input', data: 'echo still-$((40+2))\r' });
    await again.waitFor('still-42');
    again.ws.close();
  });

  it('rejects malformed messages without closing', async () => {
    const t = connect('bad');
    await t.opened;
    const errors: string[] = [];
    t.ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString());
      if (m.type === 'error') errors.push(m.code);
    });
    t.ws.send('not json');
    t.send({ type: 'input', data: 'echo ok-after\r' });
    await t.waitFor('ok-after');
    expect(errors).toEqual(['VALIDATION_FAILED']);
    t.ws.close();
  });
});
