"""The sandbox's shared storage, as a site's NFS export with root_squash: a FUSE file system that passes
every operation through to a host folder, done with the caller's uid and gids, except that root (uid 0)
is nobody (65534) there - root on a node has no more rights on the shared storage than nobody.

    python squashfs.py BACKING MOUNTPOINT     (run as root by sandbox.py up; it stays in the foreground)

Each FUSE request runs in its own thread; the thread takes the caller's identity for the file system
(setfsuid, setfsgid and its own supplementary groups, per thread on Linux), so the kernel checks every
permission of the backing folder as it would for the caller. A file system uid other than 0 drops
root's CAP_DAC_OVERRIDE, CAP_FOWNER and CAP_CHOWN with it: squashed root cannot read, write, chmod or
chown what nobody could. Needs fusepy (requirements/dev.txt) and libfuse2.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import threading

from fuse import FUSE, FuseOSError, Operations, fuse_get_context

NOBODY = 65534
LIBC = ctypes.CDLL(None, use_errno=True)
SYS_SETGROUPS = 116  # x86_64; the raw system call sets the calling thread's groups only (glibc's sets every thread's)
LIBC.syscall.restype = ctypes.c_long


def squashed(ident: int) -> int:
    return NOBODY if ident == 0 else ident


def groups_of(pid: int) -> list[int]:
    """The caller's supplementary groups (its /proc status, read by the daemon, which is root on the host)."""
    try:
        with open("/proc/%d/status" % pid, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Groups:"):
                    return [squashed(int(g)) for g in line.split()[1:]]
    except (OSError, ValueError):
        pass
    return []


class As:
    """The calling thread takes the FUSE caller's identity for the file system, and gives it back."""

    def __enter__(self):
        uid, gid, pid = fuse_get_context()
        groups = groups_of(pid)
        array = (ctypes.c_uint * max(len(groups), 1))(*groups)
        if LIBC.syscall(SYS_SETGROUPS, len(groups), array) != 0:
            raise FuseOSError(errno.EPERM)
        LIBC.setfsgid(squashed(gid))
        LIBC.setfsuid(squashed(uid))
        return self

    def __exit__(self, *exc):
        LIBC.setfsuid(0)
        LIBC.setfsgid(0)
        LIBC.syscall(SYS_SETGROUPS, 0, None)
        return False


def call(function, *args):
    try:
        with As():
            return function(*args)
    except OSError as exc:
        raise FuseOSError(exc.errno) from exc


STAT_KEYS = ("st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime", "st_mtime", "st_ctime")


class Squashed(Operations):
    def __init__(self, backing: str):
        self.backing = os.path.realpath(backing)

    def real(self, path: str) -> str:
        return os.path.join(self.backing, path.lstrip("/"))

    # ---- metadata
    def getattr(self, path, fh=None):
        st = os.fstat(fh) if fh is not None else call(os.lstat, self.real(path))
        found = {key: getattr(st, key) for key in STAT_KEYS}
        found.update(st_atime=st.st_atime_ns / 1e9, st_mtime=st.st_mtime_ns / 1e9, st_ctime=st.st_ctime_ns / 1e9)
        return found

    def access(self, path, amode):
        if not call(os.access, self.real(path), amode):
            raise FuseOSError(errno.EACCES)

    def readdir(self, path, fh):
        return [".", ".."] + call(os.listdir, self.real(path))

    def readlink(self, path):
        return call(os.readlink, self.real(path))

    def statfs(self, path):
        st = call(os.statvfs, self.real(path))
        return {key: getattr(st, key) for key in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                                                   "f_files", "f_flag", "f_frsize", "f_namemax")}

    def chmod(self, path, mode):
        return call(os.chmod, self.real(path), mode)

    def chown(self, path, uid, gid):
        return call(os.lchown, self.real(path), uid, gid)

    def utimens(self, path, times=None):
        real = self.real(path)
        if times is None:
            return call(lambda: os.utime(real, follow_symlinks=False))
        return call(lambda: os.utime(real, ns=(int(times[0] * 1e9), int(times[1] * 1e9)), follow_symlinks=False))

    # ---- names
    def mkdir(self, path, mode):
        return call(os.mkdir, self.real(path), mode)

    def rmdir(self, path):
        return call(os.rmdir, self.real(path))

    def unlink(self, path):
        return call(os.unlink, self.real(path))

    def symlink(self, target, source):
        return call(os.symlink, source, self.real(target))

    def link(self, target, source):
        return call(os.link, self.real(source), self.real(target))

    def rename(self, old, new):
        return call(os.rename, self.real(old), self.real(new))

    def mknod(self, path, mode, dev):
        return call(os.mknod, self.real(path), mode, dev)

    # ---- contents (the descriptor was opened with the caller's rights; reads and writes use it)
    def open(self, path, flags):
        return call(os.open, self.real(path), flags)

    def create(self, path, mode, fi=None):
        return call(os.open, self.real(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        if fh is not None:
            return os.ftruncate(fh, length)
        return call(os.truncate, self.real(path), length)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)
        return 0

    def fsync(self, path, datasync, fh):
        return os.fdatasync(fh) if datasync else os.fsync(fh)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    os.umask(0)  # the kernel has applied the caller's umask to every mode it passes
    threading.stack_size(512 * 1024)
    FUSE(Squashed(argv[0]), argv[1], foreground=True, nothreads=False, allow_other=True, use_ino=True,
         attr_timeout=0, entry_timeout=0, fsname="squashed-nfs", subtype="squashfs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
