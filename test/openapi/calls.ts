/**
 * One typed call of every operation in openapi.json, through a client generated from it
 * (openapi-typescript's types, openapi-fetch's client). Type-checked by test/integration/openapi-client.test.ts;
 * each `@ts-expect-error` line proves the types refuse a wrong call. calls-list.ts names the operationIds
 * this file calls, so a route added without a call here fails the test.
 */
import createClient from 'openapi-fetch';
import type { components, paths } from './schema';

export { OPERATIONS } from './calls-list';

type Sandbox = components['schemas']['Sandbox'];

export async function everyCall(baseUrl: string, key: string): Promise<void> {
  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key}` } });
  const id = { params: { path: { id: 'abc' } } };

  const created = await api.POST('/api/sandboxes', {
    body: {
      image: 'berth-runtime:x',
      env: { A: 'b' },
      limits: { cpus: 1 },
      user: { name: 'agent', uid: 1000 },
    },
  });
  const sandbox: Sandbox | undefined = created.data;
  const state: 'running' | 'paused' | string | undefined = sandbox?.state;
  void state;
  // @ts-expect-error limits.cpus is a number
  await api.POST('/api/sandboxes', { body: { limits: { cpus: 'one' } } });

  const list = await api.GET('/api/sandboxes', { params: { query: { state: 'running', label: ['a=b'] } } });
  list.data?.sandboxes.map((s) => s.id satisfies string);
  await api.GET('/api/sandboxes/{id}', id);
  await api.DELETE('/api/sandboxes/{id}', { params: { path: { id: 'abc' }, query: { keep: 'true' } } });
  await api.POST('/api/sandboxes/{id}/pause', id);
  await api.POST('/api/sandboxes/{id}/resume', id);
  await api.POST('/api/sandboxes/{id}/stop', id);
  await api.POST('/api/sandboxes/{id}/reset', id);
  await api.POST('/api/sandboxes/{id}/env', { ...id, body: { env: { K: 'v' } } });
  await api.POST('/api/sandboxes/{id}/timeout', { ...id, body: { timeout_seconds: 60 } });
  const logs = await api.GET('/api/sandboxes/{id}/logs', {
    params: { path: { id: 'abc' }, query: { tail: 10 } },
    parseAs: 'text',
  });
  void logs.data;
  await api.GET('/api/sandboxes/{id}/logs/stream', {
    params: { path: { id: 'abc' }, query: { tail: 0 } },
    parseAs: 'stream',
  });

  const obs = await api.POST('/api/sandboxes/{id}/execute_action', {
    ...id,
    body: { action: { action: 'run', args: { command: 'ls' }, timeout: 30 } },
  });
  const o = obs.data;
  if (o && o.observation === 'run') {
    const code: number = (o as components['schemas']['CmdOutputObservation']).extras.metadata.exit_code;
    void code;
  }
  const noCommand = { ...id, body: { action: { action: 'run' as const, args: {} } } };
  // @ts-expect-error a run action needs its command
  await api.POST('/api/sandboxes/{id}/execute_action', noCommand);
  await api.POST('/api/sandboxes/{id}/execute_action', {
    ...id,
    body: { action: { action: 'edit', args: { path: '/x', command: 'create', file_text: 'y' } } },
  });

  const files = await api.POST('/api/sandboxes/{id}/list_files', { ...id, body: { path: '/workspace' } });
  files.data?.map((f) => f satisfies string);
  await api.GET('/api/sandboxes/{id}/stats', id);
  await api.GET('/api/sandboxes/{id}/download_files', {
    params: { path: { id: 'abc' }, query: { path: '/workspace' } },
    parseAs: 'blob',
  });
  await api.POST('/api/sandboxes/{id}/upload_file', {
    params: { path: { id: 'abc' }, query: { destination: '/workspace' } },
    body: { file: 'content' },
    bodySerializer: (b) => {
      const form = new FormData();
      form.append('file', new Blob([String(b.file)]), 'f.txt');
      return form;
    },
  });
  const events = await api.GET('/api/sandboxes/{id}/events', {
    params: { path: { id: 'abc' }, query: { after: 0, limit: 100 } },
  });
  events.data?.events.map((e) => e.seq satisfies number);

  const oh = createClient<paths>({ baseUrl, headers: { 'X-API-Key': key } });
  await oh.GET('/openhands/sessions/{session_id}', { params: { path: { session_id: 's' } } });
  const rt = await oh.POST('/openhands/start', {
    body: { image: 'i', session_id: 's', command: ['--working-dir', '/workspace'], environment: { A: 'b' } },
  });
  const podStatus: string | undefined = rt.data?.pod_status;
  void podStatus;
  if (rt.error) void (rt.error.detail satisfies string);
  // @ts-expect-error a start needs its session_id
  await oh.POST('/openhands/start', { body: { image: 'i' } });
  await oh.GET('/openhands/runtime/{runtime_id}', { params: { path: { runtime_id: 'r' } } });
  await oh.POST('/openhands/pause', { body: { runtime_id: 'r' } });
  await oh.POST('/openhands/resume', { body: { runtime_id: 'r' } });
  await oh.POST('/openhands/stop', { body: { runtime_id: 'r' } });
  await oh.GET('/openhands/list');
  await oh.GET('/openhands/registry_prefix');
  await oh.GET('/openhands/image_exists', { params: { query: { image: 'i' } } });
  await oh.GET('/openhands/build_status', { params: { query: { build_id: 'b' } } });
  await oh.POST('/openhands/build', {
    body: { context: 'base64', target_image: 'x' },
    bodySerializer: (b) => {
      const form = new FormData();
      form.append('context', new Blob([String(b.context)]), 'context.tar.gz');
      form.append('target_image', String(b.target_image));
      return form;
    },
  });
}
