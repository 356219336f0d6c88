/**
 * Reads the JSON message stream of the Engine's build and import endpoints: one JSON object per line
 * (`{"stream": "Step 2/7 : RUN ..."}`, `{"aux": {"ID": "sha256:..."}}`, `{"error": ..., "errorDetail": ...}`),
 * turns it into progress events, and remembers enough output to explain a failure.
 */

/** Progress of an image build, import or bootstrap, for a CLI spinner or a log. */
export type ImageProgressEvent =
  /** A phase of Berth's own work around the engine build (fetching Node, checking the base, ...). */
  | { type: 'phase'; message: string }
  /** The engine started Dockerfile step `step` of `totalSteps`. */
  | { type: 'step'; step: number; totalSteps: number; instruction: string }
  /** One line of output: a RUN step's output, engine notes, or bootstrap output. */
  | { type: 'log'; line: string };

export type ImageProgressListener = (event: ImageProgressEvent) => void;

/** Lines of the failing step kept for the error message: enough for a compiler or apt error, not a flood. */
export const FAILED_STEP_OUTPUT_LINES = 40;

export interface BuildFailure {
  message: string;
  step?: number;
  totalSteps?: number;
  instruction?: string;
  /** The last lines the failing step printed. */
  output: string[];
}

const STEP_RE = /^Step (\d+)\/(\d+) : (.*)$/;

/** Incremental parser; feed it chunks, then call `end()`. */
export class BuildStreamParser {
  private pending = '';
  private stepOutput: string[] = [];
  private currentStep: { step: number; totalSteps: number; instruction: string } | undefined;
  /** The image ID the engine reported (build: aux.ID; import: status). */
  imageId: string | undefined;
  failure: BuildFailure | undefined;

  constructor(private readonly onProgress?: ImageProgressListener) {}

  push(chunk: Buffer | string): void {
    this.pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let nl = this.pending.indexOf('\n');
    while (nl >= 0) {
      this.handleLine(this.pending.slice(0, nl));
      this.pending = this.pending.slice(nl + 1);
      nl = this.pending.indexOf('\n');
    }
  }

  end(): void {
    if (this.pending.trim()) this.handleLine(this.pending);
    this.pending = '';
  }

  private handleLine(raw: string): void {
    const line = raw.trim();
    if (!line) return;
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.output(line);
      return;
    }
    if (typeof msg.error === 'string' || (msg.errorDetail && typeof msg.errorDetail === 'object')) {
      const detail = msg.errorDetail as { message?: unknown } | undefined;
      const message = typeof detail?.message === 'string' ? detail.message : String(msg.error);
      this.failure = {
        message: message.trim(),
        ...(this.currentStep ?? {}),
        output: this.stepOutput.slice(-FAILED_STEP_OUTPUT_LINES),
      };
      return;
    }
    const aux = msg.aux as { ID?: unknown } | undefined;
    if (aux && typeof aux.ID === 'string') {
      this.imageId = aux.ID;
      return;
    }
    if (typeof msg.stream === 'string') {
      for (const text of msg.stream.split('\n')) {
        const trimmed = text.replace(/\r$/, '');
        if (!trimmed.trim()) continue;
        const step = STEP_RE.exec(trimmed);
        if (step) {
          this.currentStep = { step: Number(step[1]), totalSteps: Number(step[2]), instruction: step[3]! };
          this.stepOutput = [];
          this.onProgress?.({ type: 'step', ...this.currentStep });
        } else {
          this.output(trimmed);
        }
      }
      return;
    }
    if (typeof msg.status === 'string') {
      // The import endpoint answers {"status": "sha256:..."}; pulls and pushes report progress here too.
      if (/^sha256:[0-9a-f]{64}$/.test(msg.status.trim())) this.imageId = msg.status.trim();
      else this.output(msg.status + (typeof msg.progress === 'string' ? ` ${msg.progress}` : ''));
    }
  }

  private output(line: string): void {
    this.stepOutput.push(line);
    if (this.stepOutput.length > FAILED_STEP_OUTPUT_LINES * 2) {
      this.stepOutput = this.stepOutput.slice(-FAILED_STEP_OUTPUT_LINES);
    }
    this.onProgress?.({ type: 'log', line });
  }
}

/** A human message for a failed build: the step, the engine's error, and what the step printed. */
export function describeBuildFailure(failure: BuildFailure): string {
  const where =
    failure.step === undefined
      ? ''
      : ` at step ${failure.step}/${failure.totalSteps} (${truncate(failure.instruction ?? '', 200)})`;
  const output = failure.output.filter(
    (l) => !l.startsWith(' ---> ') && !l.startsWith('Removing intermediate'),
  );
  const tail = output.length ? `\n${output.join('\n')}` : '';
  return `image build failed${where}: ${failure.message}${tail}`;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
