/**
 * UI checks against the in-memory MOCK control plane (mock-control-plane.ts): fast, no Docker, and able
 * to inject failures the real server rarely shows (a failed save, a vanished sandbox). The same flows
 * run against the real control plane in web-ui.test.ts; this file does not replace that one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildWeb,
  chromiumMissingReason,
  DESKTOP,
  dropFile,
  launchChromium,
  NARROW,
  replaceEditorText,
  screenshot,
  typeInTerminal,
  waitForTerminalText,
  watchPage,
} from './browser.js';
import { type MockControlPlane, startMockControlPlane } from './mock-control-plane.js';

const skipReason = chromiumMissingReason();
if (skipReason) console.warn(`\n!!! ${skipReason}\n`);

const KEY = 'mock-key-123';

describe.skipIf(skipReason !== null)('web UI against the mock control plane', () => {
  let mock: MockControlPlane;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let problems: string[];
  let outDir: string;
  let sandboxId = '';

  beforeAll(async () => {
    outDir = mkdtempSync(path.join(os.tmpdir(), 'berth-web-mock-'));
    buildWeb(outDir);
    mock = await startMockControlPlane({ apiKeys: [KEY], webRoot: outDir });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: DESKTOP });
    page = await context.newPage();
    problems = watchPage(page);
  });

  afterAll(async () => {
    if (problems?.length) console.warn(`page problems:\n${problems.join('\n')}`);
    await context?.close();
    await browser?.close();
    await mock?.close();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  it('asks for a key, says when it is wrong, and keeps a right one for the session', async () => {
    await page.goto(mock.url);
    await page.getByTestId('login-form').waitFor();
    await page.getByTestId('login-key').fill('wrong-key');
    await page.getByTestId('login-submit').click();
    await expect.poll(() => page.getByTestId('login-error').textContent()).toMatch(/not accepted/);
    await page.getByTestId('login-key').fill(KEY);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('sandbox-list-page').waitFor();
    await page.getByTestId('sandbox-empty').waitFor();
    // The empty list says how to make a first sandbox from the CLI and both SDKs.
    const ways = await page.getByTestId('sandbox-empty-ways').textContent();
    expect(ways).toContain('berth sandbox create');
    expect(ways).toContain('sandboxes.create(');
    expect(ways).toContain('with Berth() as berth');
    await page.reload();
    await page.getByTestId('sandbox-list-page').waitFor();
    expect(await page.evaluate('sessionStorage.getItem("berth.apiKey")')).toBe(KEY);
  });

  it('validates the create form and creates a sandbox with env, limits and labels', async () => {
    await page.getByTestId('new-sandbox').click();
    await page.getByTestId('create-env').fill('1BAD=x');
    await page.getByTestId('create-submit').click();
    await expect
      .poll(() => page.getByTestId('create-error').textContent())
      .toMatch(/not a valid variable name/);
    await page.getByTestId('create-env').fill('DEBUG=1\nLANG=C.UTF-8');
    await page.getByTestId('create-memory').fill('1024');
    await page.getByTestId('create-labels').fill('team=ui');
    await screenshot(page, 'mock-create-form');
    await page.getByTestId('create-submit').click();
    await page.getByTestId('sandbox-page').waitFor();
    sandboxId = (await page.getByTestId('sandbox-page').getAttribute('data-sandbox-id')) ?? '';
    expect(mock.sandboxes.get(sandboxId)?.record.labels).toEqual({ team: 'ui' });
    // starting -> running arrives over the live stream.
    await page
      .locator('[data-testid="sandbox-page"] [data-testid="sandbox-state"][data-state="running"]')
      .waitFor();
  });

  it('runs `echo hello` in the terminal and reattaches to the same shell after a reload', async () => {
    await page.locator('[data-testid="terminal-status"][data-status="connected"]').waitFor();
    await waitForTerminalText(page, /agent@sandbox/);
    await typeInTerminal(page, 'echo hello\r');
    await waitForTerminalText(page, /\nhello\s*\n/);
    await typeInTerminal(page, 'colors\r');
    await waitForTerminalText(page, /colour 36/);
    await page.reload();
    await page.locator('[data-testid="terminal-status"][data-status="connected"]').waitFor();
    await waitForTerminalText(page, /echo hello[\s\S]*colour 36/);
  });

  it('opens, edits and saves a file byte for byte, and shows a failed save where it happened', async () => {
    await page.locator('[data-testid="file-node"][data-path="/workspace/README.md"] .tree-name').click();
    await expect.poll(() => page.getByTestId('file-editor').inputValue()).toContain('Mock workspace');
    await replaceEditorText(page, 'line one\nline two');
    await page.getByTestId('file-dirty').waitFor();
    await page.getByTestId('file-save').click();
    await expect.poll(() => page.getByTestId('file-status').textContent()).toMatch(/Saved/);
    expect(mock.readFile(sandboxId, '/workspace/README.md')).toBe('line one\nline two');

    mock.failNextUpload = {
      status: 507,
      code: 'NO_SPACE',
      message: 'Writing /workspace/README.md: no space left on device',
    };
    await page.getByTestId('file-editor').press('End');
    await page.getByTestId('file-editor').pressSequentially('!');
    await page.getByTestId('file-editor').press('ControlOrMeta+s');
    await expect
      .poll(() => page.getByTestId('file-error').textContent())
      .toMatch(/Save failed: .*no space left/);
    await page.getByTestId('file-dirty').waitFor();
  });

  it('shows actions in the timeline live, with exit codes and durations', async () => {
    await page
      .locator('[data-testid="timeline-item"][data-action="read"] [data-testid="timeline-duration"]')
      .first()
      .waitFor();
    await mock.execute(sandboxId, 'run', { command: 'false' });
    const item = page.locator('[data-testid="timeline-item"][data-action="run"]').last();
    await expect
      .poll(() => item.locator('[data-testid="timeline-exit"]').getAttribute('data-exit-code'))
      .toBe('1');
    await item.locator('.tl-main').click();
    await item.getByTestId('timeline-body').waitFor();
  });

  it('uploads a file dropped on a folder', async () => {
    await page.locator('[data-testid="file-node"][data-path="/workspace/src"] .tree-name').click();
    await page.locator('[data-testid="file-node"][data-path="/workspace/src/main.py"]').waitFor();
    await dropFile(
      page,
      '[data-testid="file-node"][data-path="/workspace/src/main.py"]',
      'dropped.txt',
      'from the desktop',
    );
    await expect
      .poll(() => page.getByTestId('files-notice').textContent())
      .toMatch(/Uploaded dropped.txt to \/workspace\/src/);
    await page.locator('[data-testid="file-node"][data-path="/workspace/src/dropped.txt"]').waitFor();
    expect(mock.readFile(sandboxId, '/workspace/src/dropped.txt')).toBe('from the desktop');
    await expect.poll(() => page.getByTestId('stats-memory').textContent()).toMatch(/MiB/);
    await screenshot(page, 'mock-sandbox');
  });

  it('pauses and resumes, and the list updates live', async () => {
    await page.getByTestId('sandbox-pause').click();
    await page.getByTestId('state-notice').waitFor();
    await expect.poll(() => page.getByTestId('state-notice').textContent()).toMatch(/paused/);
    await page.getByTestId('sandbox-resume').click();
    await page.locator('[data-testid="terminal-status"][data-status="connected"]').waitFor();

    await page.getByTestId('nav-home').click();
    const row = page.locator(`[data-testid="sandbox-row"][data-sandbox-id="${sandboxId}"]`);
    await row.waitFor();
    // A sandbox created elsewhere (an agent's SDK) appears without a reload.
    const other = await fetch(`${mock.url}/api/sandboxes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ image: 'python:3.12', workspace: '/srv/agents/other' }),
    }).then((r) => r.json() as Promise<{ id: string }>);
    const otherRow = page.locator(`[data-testid="sandbox-row"][data-sandbox-id="${other.id}"]`);
    await otherRow.locator('[data-state="running"]').waitFor();
    mock.setState(other.id, 'error', 'container exited with code 137 (out of memory)');
    await otherRow.locator('[data-state="error"]').waitFor();
    await screenshot(page, 'mock-list');
    await page.setViewportSize(NARROW);
    await screenshot(page, 'mock-list-narrow');
    await page.setViewportSize(DESKTOP);

    await otherRow.getByTestId('sandbox-delete').click();
    await otherRow.getByTestId('sandbox-delete').click();
    await otherRow.waitFor({ state: 'detached' });
  });

  it('says so when a sandbox is gone, instead of a blank page', async () => {
    await page.goto(`${mock.url}/#/sandboxes/${sandboxId}`);
    await page.getByTestId('sandbox-page').waitFor();
    await page.setViewportSize(NARROW);
    await page.waitForTimeout(300);
    await screenshot(page, 'mock-sandbox-narrow', { fullPage: true });
    await page.setViewportSize(DESKTOP);
    await fetch(`${mock.url}/api/sandboxes/${sandboxId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${KEY}` },
    });
    await page.getByTestId('sandbox-missing').waitFor();
    await page.goto(`${mock.url}/#/sandboxes/does-not-exist`);
    await expect
      .poll(() => page.getByTestId('sandbox-missing').textContent())
      .toMatch(/no sandbox does-not-exist/);
    expect(problems.filter((p) => p.startsWith('pageerror'))).toEqual([]);
  });
});
