// /berth/drop-privileges.mjs: used by /berth/entrypoint.sh on base images without setpriv. Started as root
// by the pinned Node with BERTH_DROP_UID/GID/USER set, it switches this process to the sandbox user
// (supplementary groups, then gid, then uid, so no way back to root remains), then loads the script
// named by its first argument, which sees its own flags at process.argv[2...] as if started directly.
//   node /berth/drop-privileges.mjs /berth/runtime-server.mjs --port 8000 --working-dir /workspace
import { pathToFileURL } from 'node:url';

const uid = Number(process.env.BERTH_DROP_UID);
const gid = Number(process.env.BERTH_DROP_GID);
const user = process.env.BERTH_DROP_USER;
delete process.env.BERTH_DROP_UID;
delete process.env.BERTH_DROP_GID;
delete process.env.BERTH_DROP_USER;

if (!Number.isInteger(uid) || !Number.isInteger(gid) || !user || uid <= 0) {
  process.stderr.write('berth drop-privileges: BERTH_DROP_UID, BERTH_DROP_GID and BERTH_DROP_USER must be set\n');
  process.exit(1);
}
try {
  process.initgroups(user, gid);
  process.setgid(gid);
  process.setuid(uid);
} catch (err) {
  process.stderr.write(`berth drop-privileges: cannot switch to ${user} (${uid}:${gid}): ${err.message}\n`);
  process.exit(1);
}
if (process.getuid() !== uid || process.geteuid() !== uid) {
  process.stderr.write('berth drop-privileges: still privileged after setuid; refusing to go on\n');
  process.exit(1);
}

const target = process.argv[2];
if (!target) {
  process.stderr.write('berth drop-privileges: no script to run\n');
  process.exit(1);
}
process.argv.splice(1, 1);
await import(pathToFileURL(target).href);
