/**
 * Running a process as another user of the sandbox. A server running as root sets the uid and gid
 * itself; the usual server runs as the sandbox user, which has passwordless sudo in Berth's images, so
 * the command is run through `sudo -n` (which fails at once, with sudo's own message, where that is not
 * allowed).
 */
import { readFileSync } from 'node:fs';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** The /etc/passwd entry for a name or a numeric uid, if there is one. */
export function findAccount(user: string): Account | undefined {
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [name, , uid, gid, , home] = line.split(':');
    if (!name || uid === undefined || gid === undefined) continue;
    if (name === user || uid === user) return { name, uid: Number(uid), gid: Number(gid), home: home ?? '/' };
  }
  return undefined;
}

export type RunAs =
  | { kind: 'self' }
  | { kind: 'ids'; uid: number; gid: number; home: string }
  | { kind: 'sudo'; user: string };

/** How to run as `user` from this server: as itself, by setting ids (root), or through sudo. */
export function runAs(user: string | undefined): RunAs {
  if (user === undefined) return { kind: 'self' };
  const self = process.getuid?.() ?? -1;
  const account = findAccount(user);
  if (account?.uid === self || (account === undefined && user === String(self))) return { kind: 'self' };
  if (self === 0) {
    const uid = account?.uid ?? Number(user);
    return { kind: 'ids', uid, gid: account?.gid ?? uid, home: account?.home ?? '/' };
  }
  if (!account && !/^\d+$/.test(user)) throw new Error(`no such user in the sandbox: ${user}`);
  return { kind: 'sudo', user: account?.name ?? `#${user}` };
}

/**
 * The argv that runs `argv` as `user` through sudo, in `cwd`; spawn it in SUDO_SPAWN_CWD. The variables named in `keep` pass through sudo's
 * reset from the spawn's own environment (never on the command line, where /proc shows them to all).
 */
export function sudoArgv(
  user: string,
  argv: readonly string[],
  keep: readonly string[],
  cwd: string,
): string[] {
  return [
    'sudo',
    '-n',
    '-H',
    '-u',
    user,
    ...(keep.length ? [`--preserve-env=${keep.join(',')}`] : []),
    '--',
    // The directory is entered by the target user: the server's own may not enter it (root's home).
    // sudo's -D needs a sudoers rule, so a shell does it; 126, as for a command that cannot run.
    '/bin/sh',
    '-c',
    'cd -- "$1" || exit 126; shift; exec "$@"',
    'sh',
    cwd,
    ...argv,
  ];
}

/** Where a process run through sudo is spawned: anywhere the server may enter (see sudoArgv). */
export const SUDO_SPAWN_CWD = '/';

/**
 * What a SpawnSpec needs to run `argv` in `cwd` as `as`: the ids set directly (a root server), or
 * sudo in front (with the variables named in `keep` passed through its reset), or as it is. The
 * one place the exec socket and envd's processes turn a user into a spawn.
 */
export function spawnAs(
  as: RunAs,
  argv: readonly string[],
  cwd: string,
  keep: readonly string[],
): { command: string; args: string[]; cwd: string; uid?: number; gid?: number; viaSudo: boolean } {
  const full = as.kind === 'sudo' ? sudoArgv(as.user, argv, keep, cwd) : [...argv];
  const [command, ...args] = full as [string, ...string[]];
  return {
    command,
    args,
    cwd: as.kind === 'sudo' ? SUDO_SPAWN_CWD : cwd,
    ...(as.kind === 'ids' ? { uid: as.uid, gid: as.gid } : {}),
    viaSudo: as.kind === 'sudo',
  };
}
