/** The "new sandbox" form: image, workspace, environment, limits, network, lifetime, labels. */
import { type FormEvent, useState } from 'react';
import { api, type CreateSandboxBody, errorMessage, type Sandbox } from '../api.js';
import { parsePairs, positive } from '../parse.js';

export function CreateSandboxForm({
  onCreated,
  onCancel,
}: {
  onCreated: (s: Sandbox) => void;
  onCancel: () => void;
}) {
  const [image, setImage] = useState('');
  const [workspace, setWorkspace] = useState('');
  const [env, setEnv] = useState('');
  const [cpus, setCpus] = useState('');
  const [memory, setMemory] = useState('');
  const [pids, setPids] = useState('');
  const [network, setNetwork] = useState('');
  const [timeout, setTimeoutText] = useState('');
  const [labels, setLabels] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  function buildBody(): CreateSandboxBody {
    const body: CreateSandboxBody = {};
    if (image.trim()) body.image = image.trim();
    if (workspace.trim()) body.workspace = workspace.trim();
    const envVars = parsePairs(env, 'environment');
    if (Object.keys(envVars).length) body.env = envVars;
    const limits = {
      cpus: positive(cpus, 'CPUs', false),
      memory_mb: positive(memory, 'Memory', true),
      pids: positive(pids, 'Processes', true),
    };
    if (limits.cpus !== undefined || limits.memory_mb !== undefined || limits.pids !== undefined) {
      body.limits = Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
    }
    if (network.trim()) body.network = network.trim();
    const t = positive(timeout, 'Lifetime', true);
    if (t !== undefined) body.timeout_seconds = t * 60;
    const lbl = parsePairs(labels, 'labels');
    if (Object.keys(lbl).length) body.labels = lbl;
    return body;
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    let body: CreateSandboxBody;
    try {
      body = buildBody();
    } catch (err) {
      setError((err as Error).message);
      return;
    }
    setBusy(true);
    try {
      onCreated(await api.createSandbox(body));
    } catch (err) {
      setError(`Could not create the sandbox: ${errorMessage(err)}`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card create-form" onSubmit={submit} data-testid="create-form">
      <div className="card-title">New sandbox</div>
      <div className="form-grid">
        <label>
          Image
          <input
            value={image}
            onChange={(e) => setImage(e.target.value)}
            placeholder="default runtime image"
            data-testid="create-image"
          />
        </label>
        <label>
          Workspace (host path, mounted at /workspace)
          <input
            value={workspace}
            onChange={(e) => setWorkspace(e.target.value)}
            placeholder="server default"
            data-testid="create-workspace"
          />
        </label>
        <label className="span-2">
          Environment (KEY=VALUE, one per line)
          <textarea
            rows={3}
            value={env}
            onChange={(e) => setEnv(e.target.value)}
            placeholder={'DEBUG=1\nLANG=C.UTF-8'}
            spellCheck={false}
            data-testid="create-env"
          />
        </label>
        <fieldset className="span-2 limits">
          <legend>Limits</legend>
          <label>
            CPUs
            <input
              inputMode="decimal"
              value={cpus}
              onChange={(e) => setCpus(e.target.value)}
              placeholder="e.g. 2"
              data-testid="create-cpus"
            />
          </label>
          <label>
            Memory (MiB)
            <input
              inputMode="numeric"
              value={memory}
              onChange={(e) => setMemory(e.target.value)}
              placeholder="e.g. 2048"
              data-testid="create-memory"
            />
          </label>
          <label>
            Processes
            <input
              inputMode="numeric"
              value={pids}
              onChange={(e) => setPids(e.target.value)}
              placeholder="e.g. 512"
              data-testid="create-pids"
            />
          </label>
        </fieldset>
        <label>
          Network
          <input
            list="berth-networks"
            value={network}
            onChange={(e) => setNetwork(e.target.value)}
            placeholder="isolated"
            data-testid="create-network"
          />
          <datalist id="berth-networks">
            <option value="isolated" />
            <option value="internal" />
            <option value="host" />
          </datalist>
        </label>
        <label>
          Lifetime (minutes)
          <input
            inputMode="numeric"
            value={timeout}
            onChange={(e) => setTimeoutText(e.target.value)}
            placeholder="server default"
            data-testid="create-timeout"
          />
        </label>
        <label className="span-2">
          Labels (key=value, one per line)
          <textarea
            rows={2}
            value={labels}
            onChange={(e) => setLabels(e.target.value)}
            spellCheck={false}
            data-testid="create-labels"
          />
        </label>
      </div>
      {error && (
        <div className="error" role="alert" data-testid="create-error">
          {error}
        </div>
      )}
      <div className="row end">
        {busy && (
          <span className="muted small spacer" data-testid="create-progress">
            Starting the sandbox. The first one from a new image can take a few minutes while it is built.
          </span>
        )}
        <button type="button" className="ghost" onClick={onCancel} disabled={busy}>
          Cancel
        </button>
        <button type="submit" className="primary" disabled={busy} data-testid="create-submit">
          {busy ? 'Creating…' : 'Create sandbox'}
        </button>
      </div>
    </form>
  );
}
