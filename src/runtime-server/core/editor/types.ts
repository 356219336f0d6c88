/** The str_replace editor's contract, independent of any wire format. */
export interface EditorRequest {
  command: string;
  /** Must be absolute; relative paths are an error with the reference's hint. */
  path: string;
  file_text?: string | null;
  old_str?: string | null;
  new_str?: string | null;
  insert_line?: number | string | null;
  view_range?: number[] | null;
}

export interface EditorResult {
  /** The text the agent sees (the reference's success output). */
  output: string;
  /** Whether the path existed before the command. */
  prevExist: boolean;
  /** Whole file contents before and after, when the command read or changed a file; null otherwise. */
  before: string | null;
  after: string | null;
}

/** A tool-level error; `message` is the reference's text, which the adapter wraps as "ERROR:\n<message>". */
export class EditorError extends Error {
  override readonly name = 'EditorError';
}

/**
 * An OSError the reference lets escape instead of wording it: its existence check (Python's
 * Path.exists) raises on anything but "no such file", e.g. EACCES for a path under /root as a
 * non-root user. The message is Python's str() of it, `[Errno 13] Permission denied: '/root/x'`.
 */
export class EditorOSError extends EditorError {
  constructor(
    message: string,
    readonly errno: number,
    readonly strerror: string,
    readonly filename: string,
  ) {
    super(message);
  }
}
