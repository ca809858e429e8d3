"""sysfs as another network namespace sees it. /sys/class/net lists the devices of the namespace
that mounted sysfs, and files such as a queue's rps_cpus exist nowhere else (not in netlink). As
`ip netns exec` does, a thread of its own leaves netscope's mount namespace, joins each namespace
and mounts a fresh sysfs over /sys: nothing of it is seen outside that thread, and it all goes
with the thread."""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 2
SYS = Path("/sys")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _read_each(namespaces: Mapping[str, str], read: Callable[[Path, str], T], out: dict[str, T]) -> None:
    """In a thread about to end: unshare the mount namespace (kept private, so that no mount
    propagates back to the host), then each network namespace in turn."""
    try:
        _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    except OSError:  # not root: only netscope's own namespace can be read
        return
    for name, path in namespaces.items():
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # the namespace is gone
            continue
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), f"setns({path})")
            _check(_libc.mount(b"sysfs", os.fsencode(SYS), b"sysfs", 0, None), "mount sysfs")
        except OSError:
            continue
        finally:
            os.close(fd)
        try:
            out[name] = read(SYS, name)
        except OSError:
            pass
        finally:
            _libc.umount2(os.fsencode(SYS), MNT_DETACH)


def read_sysfs_in(namespaces: Mapping[str, str], read: Callable[[Path, str], T]) -> dict[str, T]:
    """`read(sysfs root, name)` in each namespace ({name: path to enter it}), by name; those that
    cannot be entered (gone, or netscope is not root) are left out."""
    out: dict[str, T] = {}
    if namespaces:
        reader = threading.Thread(target=_read_each, args=(namespaces, read, out), name="netns-sysfs")
        reader.start()
        reader.join()
    return out
