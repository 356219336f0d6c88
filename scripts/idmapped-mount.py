#!/usr/bin/env python3
"""Berth's idmapped-mount helper (host side, needs root).

  idmapped-mount.py mount SOURCE TARGET --uid U (--all-gids | --gid G [--gid G2 ...])
  idmapped-mount.py umount TARGET
  idmapped-mount.py probe SOURCE

`mount` makes TARGET an idmapped bind mount of the directory SOURCE whose idmapping contains ONLY the
given uid and gids (or every gid), each mapped to itself. Through that mount, files owned by those ids
look the same as on SOURCE; every other id is unmapped: files owned by others show as the overflow id
(65534) and cannot be written (EACCES), and a process whose uid or gid is unmapped (root in a sandbox,
through sudo) can neither create files there nor chown anything to an unmapped id (EOVERFLOW). The mount
is also nosuid and nodev. Only the top mount at SOURCE is cloned, never mounts below it.

`umount` detaches TARGET (lazily, so a sandbox still holding files open does not stop it) and removes
the empty directory. `probe` makes such a mount on a temporary directory and removes it again: exit
code 0 when this kernel, filesystem and process can make idmapped mounts.

util-linux 2.38 (Debian 12) ignores X-mount.idmap, so this uses the new mount API directly:
open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_IDMAP, a user namespace holding the mapping) +
move_mount. Linux 5.12 or later; ext4, xfs, btrfs, tmpfs (6.3+) and others support it.
"""

import ctypes
import errno
import os
import sys
import tempfile

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

# Syscall numbers of the new mount API are the same on every architecture (asm-generic numbering).
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x00000004
MOUNT_ATTR_NOSUID = 0x00000002
MOUNT_ATTR_NODEV = 0x00000004
MOUNT_ATTR_IDMAP = 0x00100000
CLONE_NEWUSER = 0x10000000
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8


class MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def fail(what):
    e = ctypes.get_errno()
    raise OSError(e, f"{what}: {os.strerror(e)}")


ALL_GIDS = "all"


def userns_fd(uid, gids):
    """A user namespace whose uid_map holds only `uid` and whose gid_map holds only `gids` (or, for
    ALL_GIDS, every gid), each mapped to itself. Made by a short-lived child; the returned descriptor keeps
    the namespace alive."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(done_w)
            ok = libc.unshare(CLONE_NEWUSER) == 0
            os.write(ready_w, b"1" if ok else b"0")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(errno.EPERM, "unshare(CLONE_NEWUSER) failed in the helper child")
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1\n")
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write("0 0 4294967295\n" if gids == ALL_GIDS else "".join(f"{g} {g} 1\n" for g in gids))
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(done_w)
        os.close(ready_r)
        os.waitpid(pid, 0)


def idmapped_mount(source, target, uid, gids):
    ns = userns_fd(uid, gids)
    try:
        tree = libc.syscall(
            SYS_OPEN_TREE,
            AT_FDCWD,
            os.fsencode(source),
            ctypes.c_uint(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW),
        )
        if tree < 0:
            fail(f"open_tree({source})")
        try:
            attr = MountAttr(MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, ns)
            if (
                libc.syscall(
                    SYS_MOUNT_SETATTR,
                    ctypes.c_int(tree),
                    b"",
                    ctypes.c_uint(AT_EMPTY_PATH),
                    ctypes.byref(attr),
                    ctypes.c_size_t(ctypes.sizeof(attr)),
                )
                < 0
            ):
                fail(f"mount_setattr(MOUNT_ATTR_IDMAP) on {source}")
            if (
                libc.syscall(
                    SYS_MOVE_MOUNT,
                    ctypes.c_int(tree),
                    b"",
                    AT_FDCWD,
                    os.fsencode(target),
                    ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
                )
                < 0
            ):
                fail(f"move_mount to {target}")
        finally:
            os.close(tree)
    finally:
        os.close(ns)


def detach(target):
    if libc.umount2(os.fsencode(target), MNT_DETACH | UMOUNT_NOFOLLOW) != 0:
        e = ctypes.get_errno()
        if e not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not a mount point (already gone)
            fail(f"umount {target}")
    try:
        os.rmdir(target)
    except FileNotFoundError:
        pass


def main(argv):
    if len(argv) >= 3 and argv[0] == "mount":
        source, target, rest = argv[1], argv[2], argv[3:]
        uid, gids = None, []
        while rest:
            flag, value, rest = rest[0], rest[1] if len(rest) > 1 else None, rest[2:]
            if flag == "--uid" and value is not None:
                uid = int(value)
            elif flag == "--all-gids":
                gids = ALL_GIDS
                rest = [value, *rest] if value is not None else rest
            elif flag == "--gid" and value is not None and gids != ALL_GIDS:
                if int(value) not in gids:
                    gids.append(int(value))
            else:
                raise SystemExit(f"unknown argument {flag}")
        if uid is None or not gids:
            raise SystemExit("mount needs --uid and --all-gids or at least one --gid")
        if not os.path.isdir(source):
            raise SystemExit(f"{source} is not a directory")
        os.makedirs(target, mode=0o700, exist_ok=True)
        try:
            idmapped_mount(source, target, uid, gids)
        except Exception:
            try:
                os.rmdir(target)
            except OSError:
                pass
            raise
        return 0
    if len(argv) == 2 and argv[0] == "umount":
        detach(argv[1])
        return 0
    if len(argv) == 2 and argv[0] == "probe":
        target = tempfile.mkdtemp(prefix=".berth-idmap-probe-", dir=argv[1])
        src = tempfile.mkdtemp(prefix=".berth-idmap-src-", dir=argv[1])
        try:
            idmapped_mount(src, target, os.getuid(), [os.getgid()])
            detach(target)
        finally:
            for d in (target, src):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except OSError as e:
        print(f"idmapped-mount: {e.strerror or e}", file=sys.stderr)
        sys.exit(1)
