/**
 * E2B's users on Berth's user model. envd takes the user from HTTP Basic auth (`user:`), or the
 * `username` query of /files; E2B's images have `user` (the default) and `root`. Here `user`, or no
 * user, is the sandbox user this server runs as (its uid is SANDBOX_USER_ID, so files in a mounted
 * workspace stay the host user's); `root` and any other account of the image are run through the
 * process table's usual way of running as another user (ids when the server is root, else sudo).
 */
import { homedir } from 'node:os';
import { ConnectError } from '../../protocol/connect.js';
import { type Account, findAccount, type RunAs, runAs } from '../core/process/users.js';

/** E2B's name for the sandbox's default user. */
export const DEFAULT_E2B_USER = 'user';

export interface EnvdUser {
  /** As the client named it. */
  name: string;
  account: Account;
  runAs: RunAs;
}

/** This server's own account: fixed for its life, so read once (every envd call asks for it). */
let own: Account | undefined;
function self(): Account {
  if (own) return own;
  const uid = process.getuid?.() ?? 0;
  // homedir(): $HOME, else the passwd entry; an arbitrary SANDBOX_USER_ID may have no entry at all.
  own = findAccount(String(uid)) ?? {
    name: String(uid),
    uid,
    gid: process.getgid?.() ?? uid,
    home: homedir(),
  };
  return own;
}

/** The user a request names (undefined or '' for the default), or unauthenticated as envd answers. */
export function envdUser(name: string | undefined): EnvdUser {
  if (name === undefined || name === '' || name === DEFAULT_E2B_USER) {
    return { name: name || DEFAULT_E2B_USER, account: self(), runAs: { kind: 'self' } };
  }
  const account = findAccount(name);
  if (!account) throw new ConnectError('unauthenticated', `invalid username: '${name}'`);
  return { name, account, runAs: runAs(account.name) };
}

/** The user of a Connect call: HTTP Basic auth's user name, as the SDK sends it. */
export function userFromAuthorization(header: string | undefined): EnvdUser {
  if (!header) return envdUser(undefined);
  const m = /^Basic\s+(\S+)$/i.exec(header);
  if (!m) throw new ConnectError('unauthenticated', 'the Authorization header must be Basic <user:>');
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
  return envdUser(decoded.split(':', 1)[0]);
}
