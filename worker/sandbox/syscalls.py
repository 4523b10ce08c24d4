"""Syscall numbers the seccomp filter names, per architecture (from the kernel's uapi headers)."""

from __future__ import annotations

# Denied with EPERM: network, tracing, namespaces and mounts, credentials, kernel
# interfaces, SysV/POSIX IPC, new processes and exec, signals to other tasks.
_DENIED_NAMES = """
    socket socketpair connect bind listen accept accept4 ptrace process_vm_readv
    process_vm_writev mount umount2 pivot_root chroot unshare setns fsopen fsconfig fsmount
    fspick move_mount open_tree mount_setattr setuid setgid setreuid setregid setresuid
    setresgid setfsuid setfsgid setgroups capset keyctl add_key request_key bpf perf_event_open
    personality userfaultfd io_uring_setup io_uring_enter io_uring_register kexec_load
    kexec_file_load init_module finit_module delete_module reboot swapon swapoff acct
    settimeofday clock_settime clock_adjtime adjtimex sethostname setdomainname iopl ioperm
    mknod mknodat open_by_handle_at name_to_handle_at lookup_dcookie syslog quotactl
    quotactl_fd vhangup pidfd_open pidfd_getfd pidfd_send_signal kcmp fanotify_init msgget
    msgsnd msgrcv msgctl semget semop semtimedop semctl shmget shmat shmdt shmctl mq_open
    mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr fork vfork execve execveat
    tkill rt_sigqueueinfo rt_tgsigqueueinfo move_pages migrate_pages uselib ustat sysfs _sysctl
    nfsservctl
"""
DENIED: tuple[str, ...] = tuple(_DENIED_NAMES.split())

# fmt: off
X86_64: dict[str, int] = {
    "socket": 41, "socketpair": 53, "connect": 42, "bind": 49, "listen": 50, "accept": 43,
    "accept4": 288, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272,
    "setns": 308, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "move_mount": 429, "open_tree": 428, "mount_setattr": 442, "setuid": 105, "setgid": 106,
    "setreuid": 113, "setregid": 114, "setresuid": 117, "setresgid": 119, "setfsuid": 122,
    "setfsgid": 123, "setgroups": 116, "capset": 126, "keyctl": 250, "add_key": 248,
    "request_key": 249, "bpf": 321, "perf_event_open": 298, "personality": 135,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163,
    "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159,
    "sethostname": 170, "setdomainname": 171, "iopl": 172, "ioperm": 173, "mknod": 133,
    "mknodat": 259, "open_by_handle_at": 304, "name_to_handle_at": 303, "lookup_dcookie": 212,
    "syslog": 103, "quotactl": 179, "quotactl_fd": 443, "vhangup": 153, "pidfd_open": 434,
    "pidfd_getfd": 438, "pidfd_send_signal": 424, "kcmp": 312, "fanotify_init": 300,
    "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "semget": 64, "semop": 65,
    "semtimedop": 220, "semctl": 66, "shmget": 29, "shmat": 30, "shmdt": 67, "shmctl": 31,
    "mq_open": 240, "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243,
    "mq_notify": 244, "mq_getsetattr": 245, "fork": 57, "vfork": 58, "execve": 59,
    "execveat": 322, "tkill": 200, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
    "move_pages": 279, "migrate_pages": 256, "uselib": 134, "ustat": 136, "sysfs": 139,
    "_sysctl": 156, "nfsservctl": 180, "clone": 56, "clone3": 435, "ioctl": 16, "kill": 62,
    "tgkill": 234,
}

AARCH64: dict[str, int] = {
    "socket": 198, "socketpair": 199, "connect": 203, "bind": 200, "listen": 201,
    "accept": 202, "accept4": 242, "ptrace": 117, "process_vm_readv": 270,
    "process_vm_writev": 271, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
    "unshare": 97, "setns": 268, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "move_mount": 429, "open_tree": 428, "mount_setattr": 442, "setuid": 146, "setgid": 144,
    "setreuid": 145, "setregid": 143, "setresuid": 147, "setresgid": 149, "setfsuid": 151,
    "setfsgid": 152, "setgroups": 159, "capset": 91, "keyctl": 219, "add_key": 217,
    "request_key": 218, "bpf": 280, "perf_event_open": 241, "personality": 92,
    "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "kexec_load": 104, "kexec_file_load": 294, "init_module": 105, "finit_module": 273,
    "delete_module": 106, "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89,
    "settimeofday": 170, "clock_settime": 112, "clock_adjtime": 266, "adjtimex": 171,
    "sethostname": 161, "setdomainname": 162, "mknodat": 33, "lookup_dcookie": 18,
    "syslog": 116, "quotactl": 60, "quotactl_fd": 443, "vhangup": 58, "pidfd_open": 434,
    "pidfd_getfd": 438, "pidfd_send_signal": 424, "kcmp": 272, "fanotify_init": 262,
    "msgget": 186, "msgsnd": 189, "msgrcv": 188, "msgctl": 187, "semget": 190, "semop": 193,
    "semtimedop": 192, "semctl": 191, "shmget": 194, "shmat": 196, "shmdt": 197, "shmctl": 195,
    "mq_open": 180, "mq_unlink": 181, "mq_timedsend": 182, "mq_timedreceive": 183,
    "mq_notify": 184, "mq_getsetattr": 185, "execve": 221, "execveat": 281, "tkill": 130,
    "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240, "move_pages": 239, "migrate_pages": 238,
    "nfsservctl": 42, "clone": 220, "clone3": 435, "ioctl": 29, "kill": 129, "tgkill": 131,
}
# fmt: on
