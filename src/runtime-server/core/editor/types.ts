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
