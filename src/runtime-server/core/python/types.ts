/** The Python kernel's contract, independent of any wire format. */
export interface CellRequest {
  code: string;
  /**
   * The shell's cwd. As in the reference, the kernel chdirs here before the cell only when it differs
   * from the cwd of the kernel's previous cell (or the kernel is new): a cell's own os.chdir persists
   * while the shell's cwd stays the same. A failed chdir is silent; the kernel stays where it was.
   */
  cwd: string;
  /** Interrupt the cell after this long; the kernel and its variables survive. */
  timeoutMs: number;
}

export interface CellResult {
  /**
   * stdout, stderr, results and tracebacks, ANSI colours stripped, right-stripped; in the order a Jupyter
   * client receives them from ipykernel (see OutputCapture in kernel.ts).
   */
  text: string;
  /** The cell output anything at all, if only whitespace (the reference's "no output" is its absence). */
  hadOutput: boolean;
  /** data:image/png;base64,... for every PNG display. */
  imageUrls: string[];
  /** True when the cell was interrupted by the timeout. */
  timedOut: boolean;
  /** sys.executable of the kernel. */
  interpreter: string;
}
