/**
 * Berth's seccomp profile for sandboxes, passed to Docker as JSON in HostConfig.SecurityOpt. It
 * replaces Docker's default profile, so it refuses what that profile refuses to an unprivileged
 * container (kernel surfaces a sandbox never needs), and adds the rules that keep files with
 * privilege out of the mounted workspace: no setuid or setgid bits (by chmod, or in the mode a file or
 * directory is created with) and no device nodes. Everything else is allowed: the capability set (see
 * container-spec.ts) and the idmapped workspace mount do the rest.
 *
 * Written for Berth from the kernel's syscall documentation, not copied from another profile. It
 * lists what is refused (default allow) rather than what is allowed: a sandbox runs arbitrary
 * software (compilers, databases, browsers, package managers), and an allow list would break
 * whatever uses a syscall it forgot.
 *
 * Rules never put two conditions on one argument: libseccomp 2.5 (Debian 12) does not combine them
 * as expected (measured: every call matched). Each condition is a masked compare on one argument.
 */

/** One entry of Docker's seccomp JSON format (the fields Docker 20.10 reads). */
export interface SeccompRule {
  names: string[];
  action: 'SCMP_ACT_ERRNO';
  errnoRet: number;
  args?: Array<{ index: number; value: number; valueTwo: number; op: 'SCMP_CMP_MASKED_EQ' }>;
  comment: string;
}

export interface SeccompProfile {
  defaultAction: 'SCMP_ACT_ALLOW';
  archMap: Array<{ architecture: string; subArchitectures: string[] }>;
  syscalls: SeccompRule[];
}

const EPERM = 1;
const ENOSYS = 38;
/** An "error" of 0: the call does nothing and reports success. */
const SKIP = 0;

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** clone/unshare flags that make a new namespace (CLONE_NEWTIME is only valid for unshare and clone3). */
const NAMESPACE_FLAGS = {
  CLONE_NEWTIME: 0x00000080,
  CLONE_NEWNS: 0x00020000,
  CLONE_NEWCGROUP: 0x02000000,
  CLONE_NEWUTS: 0x04000000,
  CLONE_NEWIPC: 0x08000000,
  CLONE_NEWUSER: 0x10000000,
  CLONE_NEWPID: 0x20000000,
  CLONE_NEWNET: 0x40000000,
};

/** `(argument index & mask) == mask`: the call asks for every bit of `mask`. */
function bits(index: number, mask: number) {
  return { index, value: mask, valueTwo: mask, op: 'SCMP_CMP_MASKED_EQ' as const };
}
function fileType(index: number, type: number) {
  return { index, value: S_IFMT, valueTwo: type, op: 'SCMP_CMP_MASKED_EQ' as const };
}

/** Syscalls whose mode argument, at this index, sets the bits of a new file or directory. */
const CREATE_MODE_ARG: Record<string, number> = {
  open: 2,
  openat: 3,
  creat: 1,
  mkdir: 1,
  mkdirat: 2,
  mknod: 1,
  mknodat: 2,
};
/** Syscalls that change the mode of an existing file, and their mode argument's index. */
const CHMOD_MODE_ARG: Record<string, number> = { chmod: 1, fchmod: 1, fchmodat: 2, fchmodat2: 2 };

function byIndex(table: Record<string, number>): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const [name, index] of Object.entries(table)) out.set(index, [...(out.get(index) ?? []), name]);
  return out;
}

function modeRules(): SeccompRule[] {
  const rules: SeccompRule[] = [];
  for (const [index, names] of byIndex(CHMOD_MODE_ARG)) {
    for (const [bit, label] of [
      [S_ISUID, 'setuid'],
      [S_ISGID, 'setgid'],
    ] as const) {
      rules.push({
        names,
        action: 'SCMP_ACT_ERRNO',
        errnoRet: SKIP,
        args: [bits(index, bit)],
        comment:
          `A chmod asking for the ${label} bit changes nothing and reports success. A ${label} file in the ` +
          'workspace would give whoever runs it on the host the privilege of its owner. Success rather than ' +
          "EPERM, as the kernel itself silently drops setgid for a caller outside the file's group: dpkg " +
          "(and package scripts such as iputils-ping's) stop on a failed chmod of the setuid helpers a " +
          'package ships; those helpers stay without the bit, which a sandbox with sudo does not need.',
      });
    }
  }
  for (const [index, names] of byIndex(CREATE_MODE_ARG)) {
    for (const [bit, label] of [
      [S_ISUID, 'setuid'],
      [S_ISGID, 'setgid'],
    ] as const) {
      rules.push({
        names,
        action: 'SCMP_ACT_ERRNO',
        errnoRet: EPERM,
        args: [bits(index, bit)],
        comment: `Creating a file or directory with the ${label} bit in its mode is refused (EPERM).`,
      });
    }
  }
  for (const [name, index] of [
    ['mknod', 1],
    ['mknodat', 2],
  ] as const) {
    for (const [type, label] of [
      [S_IFCHR, 'character'],
      [S_IFBLK, 'block'],
    ] as const) {
      rules.push({
        names: [name],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: EPERM,
        args: [fileType(index, type)],
        comment: `No ${label} device nodes (also without CAP_MKNOD); FIFOs and sockets stay allowed.`,
      });
    }
  }
  rules.push({
    names: ['openat2'],
    action: 'SCMP_ACT_ERRNO',
    errnoRet: ENOSYS,
    comment:
      "openat2's mode is inside a struct seccomp cannot read, so it looks unimplemented (ENOSYS); libc and " +
      'runtimes then use openat, whose mode is checked above.',
  });
  return rules;
}

function namespaceRules(): SeccompRule[] {
  const rules: SeccompRule[] = [];
  for (const [flag, mask] of Object.entries(NAMESPACE_FLAGS)) {
    const names = flag === 'CLONE_NEWTIME' ? ['unshare'] : ['unshare', 'clone'];
    rules.push({
      names,
      action: 'SCMP_ACT_ERRNO',
      errnoRet: EPERM,
      args: [bits(0, mask)],
      comment:
        `No new namespaces (${flag}). A user namespace would give the sandbox every capability inside it ` +
        '(mounts, setcap) and a large kernel surface; Docker refuses these to unprivileged containers too.',
    });
  }
  rules.push({
    names: ['clone3'],
    action: 'SCMP_ACT_ERRNO',
    errnoRet: ENOSYS,
    comment:
      "clone3's flags are inside a struct seccomp cannot read: it looks unimplemented (ENOSYS) and glibc " +
      'falls back to clone, whose flags are checked above.',
  });
  rules.push({
    names: ['setns'],
    action: 'SCMP_ACT_ERRNO',
    errnoRet: EPERM,
    comment: "No joining other namespaces (through a descriptor of another process's namespace).",
  });
  return rules;
}

/** Whole syscalls refused with EPERM, each group with its reason. */
const REFUSED: Array<[string[], string]> = [
  [
    ['add_key', 'keyctl', 'request_key'],
    'The kernel keyring is not namespaced: keys would be shared with the host and other containers.',
  ],
  [['bpf'], 'eBPF programs and maps: a large kernel attack surface, and tracing of other processes.'],
  [['perf_event_open'], 'Performance events can observe the host and other containers.'],
  [['userfaultfd'], 'A common primitive in kernel exploits (pausing the kernel mid-copy).'],
  [
    ['io_uring_setup', 'io_uring_enter', 'io_uring_register'],
    'io_uring runs file operations (openat, mkdirat with a mode) that seccomp never sees, and is a frequent source of kernel bugs.',
  ],
  [['kexec_load', 'kexec_file_load', 'reboot'], 'Loading a new kernel or rebooting the host.'],
  [['init_module', 'finit_module', 'delete_module', 'create_module'], 'Kernel modules.'],
  [
    ['mount', 'umount', 'umount2', 'pivot_root'],
    'Mounts: a sandbox could hide or reshape its own filesystem view (mounts over the workspace).',
  ],
  [
    ['fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr'],
    'The new mount API (same reasons as mount; open_tree can also clone mounts).',
  ],
  [['swapon', 'swapoff'], 'Host swap devices.'],
  [['settimeofday', 'clock_settime', 'clock_adjtime', 'stime'], 'The system clock is shared with the host.'],
  [['acct'], 'Process accounting writes to a host file of its choosing.'],
  [['quotactl', 'quotactl_fd'], 'Disk quotas of host filesystems.'],
  [
    ['open_by_handle_at', 'name_to_handle_at'],
    'File handles open files by inode, bypassing the mount: the classic container escape.',
  ],
  [['lookup_dcookie', 'nfsservctl', 'uselib', '_sysctl', 'sysfs', 'ustat'], 'Obsolete interfaces.'],
  [['iopl', 'ioperm'], 'Direct I/O port access.'],
  [['syslog'], 'The kernel log belongs to the host.'],
  [['vhangup'], 'Hanging up the controlling terminal of others.'],
];

/**
 * personality is allowed with every argument. Docker allows only a few values; here that cannot be
 * expressed (a deny rule would need two conditions on one argument, see above), and the flags it sets
 * (no ASLR, READ_IMPLIES_EXEC) affect only the calling process, never the host or the workspace.
 */
export function sandboxSeccompProfile(): SeccompProfile {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    // 32-bit and x32 system calls go through the same rules (int 0x80 works in any x86-64 process).
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    ],
    syscalls: [
      ...modeRules(),
      ...namespaceRules(),
      ...REFUSED.map(([names, comment]) => ({
        names,
        action: 'SCMP_ACT_ERRNO' as const,
        errnoRet: EPERM,
        comment,
      })),
    ],
  };
}

let cached: string | undefined;
/** The profile as Docker takes it: `seccomp=<json>` in HostConfig.SecurityOpt. */
export function seccompSecurityOpt(): string {
  cached ??= `seccomp=${JSON.stringify(sandboxSeccompProfile())}`;
  return cached;
}
