/**
 * Helpers for the browser tests: building the UI, launching Debian's Chromium through playwright-core,
 * screenshots, and reading and typing into the xterm.js terminal. DOM code runs inside the page as
 * strings, so these files need no DOM types.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SCREENSHOT_DIR = path.join(REPO, '.test-results/screenshots');

export const DESKTOP = { width: 1280, height: 800 };
export const NARROW = { width: 390, height: 844 };

export function chromiumMissingReason(): string | null {
  if (existsSync(CHROMIUM)) return null;
  return `${CHROMIUM} is missing: install it with "apt-get install -y chromium". THE WEB UI BROWSER TESTS ARE SKIPPED.`;
}

/**
 * Builds the UI with Vite into a directory of the test's own (never web/dist, which a running
 * `berth up` serves), as the production build `npm run build` makes: vitest sets NODE_ENV=test,
 * which would otherwise give React's development build.
 */
export function buildWeb(outDir: string = mkdtempSync(path.join(os.tmpdir(), 'berth-web-test-'))): string {
  if (path.resolve(outDir) === path.join(REPO, 'web/dist')) {
    throw new Error(
      'tests build the web UI into their own directory, not web/dist (a running Berth serves it)',
    );
  }
  const vite = path.join(REPO, 'node_modules/vite/bin/vite.js');
  execFileSync(
    process.execPath,
    [vite, 'build', 'web', '--mode', 'production', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'],
    {
      cwd: REPO,
      env: { ...process.env, NODE_ENV: 'production' },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  return outDir;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export async function screenshot(
  page: Page,
  name: string,
  options: { fullPage?: boolean } = {},
): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: options.fullPage ?? false });
  return file;
}

/** Collects page errors and failed console messages, to print when a test fails. */
export function watchPage(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  return problems;
}

/** The terminal's visible text (xterm's DOM renderer keeps one element per row). */
export async function terminalText(page: Page): Promise<string> {
  return page.evaluate(`(() => {
    const rows = document.querySelector('[data-testid="terminal-screen"] .xterm-rows');
    return rows ? [...rows.children].map((r) => r.textContent.replace(/\\u00a0/g, ' ')).join('\\n') : '';
  })()`);
}

export async function waitForTerminalText(page: Page, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < end) {
    text = await terminalText(page);
    if (pattern.test(text)) return text;
    await page.waitForTimeout(100);
  }
  throw new Error(`terminal never showed ${pattern}; it shows:\n${text}`);
}

/** Focuses the terminal and types, as a person would (Enter is sent as "\r" by xterm). */
export async function typeInTerminal(page: Page, text: string): Promise<void> {
  await page.locator('[data-testid="terminal-screen"] .xterm').click();
  await page.keyboard.type(text, { delay: 15 });
}

/** Drops a file onto an element, as a drag from the desktop would. */
export async function dropFile(page: Page, selector: string, name: string, content: string): Promise<void> {
  const dataTransfer = await page.evaluateHandle(
    `(() => { const dt = new DataTransfer(); dt.items.add(new File([${JSON.stringify(content)}], ${JSON.stringify(name)}, { type: 'text/plain' })); return dt; })()`,
  );
  const target = page.locator(selector).first();
  await target.dispatchEvent('dragenter', { dataTransfer });
  await target.dispatchEvent('dragover', { dataTransfer });
  await target.dispatchEvent('drop', { dataTransfer });
}

/** Replaces the editor's contents the way typing would (select all, type). */
export async function replaceEditorText(page: Page, text: string): Promise<void> {
  const editor = page.getByTestId('file-editor');
  await editor.click();
  await editor.press('ControlOrMeta+a');
  await editor.pressSequentially(text, { delay: 5 });
}
