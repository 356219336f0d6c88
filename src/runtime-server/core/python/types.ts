/** The Python kernel's contract, independent of any wire format. */
export interface CellRequest {
  code: string;
  /** The kernel chdirs here before running the cell (the shell's cwd). */
  cwd: string;
  /** Interrupt the cell after this long; the kernel and its variables survive. */
  timeoutMs: number;
}

export interface CellResult {
  /** stdout, stderr, results and tracebacks in order, ANSI colours stripped, right-stripped. */
  text: string;
  /** data:image/png;base64,... for every PNG display. */
  imageUrls: string[];
  /** True when the cell was interrupted by the timeout. */
  timedOut: boolean;
  /** sys.executable of the kernel. */
  interpreter: string;
}
