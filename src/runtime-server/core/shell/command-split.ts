/**
 * The one-command rule: an agent's command may hold one top-level command, where chains (&&, ||, ;,
 * pipes), loops, heredocs and backslash continuations all count as one. Statements that start on the
 * line where the previous one ended belong to it; a new line starts a new command. Comment lines are
 * glued to the command around them, so a leading comment does not count as a command of its own
 * (the reference gets that wrong, issue #10243). Text that does not parse is passed through as one
 * command, as the reference does, and bash reports the error.
 */

export async function splitCommands(command: string): Promise<string[]> {
  // Statements on one line always form one command, so only multi-line text needs the parser
  // (which costs milliseconds per call).
  if (!command.includes('\n')) return [command];
  // Loaded on first use: most commands are one line and never need it, and it costs start-up time.
  const { parse } = await import('sh-syntax');
  let stmts: Awaited<ReturnType<typeof parse>>['Stmts'];
  try {
    stmts = (await parse(command)).Stmts;
  } catch {
    return [command];
  }
  if (stmts.length <= 1) return [command];
  // Offsets from the parser are byte offsets into the UTF-8 text.
  const bytes = Buffer.from(command, 'utf8');
  const groups: Array<{ start: number; end: number; endLine: number }> = [];
  for (const stmt of stmts) {
    const last = groups.at(-1);
    if (last && stmt.Pos.Line === last.endLine) {
      last.end = stmt.End.Offset;
      last.endLine = stmt.End.Line;
    } else {
      groups.push({ start: stmt.Pos.Offset, end: stmt.End.Offset, endLine: stmt.End.Line });
    }
  }
  if (groups.length <= 1) return [command];
  // Text between groups (comments, blank lines) goes with the group before it; text before the
  // first group goes with the first.
  return groups.map((g, i) => {
    const from = i === 0 ? 0 : g.start;
    const to = i + 1 < groups.length ? groups[i + 1]!.start : bytes.length;
    return bytes.subarray(from, to).toString('utf8').trim();
  });
}
