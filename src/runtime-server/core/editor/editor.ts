/**
 * The str_replace editor (view, create, str_replace, insert, undo_edit) with the reference's semantics
 * and messages (OpenHands' OHEditor, V0). It runs in the server's own process, so every file it writes
 * belongs to the user the server runs as. Tool-level failures throw EditorError with the exact text the
 * agent should see; the adapter adds the "ERROR:\n" prefix.
 */
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { BerthError, ErrorCode } from '../../../protocol/errors.js';
import { readRegularFile, writeFileAtomically } from '../fs/regular-file.js';
import { EditHistory } from './history.js';
import { listTwoLevels } from './listing.js';
import { pyOSError, pyStrRepr, strerror } from './os-error.js';
import {
  BINARY_SNIFF_BYTES,
  clip,
  decodeText,
  EncodeError,
  encodeText,
  linesWithEnds,
  looksBinary,
  normalizeNewlines,
  pySplitlines,
  pyStrip,
  type TextEncoding,
} from './text-file.js';
import { EditorError, EditorOSError, type EditorRequest, type EditorResult } from './types.js';

/** The reference's tool name, which its "Unrecognized command" message names. */
const TOOL_NAME = 'oh_editor';
const COMMANDS = ['view', 'create', 'str_replace', 'insert', 'undo_edit'] as const;

/** Longest text shown before the clip notice (the reference's MAX_RESPONSE_LEN_CHAR). */
const MAX_RESPONSE_LEN_CHAR = 16_000;
/** Lines shown above and below an edit in the snippet. */
const SNIPPET_CONTEXT_WINDOW = 4;
/** Larger files are refused: the agent should use grep/sed on them, not load them into its context. */
const MAX_FILE_SIZE_MB = 10;
const BYTES_PER_MB = 1024 * 1024;
/** Versions kept per file for undo_edit. */
const DEFAULT_MAX_HISTORY_PER_FILE = 10;
/** Width of the right-aligned line numbers in `cat -n` output. */
const LINE_NUMBER_WIDTH = 6;

/** View-only types the reference converts to Markdown; edits on them are refused by extension. */
const SUPPORTED_BINARY_EXTENSIONS = new Set([
  '.docx',
  '.xlsx',
  '.pptx',
  '.pdf',
  '.mp3',
  '.wav',
  '.m4a',
  '.flac',
]);

const FILE_TRUNCATED_NOTICE =
  '<response clipped><NOTE>Due to the max output limit, only part of this file has been shown to you. You should retry this tool after you have searched inside the file with `grep -n` in order to find the line numbers of what you are looking for.</NOTE>';
/** find's stderr is clipped with the generic notice. */
const CONTENT_TRUNCATED_NOTICE =
  '<response clipped><NOTE>Due to the max output limit, only part of the full response has been shown to you.</NOTE>';
const DIRECTORY_TRUNCATED_NOTICE =
  '<response clipped><NOTE>Due to the max output limit, only part of this directory has been shown to you. You should use `ls -la` instead to view large directories incrementally.</NOTE>';

export interface FileEditorOptions {
  /** Absolute; relative paths get a "Maybe you meant <root>/<path>?" hint when that file exists. */
  workspaceRoot: string;
  /** @default 10 */
  maxHistoryPerFile?: number;
  /** Where the history directory is made. @default os.tmpdir() */
  historyParentDir?: string;
}

interface LoadedText {
  text: string;
  encoding: TextEncoding;
}

export class FileEditor {
  private readonly root: string;
  private readonly history: EditHistory;
  /** Commands run one at a time, so two edits of one file never interleave their read and write. */
  private tail: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(opts: FileEditorOptions) {
    if (!opts.workspaceRoot.startsWith('/')) {
      throw new TypeError(`workspaceRoot must be an absolute path, got: ${opts.workspaceRoot}`);
    }
    this.root = pyPath(opts.workspaceRoot);
    this.history = new EditHistory(
      opts.maxHistoryPerFile ?? DEFAULT_MAX_HISTORY_PER_FILE,
      opts.historyParentDir ?? tmpdir(),
    );
  }

  /** The directory holding undo history, or null before the first edit. */
  historyDir(): Promise<string | null> {
    return this.history.directory;
  }

  execute(req: EditorRequest): Promise<EditorResult> {
    const run = this.tail.then(() => this.run(req));
    this.tail = run.catch(() => undefined);
    return run;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.tail;
    await this.history.dispose();
  }

  private async run(req: EditorRequest): Promise<EditorResult> {
    if (this.disposed) throw new BerthError(ErrorCode.UNAVAILABLE, 'The file editor has been disposed');
    const insertLine = parseInsertLine(req.insert_line);
    const path = pyPath(req.path);
    const stats = await this.validatePath(req.command, path);
    if (stats && !stats.isFile() && !stats.isDirectory()) {
      // A FIFO or device would block or never end; the reference has no answer for these.
      throw invalidParameter('path', path, `The path ${path} is not a regular file or a directory.`);
    }
    switch (req.command) {
      case 'view':
        return this.view(path, stats!, req.view_range);
      case 'create':
        if (req.file_text == null) throw missingParameter('create', 'file_text');
        return this.create(path, req.file_text);
      case 'str_replace':
        if (req.old_str == null) throw missingParameter('str_replace', 'old_str');
        if (req.new_str === req.old_str) {
          throw invalidParameter(
            'new_str',
            req.new_str,
            'No replacement was performed. `new_str` and `old_str` must be different.',
          );
        }
        return this.strReplace(path, stats!, req.old_str, req.new_str ?? '');
      case 'insert':
        if (insertLine === null) throw missingParameter('insert', 'insert_line');
        if (req.new_str == null) throw missingParameter('insert', 'new_str');
        return this.insert(path, stats!, insertLine, req.new_str);
      case 'undo_edit':
        return this.undo(path, stats!);
    }
    throw new EditorError(
      `Unrecognized command ${req.command}. The allowed commands for the ${TOOL_NAME} tool are: ${COMMANDS.join(', ')}`,
    );
  }

  /** The reference's path checks, in its order; returns the path's stats (null for a new file). */
  private async validatePath(command: string, path: string): Promise<Stats | null> {
    if (!path.startsWith('/')) {
      let hint = 'The path should be an absolute path, starting with `/`.';
      const suggested = pyPath(`${this.root}/${path}`);
      if (await statOrNull(suggested)) hint += ` Maybe you meant ${suggested}?`;
      throw invalidParameter('path', path, hint);
    }
    const stats = await statForExists(path);
    if (command === 'create' && stats) {
      throw invalidParameter(
        'path',
        path,
        `File already exists at: ${path}. Cannot overwrite files using command \`create\`.`,
      );
    }
    if (command !== 'create' && !stats) {
      throw invalidParameter('path', path, `The path ${path} does not exist. Please provide a valid path.`);
    }
    if (command !== 'view') {
      if (stats?.isDirectory()) {
        throw invalidParameter(
          'path',
          path,
          `The path ${path} is a directory and only the \`view\` command can be used on directories.`,
        );
      }
      if (isSupportedBinary(path)) {
        throw invalidParameter(
          'path',
          path,
          `The path ${path} points to a binary file (${pySuffix(path)}) and only the \`view\` command can be used on supported binary files.`,
        );
      }
    }
    return stats;
  }

  private async view(path: string, stats: Stats, viewRange: unknown): Promise<EditorResult> {
    if (stats.isDirectory()) {
      if (pyTruthy(viewRange)) {
        throw invalidParameter(
          'view_range',
          pyStr(viewRange),
          'The `view_range` parameter is not allowed when `path` points to a directory.',
        );
      }
      return { output: await this.viewDirectory(path), prevExist: true, before: null, after: null };
    }

    this.checkSize(path, stats);
    if (isSupportedBinary(path)) {
      // The reference converts these to Markdown with Python libraries that Berth does not carry.
      throw new EditorError(
        `Error in converting file to Markdown: converting ${pySuffix(path)} files is not supported by this runtime. Please use Python code to read ${path}`,
      );
    }
    const { text } = await this.loadText(path, stats);
    const view = (output: string): EditorResult => ({ output, prevExist: true, before: null, after: null });
    if (!pyTruthy(viewRange)) return view(makeOutput(text, path, 1));

    const range = viewRange as unknown[];
    if (!Array.isArray(range) || range.length !== 2 || !range.every(isPyInt)) {
      throw invalidParameter('view_range', pyStr(viewRange), 'It should be a list of two integers.');
    }
    const lines = linesWithEnds(text);
    const numLines = lines.length;
    const start = range[0] as number;
    let end = range[1] as number;
    if (start < 1 || start > numLines) {
      throw invalidParameter(
        'view_range',
        pyStr(viewRange),
        `Its first element \`${start}\` should be within the range of lines of the file: [1, ${numLines}].`,
      );
    }
    let warning: string | null = null;
    if (end === -1) {
      end = numLines;
    } else if (end > numLines) {
      warning = `We only show up to ${numLines} since there're only ${numLines} lines in this file.`;
      end = numLines;
    }
    if (end < start) {
      throw invalidParameter(
        'view_range',
        pyStr(viewRange),
        `Its second element \`${end}\` should be greater than or equal to the first element \`${start}\`.`,
      );
    }
    // A ranged view drops the final line break, so it shows no trailing empty line.
    const selected = pySplitlines(lines.slice(start - 1, end).join('')).join('\n');
    const output = makeOutput(selected, path, start);
    return view(warning ? `NOTE: ${warning}\n${output}` : output);
  }

  private async viewDirectory(path: string): Promise<string> {
    const listing = await listTwoLevels(path);
    if (listing.errors.length > 0) {
      throw new EditorError(
        clip(`${listing.errors.join('\n')}\n`, MAX_RESPONSE_LEN_CHAR, CONTENT_TRUNCATED_NOTICE),
      );
    }
    // The clip applies to find's raw output, before directories get their trailing slash.
    const raw = clip(
      `${listing.paths.join('\n')}\n`,
      MAX_RESPONSE_LEN_CHAR,
      DIRECTORY_TRUNCATED_NOTICE,
    ).trim();
    const formatted = (raw === '' ? [] : raw.split('\n')).map((p) =>
      listing.directories.has(p) && !p.endsWith('/') ? `${p}/` : p,
    );
    let output = `Here's the files and directories up to 2 levels deep in ${path}, excluding hidden items:\n${formatted.join('\n')}`;
    if (listing.hiddenCount > 0) {
      output += `\n\n${listing.hiddenCount} hidden files/directories in this directory are excluded. You can use 'ls -la ${path}' to see them.`;
    }
    return output;
  }

  private async create(path: string, fileText: string): Promise<EditorResult> {
    await this.writeText(path, fileText, 'utf-8', true);
    // The reference saves the new text, so an undo right after create writes the same text back.
    await this.history.push(path, fileText);
    return {
      output: `File created successfully at: ${path}`,
      prevExist: false,
      before: null,
      after: fileText,
    };
  }

  private async strReplace(
    path: string,
    stats: Stats,
    givenOld: string,
    givenNew: string,
  ): Promise<EditorResult> {
    const { text, encoding } = await this.loadText(path, stats);
    let [oldStr, newStr] = [givenOld, givenNew];
    let matchLines = occurrenceLines(text, oldStr);
    if (matchLines.count === 0) {
      // Like the reference, retry without surrounding whitespace (on both strings) before giving up.
      [oldStr, newStr] = [pyStrip(oldStr), pyStrip(newStr)];
      matchLines = occurrenceLines(text, oldStr);
      if (matchLines.count === 0) {
        throw new EditorError(
          `No replacement was performed, old_str \`${oldStr}\` did not appear verbatim in ${path}.`,
        );
      }
    }
    if (matchLines.count > 1) {
      throw new EditorError(
        `No replacement was performed. Multiple occurrences of old_str \`${oldStr}\` in lines [${matchLines.lines.join(', ')}]. Please ensure it is unique.`,
      );
    }
    const index = text.indexOf(oldStr);
    const newText = text.slice(0, index) + newStr + text.slice(index + oldStr.length);
    await this.writeText(path, newText, encoding);
    await this.history.push(path, text);

    const replacementLine = countChar(text, '\n', 0, index) + 1;
    const startLine = Math.max(0, replacementLine - SNIPPET_CONTEXT_WINDOW);
    const endLine = replacementLine + SNIPPET_CONTEXT_WINDOW + countChar(newStr, '\n');
    // The reference re-reads the file for the snippet, so line breaks are as a reader sees them.
    const snippet = linesWithEnds(normalizeNewlines(newText)).slice(startLine, endLine).join('');
    const output =
      `The file ${path} has been edited. ` +
      makeOutput(snippet, `a snippet of ${path}`, startLine + 1) +
      'Review the changes and make sure they are as expected. Edit the file again if necessary.';
    return { output, prevExist: true, before: text, after: newText };
  }

  private async insert(
    path: string,
    stats: Stats,
    insertLine: number,
    newStr: string,
  ): Promise<EditorResult> {
    const { text, encoding } = await this.loadText(path, stats);
    const lines = linesWithEnds(text);
    const numLines = lines.length;
    if (insertLine < 0 || insertLine > numLines) {
      throw invalidParameter(
        'insert_line',
        insertLine,
        `It should be within the range of allowed values: [0, ${numLines}]`,
      );
    }
    // Each new line is written with its own line break, right after line `insertLine` as read (which,
    // at the end of a file without a final newline, joins the last line and the first new one).
    const newLines = newStr.split('\n');
    const newText =
      lines.slice(0, insertLine).join('') +
      newLines.map((l) => `${l}\n`).join('') +
      lines.slice(insertLine).join('');
    await this.writeText(path, newText, encoding);
    await this.history.push(path, text);

    const after = normalizeNewlines(newText);
    const startLine = Math.max(0, insertLine - SNIPPET_CONTEXT_WINDOW);
    const endLine = Math.min(
      numLines + newLines.length,
      insertLine + SNIPPET_CONTEXT_WINDOW + newLines.length,
    );
    const snippet = linesWithEnds(after).slice(startLine, endLine).join('');
    const output =
      `The file ${path} has been edited. ` +
      makeOutput(snippet, 'a snippet of the edited file', startLine + 1) +
      'Review the changes and make sure they are as expected (correct indentation, no duplicate lines, etc). Edit the file again if necessary.';
    return { output, prevExist: true, before: text, after };
  }

  private async undo(path: string, stats: Stats): Promise<EditorResult> {
    const { text, encoding } = await this.loadText(path, stats);
    const previous = await this.history.pop(path);
    if (previous === null) throw new EditorError(`No edit history found for ${path}.`);
    await this.writeText(path, previous, encoding);
    return {
      output: `Last edit to ${path} undone successfully. ${makeOutput(previous, path, 1)}`,
      prevExist: true,
      before: text,
      after: previous,
    };
  }

  private checkSize(path: string, stats: Stats): void {
    const maxBytes = MAX_FILE_SIZE_MB * BYTES_PER_MB;
    if (stats.size > maxBytes) {
      throw fileValidationError(
        path,
        `File is too large (${formatMegabytes(stats.size)}MB). Maximum allowed size is ${MAX_FILE_SIZE_MB}MB.`,
      );
    }
  }

  /** Validates (size, then binary content) and reads a text file, as the reference's read path does. */
  private async loadText(path: string, stats: Stats): Promise<LoadedText> {
    this.checkSize(path, stats);
    let bytes: Buffer;
    try {
      bytes = await readRegularFile(path);
    } catch (err) {
      throw new EditorError(`Ran into ${pyOSError(err, path)} while trying to read ${path}`);
    }
    // binaryornot's is_binary takes a ".pyc" name as binary whatever it holds.
    if (path.endsWith('.pyc') || looksBinary(bytes.subarray(0, BINARY_SNIFF_BYTES))) {
      throw fileValidationError(
        path,
        'File appears to be binary and this file type cannot be read or edited by this tool.',
      );
    }
    return decodeText(bytes);
  }

  /**
   * Writes all or nothing (a temporary file renamed into place, see writeFileAtomically): a failure
   * leaves the old text or no file, never a partial one; an existing file keeps its mode; a new one is
   * created by (and so owned by) the server's user. `exclusive` refuses to replace a file that
   * appeared since the existence check.
   */
  private async writeText(
    path: string,
    text: string,
    encoding: TextEncoding,
    exclusive = false,
  ): Promise<void> {
    try {
      await writeFileAtomically(path, encodeText(text, encoding), { exclusive });
    } catch (err) {
      const reason = err instanceof EncodeError ? err.message : pyOSError(err, path);
      throw new EditorError(`Ran into ${reason} while trying to write to ${path}`);
    }
  }
}

// ---- Reference message shapes ----

function missingParameter(command: string, parameter: string): EditorError {
  return new EditorError(`Parameter \`${parameter}\` is required for command: ${command}.`);
}

function invalidParameter(parameter: string, value: unknown, hint: string): EditorError {
  return new EditorError(`Invalid \`${parameter}\` parameter: ${String(value)}. ${hint}`);
}

function fileValidationError(path: string, reason: string): EditorError {
  return new EditorError(`File validation failed for ${path}: ${reason}`);
}

/** `cat -n` style: each line as a right-aligned number, a TAB and the text; clipped before numbering. */
function makeOutput(content: string, description: string, startLine: number): string {
  const clipped = clip(content, MAX_RESPONSE_LEN_CHAR, FILE_TRUNCATED_NOTICE);
  const numbered = clipped
    .split('\n')
    .map((line, i) => `${String(i + startLine).padStart(LINE_NUMBER_WIDTH)}\t${line}`)
    .join('\n');
  return `Here's the result of running \`cat -n\` on ${description}:\n${numbered}\n`;
}

// ---- Helpers that reproduce Python's behaviour ----

/**
 * The reference's server converts a string insert_line with int() before calling the editor; that is
 * done here so the adapter stays thin. int() accepts surrounding spaces, a sign and digit underscores.
 */
function parseInsertLine(value: EditorRequest['insert_line']): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'string' && /^\s*[+-]?\d+(?:_\d+)*\s*$/.test(value)) {
    const parsed = Number(value.trim().replaceAll('_', ''));
    if (Number.isSafeInteger(parsed)) return parsed;
  }
  throw new EditorError(`Invalid insert_line value: '${String(value)}'. Expected an integer.`);
}

/** Line numbers (sorted, unique) and count of the non-overlapping occurrences of `needle`. */
function occurrenceLines(text: string, needle: string): { count: number; lines: number[] } {
  if (needle === '') {
    // An empty pattern matches at every position (once per character, plus once at the end), so on
    // every line; only an empty file gives it a single match.
    const lineCount = countChar(text, '\n') + 1;
    return { count: text.length + 1, lines: Array.from({ length: lineCount }, (_, i) => i + 1) };
  }
  const lines: number[] = [];
  let count = 0;
  let line = 1;
  let scanned = 0;
  for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + needle.length)) {
    line += countChar(text, '\n', scanned, at);
    scanned = at;
    count++;
    if (lines[lines.length - 1] !== line) lines.push(line);
  }
  return { count, lines };
}

function countChar(text: string, ch: string, from = 0, to = text.length): number {
  let n = 0;
  for (let i = text.indexOf(ch, from); i !== -1 && i < to; i = text.indexOf(ch, i + 1)) n++;
  return n;
}

/** str() of a pathlib.PurePosixPath: repeated and trailing slashes and `.` parts dropped. */
export function pyPath(p: string): string {
  if (p === '') return '.';
  const root = p.startsWith('//') && !p.startsWith('///') ? '//' : p.startsWith('/') ? '/' : '';
  const parts = p.split('/').filter((part) => part !== '' && part !== '.');
  const joined = root + parts.join('/');
  return joined === '' ? '.' : joined;
}

/** pathlib's suffix: the last `.ext` of the name, unless the name starts or ends with that dot. */
function pySuffix(path: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return dot > 0 && dot < name.length - 1 ? name.slice(dot) : '';
}

function isSupportedBinary(path: string): boolean {
  return SUPPORTED_BINARY_EXTENSIONS.has(pySuffix(path).toLowerCase());
}

/**
 * stat() as the reference's Path.exists() sees it: null for the errors that mean "not there" (ENOENT,
 * ENOTDIR, EBADF, ELOOP), an EditorOSError for the rest, e.g. EACCES for a path the user may not look at.
 */
async function statForExists(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined || ['ENOENT', 'ENOTDIR', 'EBADF', 'ELOOP'].includes(code)) return null;
    const errno = (osConstants.errno as Record<string, number>)[code];
    if (errno === undefined) return null;
    throw new EditorOSError(pyOSError(err, path), errno, strerror(err), path);
  }
}

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch {
    return null;
  }
}

function isPyInt(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value);
}

/** Python truthiness for the values a JSON view_range can hold. */
function pyTruthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  return Boolean(value);
}

/** Python's str() for JSON-shaped values, as the reference prints an invalid view_range. */
function pyStr(value: unknown): string {
  return typeof value === 'string' ? value : pyRepr(value);
}

/** Python's repr() for JSON-shaped values. */
function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return Number.isInteger(value) ? BigInt(value).toString() : String(value);
  if (typeof value === 'string') return pyStrRepr(value);
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  return String(value);
}

/** Python's `f'{size / 1024 / 1024:.1f}'`: exact value, ties rounded to even. */
function formatMegabytes(bytes: number): string {
  const scaled = bytes * 10;
  let tenths = Math.floor(scaled / BYTES_PER_MB);
  const remainder = scaled - tenths * BYTES_PER_MB;
  if (remainder * 2 > BYTES_PER_MB || (remainder * 2 === BYTES_PER_MB && tenths % 2 === 1)) tenths++;
  return `${Math.floor(tenths / 10)}.${tenths % 10}`;
}
