/**
 * A file browser of /workspace: a lazily loaded tree (list_files), files opened with the `read`
 * action, edited in place and saved byte for byte through upload_file (the `write` action would add
 * a newline), uploads by drag and drop or a picker, and downloads as zip archives.
 */
import {
  type DragEvent,
  type FormEvent,
  type KeyboardEvent,
  useCallback,
  useEffect,
  useRef,
  useState,
} from 'react';
import { api, errorMessage } from '../api.js';
import { clockTime } from '../format.js';

export const WORKSPACE_ROOT = '/workspace';

const IMAGE_EXT = /\.(png|jpe?g|gif|bmp)$/i;

interface DirState {
  entries: string[] | null;
  loading: boolean;
  error: string | null;
}

type OpenFile =
  | { path: string; kind: 'loading' }
  | { path: string; kind: 'text'; original: string; draft: string }
  | { path: string; kind: 'image'; dataUrl: string }
  | { path: string; kind: 'unsupported'; reason: string }
  | { path: string; kind: 'failed'; error: string };

type SaveState =
  | { state: 'idle' }
  | { state: 'saving' }
  | { state: 'saved'; at: string }
  | { state: 'failed'; error: string };

export function joinPath(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, '')}/${name.replace(/\/+$/, '')}`;
}

export function splitPath(path: string): { dir: string; name: string } {
  const i = path.lastIndexOf('/');
  return { dir: i <= 0 ? '/' : path.slice(0, i), name: path.slice(i + 1) };
}

async function saveBlob(blob: Blob, filename: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function FileBrowser({ sandboxId, running }: { sandboxId: string; running: boolean }) {
  const [root, setRoot] = useState(WORKSPACE_ROOT);
  const [rootDraft, setRootDraft] = useState(WORKSPACE_ROOT);
  const [dirs, setDirs] = useState<Record<string, DirState>>({});
  const [expanded, setExpanded] = useState<Set<string>>(() => new Set([WORKSPACE_ROOT]));
  const [open, setOpen] = useState<OpenFile | null>(null);
  const [save, setSave] = useState<SaveState>({ state: 'idle' });
  const [targetDir, setTargetDir] = useState(WORKSPACE_ROOT);
  const [dropDir, setDropDir] = useState<string | null>(null);
  const [notice, setNotice] = useState<{ text: string; error: boolean } | null>(null);
  const pickerRef = useRef<HTMLInputElement>(null);
  const dragDepth = useRef(0);

  const loadDir = useCallback(
    async (path: string) => {
      setDirs((d) => ({ ...d, [path]: { entries: d[path]?.entries ?? null, loading: true, error: null } }));
      try {
        const entries = await api.listFiles(sandboxId, path);
        setDirs((d) => ({ ...d, [path]: { entries, loading: false, error: null } }));
      } catch (err) {
        setDirs((d) => ({
          ...d,
          [path]: { entries: d[path]?.entries ?? null, loading: false, error: errorMessage(err) },
        }));
      }
    },
    [sandboxId],
  );

  const refresh = useCallback(() => {
    for (const dir of expanded) void loadDir(dir);
  }, [expanded, loadDir]);

  // biome-ignore lint/correctness/useExhaustiveDependencies: reload the tree when the sandbox (re)starts or the root changes
  useEffect(() => {
    if (running) refresh();
  }, [running, sandboxId, root]);

  function changeRoot(e: FormEvent) {
    e.preventDefault();
    const next = rootDraft.trim().replace(/(.)\/+$/, '$1');
    if (!next.startsWith('/')) {
      setNotice({ text: 'Enter an absolute path, like /workspace.', error: true });
      return;
    }
    setNotice(null);
    setDirs({});
    setExpanded(new Set([next]));
    setTargetDir(next);
    setRoot(next);
    setRootDraft(next);
  }

  function toggleDir(path: string) {
    setTargetDir(path);
    setExpanded((prev) => {
      const next = new Set(prev);
      if (next.has(path)) next.delete(path);
      else {
        next.add(path);
        void loadDir(path);
      }
      return next;
    });
  }

  const dirty = open?.kind === 'text' && open.draft !== open.original;

  async function openFile(path: string) {
    if (open?.path === path) return;
    if (dirty && !window.confirm(`Discard unsaved changes to ${open.path}?`)) return;
    setTargetDir(splitPath(path).dir);
    setOpen({ path, kind: 'loading' });
    setSave({ state: 'idle' });
    try {
      const obs = await api.executeAction(sandboxId, 'read', { path });
      let next: OpenFile;
      if (obs.observation === 'error') {
        next =
          obs.content === 'ERROR_BINARY_FILE'
            ? { path, kind: 'unsupported', reason: 'This is a binary file. Download it to look inside.' }
            : { path, kind: 'failed', error: obs.content || obs.message };
      } else if (obs.content.startsWith('data:')) {
        next = IMAGE_EXT.test(path)
          ? { path, kind: 'image', dataUrl: obs.content }
          : { path, kind: 'unsupported', reason: 'This file cannot be shown here. Download it instead.' };
      } else {
        next = { path, kind: 'text', original: obs.content, draft: obs.content };
      }
      setOpen((cur) => (cur?.path === path ? next : cur));
    } catch (err) {
      setOpen((cur) => (cur?.path === path ? { path, kind: 'failed', error: errorMessage(err) } : cur));
    }
  }

  async function saveFile() {
    if (open?.kind !== 'text' || save.state === 'saving') return;
    const { path, draft } = open;
    const { dir, name } = splitPath(path);
    if (name.endsWith('.zip')) {
      setSave({
        state: 'failed',
        error: 'A .zip name would be unpacked on upload; save it from the terminal.',
      });
      return;
    }
    setSave({ state: 'saving' });
    try {
      await api.upload(sandboxId, dir, new Blob([draft]), name);
      setOpen((cur) => (cur?.kind === 'text' && cur.path === path ? { ...cur, original: draft } : cur));
      setSave({ state: 'saved', at: new Date().toISOString() });
    } catch (err) {
      setSave({ state: 'failed', error: `Save failed: ${errorMessage(err)}` });
    }
  }

  async function download(path: string) {
    setNotice({ text: `Preparing ${path}…`, error: false });
    try {
      const blob = await api.download(sandboxId, path);
      await saveBlob(blob, `${splitPath(path).name || 'workspace'}.zip`);
      setNotice(null);
    } catch (err) {
      setNotice({ text: `Download of ${path} failed: ${errorMessage(err)}`, error: true });
    }
  }

  async function uploadFiles(files: File[], dir: string) {
    if (files.length === 0) return;
    setNotice({
      text: `Uploading ${files.length === 1 ? files[0]!.name : `${files.length} files`} to ${dir}…`,
      error: false,
    });
    const failed: string[] = [];
    for (const f of files) {
      try {
        await api.upload(sandboxId, dir, f, f.name);
      } catch (err) {
        failed.push(`${f.name}: ${errorMessage(err)}`);
      }
    }
    setExpanded((prev) => new Set(prev).add(dir));
    void loadDir(dir);
    const ok = files.length - failed.length;
    setNotice(
      failed.length
        ? { text: `Uploaded ${ok} of ${files.length} to ${dir}. Failed: ${failed.join('; ')}`, error: true }
        : { text: `Uploaded ${ok === 1 ? files[0]!.name : `${ok} files`} to ${dir}.`, error: false },
    );
  }

  function dirForDropTarget(target: EventTarget | null): string {
    const el = (target as HTMLElement | null)?.closest?.('[data-dir]');
    return el?.getAttribute('data-dir') ?? root;
  }

  function onDragOver(e: DragEvent) {
    if (!running || !e.dataTransfer.types.includes('Files')) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    setDropDir(dirForDropTarget(e.target));
  }

  function onDrop(e: DragEvent) {
    if (!running) return;
    e.preventDefault();
    dragDepth.current = 0;
    const dir = dirForDropTarget(e.target);
    setDropDir(null);
    const items = [...e.dataTransfer.items];
    const folders = items.filter((it) => it.kind === 'file' && it.webkitGetAsEntry?.()?.isDirectory);
    const files = [...e.dataTransfer.files].filter(
      (f) => !folders.some((it) => it.getAsFile()?.name === f.name),
    );
    if (folders.length) {
      setNotice({
        text: 'Folders cannot be dropped as such: zip them (a .zip is unpacked on upload).',
        error: true,
      });
    }
    void uploadFiles(files, dir);
  }

  function onEditorKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 's') {
      e.preventDefault();
      void saveFile();
    } else if (e.key === 'Tab' && !e.shiftKey && open?.kind === 'text') {
      e.preventDefault();
      const ta = e.currentTarget;
      const { selectionStart: a, selectionEnd: b } = ta;
      const draft = `${ta.value.slice(0, a)}\t${ta.value.slice(b)}`;
      setOpen({ ...open, draft });
      requestAnimationFrame(() => ta.setSelectionRange(a + 1, a + 1));
    }
  }

  function renderDir(path: string, depth: number) {
    const st = dirs[path];
    if (!st || (st.entries === null && st.loading)) {
      return (
        <div className="tree-note muted" style={{ paddingLeft: indent(depth) }}>
          loading…
        </div>
      );
    }
    if (st.error) {
      return (
        <div className="tree-note error" style={{ paddingLeft: indent(depth) }} data-testid="file-tree-error">
          {st.error}
        </div>
      );
    }
    if (!st.entries || st.entries.length === 0) {
      return (
        <div className="tree-note muted" style={{ paddingLeft: indent(depth) }}>
          {depth === 0 ? `${path} is empty or missing` : 'empty'}
        </div>
      );
    }
    return st.entries.map((entry) => {
      const isDir = entry.endsWith('/');
      const full = joinPath(path, entry);
      const name = entry.replace(/\/$/, '');
      if (isDir) {
        const isOpen = expanded.has(full);
        return (
          <div key={full} data-dir={full}>
            <div
              className={`tree-row dir${dropDir === full ? ' drop' : ''}`}
              style={{ paddingLeft: indent(depth) }}
              data-testid="file-node"
              data-path={full}
              data-kind="dir"
            >
              <button
                type="button"
                className="tree-name"
                onClick={() => toggleDir(full)}
                aria-expanded={isOpen}
              >
                <span className="twisty" aria-hidden="true">
                  {isOpen ? '▾' : '▸'}
                </span>
                <span className="icon-dir" aria-hidden="true" />
                {name}
              </button>
              <button
                type="button"
                className="icon-btn"
                title={`Download ${name} as zip`}
                aria-label={`Download ${name}`}
                onClick={() => void download(full)}
              >
                ⤓
              </button>
            </div>
            {isOpen && renderDir(full, depth + 1)}
          </div>
        );
      }
      return (
        <div
          key={full}
          className={`tree-row file${open?.path === full ? ' selected' : ''}`}
          style={{ paddingLeft: indent(depth) }}
          data-testid="file-node"
          data-path={full}
          data-kind="file"
          data-dir={path}
        >
          <button type="button" className="tree-name" onClick={() => void openFile(full)}>
            <span className="twisty" aria-hidden="true" />
            <span className="icon-file" aria-hidden="true" />
            {name}
          </button>
          <button
            type="button"
            className="icon-btn"
            title={`Download ${name}`}
            aria-label={`Download ${name}`}
            onClick={() => void download(full)}
          >
            ⤓
          </button>
        </div>
      );
    });
  }

  return (
    <section
      className={`file-browser${dropDir ? ' dragging' : ''}`}
      aria-label="Files in the workspace; drop files here to upload them"
      data-testid="files"
      onDragEnter={() => {
        dragDepth.current++;
      }}
      onDragLeave={() => {
        dragDepth.current = Math.max(0, dragDepth.current - 1);
        if (dragDepth.current === 0) setDropDir(null);
      }}
      onDragOver={onDragOver}
      onDrop={onDrop}
    >
      <div className="panel-head">
        <span className="panel-title">Files</span>
        <span className="muted small mono clamp" title="Uploads go here">
          {targetDir}
        </span>
        <div className="spacer" />
        <button
          type="button"
          className="small"
          onClick={refresh}
          disabled={!running}
          data-testid="files-refresh"
        >
          Refresh
        </button>
        <button
          type="button"
          className="small"
          onClick={() => pickerRef.current?.click()}
          disabled={!running}
          data-testid="files-upload"
        >
          Upload
        </button>
        <input
          ref={pickerRef}
          type="file"
          multiple
          hidden
          data-testid="files-upload-input"
          onChange={(e) => {
            void uploadFiles([...(e.target.files ?? [])], targetDir);
            e.target.value = '';
          }}
        />
      </div>
      {notice && (
        <div
          className={`${notice.error ? 'error' : 'info'} inline-error`}
          role="status"
          data-testid="files-notice"
        >
          {notice.text}
          <button type="button" className="icon-btn" aria-label="Dismiss" onClick={() => setNotice(null)}>
            ×
          </button>
        </div>
      )}
      <div className="files-body">
        <div className="tree" data-testid="file-tree" data-dir={root}>
          {!running ? (
            <div className="tree-note muted">Files are available while the sandbox runs.</div>
          ) : (
            <>
              <form
                className={`tree-row dir root${dropDir === root ? ' drop' : ''}`}
                data-testid="file-node"
                data-path={root}
                data-kind="dir"
                onSubmit={changeRoot}
              >
                <span className="icon-dir" aria-hidden="true" />
                <input
                  className="root-input"
                  value={rootDraft}
                  onChange={(e) => setRootDraft(e.target.value)}
                  onBlur={() => setRootDraft(root)}
                  onFocus={() => setTargetDir(root)}
                  spellCheck={false}
                  aria-label="Directory to browse (press Enter)"
                  title="Directory to browse: type a path and press Enter"
                  data-testid="files-root"
                />
                <button
                  type="button"
                  className="icon-btn"
                  title={`Download ${root} as zip`}
                  aria-label={`Download ${root}`}
                  onClick={() => void download(root)}
                >
                  ⤓
                </button>
              </form>
              {renderDir(root, 1)}
            </>
          )}
          {dropDir && <div className="drop-hint">Drop to upload into {dropDir}</div>}
        </div>
        <div className="editor" data-testid="file-view">
          {!open ? (
            <div className="editor-empty muted">
              Open a file from the tree. Drop files on a folder to upload them.
            </div>
          ) : (
            <>
              <div className="editor-head">
                <span className="mono clamp" title={open.path} data-testid="file-path">
                  {open.path}
                </span>
                {dirty && (
                  <span className="dirty" title="Unsaved changes" data-testid="file-dirty">
                    ●
                  </span>
                )}
                <div className="spacer" />
                <span className="small muted" data-testid="file-status">
                  {save.state === 'saving'
                    ? 'Saving…'
                    : save.state === 'saved' && !dirty
                      ? `Saved ${clockTime(save.at)}`
                      : ''}
                </span>
                <button
                  type="button"
                  className="small"
                  onClick={() => void download(open.path)}
                  data-testid="file-download"
                >
                  Download
                </button>
                {open.kind === 'text' && (
                  <button
                    type="button"
                    className="small primary"
                    onClick={() => void saveFile()}
                    disabled={!dirty || save.state === 'saving' || !running}
                    data-testid="file-save"
                  >
                    Save
                  </button>
                )}
              </div>
              {save.state === 'failed' && (
                <div className="error inline-error" role="alert" data-testid="file-error">
                  {save.error}
                </div>
              )}
              {open.kind === 'loading' && <div className="editor-empty muted">Opening…</div>}
              {open.kind === 'failed' && (
                <div className="error inline-error" role="alert" data-testid="file-error">
                  Could not open {open.path}: {open.error}
                </div>
              )}
              {open.kind === 'unsupported' && <div className="editor-empty muted">{open.reason}</div>}
              {open.kind === 'image' && (
                <div className="image-view">
                  <img src={open.dataUrl} alt={open.path} />
                </div>
              )}
              {open.kind === 'text' && (
                <textarea
                  className="code"
                  value={open.draft}
                  onChange={(e) => setOpen({ ...open, draft: e.target.value })}
                  onKeyDown={onEditorKey}
                  spellCheck={false}
                  wrap="off"
                  aria-label={`Contents of ${open.path}`}
                  data-testid="file-editor"
                />
              )}
            </>
          )}
        </div>
      </div>
    </section>
  );
}

function indent(depth: number): string {
  return `${0.5 + depth * 0.9}rem`;
}
