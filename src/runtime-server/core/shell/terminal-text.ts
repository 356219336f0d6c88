/**
 * Turns raw terminal output into plain text: no escape sequences, no carriage-return overdraw,
 * "\n" line ends. What a person would read off the screen, minus colours.
 */

// CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), DCS/PM/APC/SOS strings, two-byte ESC
// sequences, and 8-bit C1 CSI. Kept in one regex so one pass cleans a chunk.
const ESCAPE_SEQUENCE =
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[@-Z\\-_]|\x1b[ -/][@-~]|\x9b[0-?]*[ -/]*[@-~]/g;
// Other control characters that have no place in text (keep \t and \n; \r and \b are handled below).
const STRAY_CONTROLS = /[\x00-\x07\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]/g;

/** Removes terminal escape sequences only (the shell's screen text and the Python kernel's cell output). */
export function stripEscapes(text: string): string {
  return text.replace(ESCAPE_SEQUENCE, '');
}

/** Applies backspaces and carriage returns the way a terminal line would show them. */
function renderLine(line: string): string {
  if (!line.includes('\r') && !line.includes('\b')) return line;
  let cells: string[] = [];
  let col = 0;
  for (const ch of line) {
    if (ch === '\r') col = 0;
    else if (ch === '\b') col = Math.max(0, col - 1);
    else {
      cells[col] = ch;
      col++;
    }
  }
  cells = Array.from(cells, (c) => c ?? ' ');
  return cells.join('');
}

export function toPlainText(raw: string): string {
  const noEsc = stripEscapes(raw).replace(/\r+\n/g, '\n');
  const lines = noEsc.split('\n').map(renderLine);
  return lines.join('\n').replace(STRAY_CONTROLS, '');
}
