/**
 * Booleans written as words, read one way everywhere (configuration values, query parameters): the
 * words FastAPI accepts for a bool query parameter, which is what OpenHands' clients send.
 */
const TRUE_WORDS: ReadonlySet<string> = new Set(['true', '1', 'yes', 'on', 't', 'y']);
const FALSE_WORDS: ReadonlySet<string> = new Set(['false', '0', 'no', 'off', 'f', 'n']);

/** The boolean a word means (case and surrounding spaces ignored), or undefined when it means none. */
export function booleanWord(text: string): boolean | undefined {
  const word = text.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  return undefined;
}
