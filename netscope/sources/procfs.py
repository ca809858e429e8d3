"""Readers of /proc and sysfs: the kernel's own counters and names.

Each `parse_*` is pure (text in, values out) so it is unit-tested; each `read_*` does the I/O.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from netscope.model.containers import Container, container_of
from netscope.model.drops import SNMP_IN_COUNTERS, SNMP_LOSS_COUNTERS
from netscope.model.sample import HostInfo, ProcessFacts, SocketOwner

PROC = Path("/proc")
SYS = Path("/sys")


@dataclass(frozen=True)
class InterruptLine:
    irq: int
    per_cpu: tuple[int, ...]
    name: str  # action name(s), e.g. "virtio2-input.0"


@dataclass(frozen=True)
class SoftnetTotals:
    cpu: int
    processed: int
    dropped: int
    time_squeeze: int


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """'0-3,6' -> (0, 1, 2, 3, 6), the kernel's cpulist format."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(cpus)


def parse_interrupts(text: str) -> tuple[tuple[int, ...], list[InterruptLine]]:
    """/proc/interrupts: the CPU ids of its columns and its numbered lines.

    Only numbered lines reach irq:irq_handler_entry; LOC, RES, CAL, TLB... are architecture
    vectors and are left out.
    """
    lines = text.splitlines()
    cpus = tuple(int(c[3:]) for c in lines[0].split()) if lines else ()
    out = []
    for line in lines[1:]:
        head, sep, rest = line.partition(":")
        if not sep or not head.strip().isdigit():
            continue
        fields = rest.split()
        counts = []
        for f in fields[: len(cpus)]:
            if not f.isdigit():
                break
            counts.append(int(f))
        tail = rest.split(None, len(counts) + 2)
        name = tail[len(counts) + 2] if len(tail) > len(counts) + 2 else ""
        out.append(InterruptLine(int(head), tuple(counts), name.strip()))
    return cpus, out


def parse_softirqs(text: str) -> tuple[tuple[int, ...], dict[str, tuple[int, ...]]]:
    """/proc/softirqs: column CPU ids, and vector name -> per-CPU run counts, in vector order."""
    lines = text.splitlines()
    cpus = tuple(int(c[3:]) for c in lines[0].split()) if lines else ()
    rows: dict[str, tuple[int, ...]] = {}
    for line in lines[1:]:
        name, sep, rest = line.partition(":")
        if sep:
            rows[name.strip()] = tuple(int(x) for x in rest.split())
    return cpus, rows


def parse_softnet_stat(text: str) -> list[SoftnetTotals]:
    """/proc/net/softnet_stat: one hex line per online CPU; the 13th column is the CPU id (5.10+)."""
    out = []
    for index, line in enumerate(text.splitlines()):
        fields = [int(x, 16) for x in line.split()]
        if len(fields) < 3:
            continue
        cpu = fields[12] if len(fields) > 12 else index
        out.append(SoftnetTotals(cpu, fields[0], fields[1], fields[2]))
    return out


SNMP6_GROUPS = ("Ip6", "Icmp6", "UdpLite6", "Udp6")  # snmp6 glues the group to the name
NETSTAT_GROUPS = ("TcpExt", "IpExt", "MPTcpExt")  # /proc/net/netstat's; the rest are snmp's


def parse_snmp(text: str) -> dict[tuple[str, str], int]:
    """/proc/net/snmp and /proc/net/netstat: per group, a line of names then a line of values."""
    out: dict[tuple[str, str], int] = {}
    lines = [line.split() for line in text.splitlines() if line.strip()]
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names[0] != values[0] or not names[0].endswith(":"):
            raise ValueError(f"unexpected snmp lines: {names[0]} / {values[0]}")
        group = names[0][:-1]
        out.update(((group, n), int(v)) for n, v in zip(names[1:], values[1:], strict=True))
    return out


def parse_snmp6(text: str) -> dict[tuple[str, str], int]:
    """/proc/net/snmp6: one 'Udp6NoPorts 12' per line."""
    out: dict[tuple[str, str], int] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 2:
            continue
        group = next((g for g in SNMP6_GROUPS if fields[0].startswith(g)), None)
        if group is not None:
            out[(group, fields[0][len(group) :])] = int(fields[1])
    return out


def read_snmp_counters(
    keys: Iterable[tuple[str, str]] | None = None, net: Path = PROC / "net"
) -> dict[tuple[str, str], int]:
    """The counters `keys` this kernel has (by default the loss and in counters, `SNMP_LOSS_COUNTERS`
    and `SNMP_IN_COUNTERS`), as totals since boot or since the namespace was created; a file missing
    (no IPv6) leaves its counters out. `net`: the namespace's /proc/net (THREAD_NET: this thread's,
    after a setns)."""
    wanted = _SNMP_KEYS if keys is None else tuple(keys)
    groups = {group for group, _ in wanted}
    files = (
        ("snmp", parse_snmp, bool(groups.difference(SNMP6_GROUPS, NETSTAT_GROUPS))),
        ("netstat", parse_snmp, bool(groups.intersection(NETSTAT_GROUPS))),
        ("snmp6", parse_snmp6, bool(groups.intersection(SNMP6_GROUPS))),
    )
    found: dict[tuple[str, str], int] = {}
    for name, parse, needed in files:  # only the files that hold what is asked (netstat is the longest)
        if not needed:
            continue
        try:
            found.update(parse((net / name).read_text()))
        except FileNotFoundError:
            continue
    return {key: found[key] for key in wanted if key in found}


THREAD_NET = PROC / "thread-self" / "net"  # the network namespace of the thread reading it


_SNMP_KEYS = tuple(
    (group, name)
    for counters in (SNMP_LOSS_COUNTERS, SNMP_IN_COUNTERS)
    for group, names in counters.items()
    for name in names
)


def parse_stat_interrupt_ticks(text: str) -> dict[int, tuple[int, int]]:
    """/proc/stat: per CPU, the ticks (USER_HZ) spent in hardirqs and in softirqs since boot."""
    out = {}
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0].startswith("cpu") and fields[0][3:].isdigit() and len(fields) > 7:
            out[int(fields[0][3:])] = (int(fields[6]), int(fields[7]))
    return out


def read_stat_interrupt_ticks() -> dict[int, tuple[int, int]]:
    return parse_stat_interrupt_ticks((PROC / "stat").read_text())


# The sysctls findings name as knobs (their current values go with every sample).
SYSCTLS = (
    "net.core.netdev_max_backlog",
    "net.core.netdev_budget",
    "net.core.netdev_budget_usecs",
    "net.core.dev_weight",
    "net.core.rmem_default",
    "net.core.rmem_max",
    "net.ipv4.tcp_rmem",  # netscope's own namespace's (it is per namespace)
)


def read_tunables(irqs: Iterable[int]) -> tuple[tuple[str, str], ...]:
    """The knobs' current values: `SYSCTLS` and the affinity of `irqs` ("irq/N/smp_affinity_list")."""
    out: list[tuple[str, str]] = []
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            out.append((name, (PROC / "sys" / name.replace(".", "/")).read_text().strip()))
    for irq in irqs:
        with contextlib.suppress(OSError):
            out.append(
                (
                    f"irq/{irq}/smp_affinity_list",
                    (PROC / "irq" / str(irq) / "smp_affinity_list").read_text().strip(),
                )
            )
    return tuple(out)


def read_rps_masks(sys_root: Path | None = None, netns: str = "") -> tuple[tuple[str, str], ...]:
    """Each RX queue that steers with RPS (mask not 0), in the namespace whose sysfs is at
    `sys_root` (netscope's own by default): "rps_cpus:DEV/rx-N", or "rps_cpus:DEV@NETNS/rx-N"
    when that namespace is another, named `netns`."""
    out: list[tuple[str, str]] = []
    where = f"@{netns}" if netns else ""
    for rps in sorted(((sys_root or SYS) / "class" / "net").glob("*/queues/rx-*/rps_cpus")):
        with contextlib.suppress(OSError):
            mask = rps.read_text().strip()
            if mask.strip("0,"):
                out.append((f"rps_cpus:{rps.parts[-4]}{where}/{rps.parts[-2]}", mask))
    return tuple(out)


def read_interrupt_counts() -> tuple[tuple[int, ...], list[InterruptLine]]:
    """/proc/interrupts as it is (the names as /proc shows them)."""
    return parse_interrupts((PROC / "interrupts").read_text())


def read_interrupts() -> tuple[tuple[int, ...], list[InterruptLine]]:
    """/proc/interrupts, with each line's name from /sys/kernel/irq/N/actions where it exists
    (the /proc columns before the name vary by interrupt controller)."""
    cpus, lines = read_interrupt_counts()
    named = []
    for line in lines:
        try:
            actions = (SYS / "kernel" / "irq" / str(line.irq) / "actions").read_text().strip()
        except OSError:
            actions = ""
        named.append(InterruptLine(line.irq, line.per_cpu, actions) if actions else line)
    return cpus, named


def read_softirqs() -> tuple[tuple[int, ...], dict[str, tuple[int, ...]]]:
    return parse_softirqs((PROC / "softirqs").read_text())


def read_softnet_stat() -> list[SoftnetTotals]:
    return parse_softnet_stat((PROC / "net" / "softnet_stat").read_text())


def read_online_cpus() -> tuple[int, ...]:
    return parse_cpu_list((SYS / "devices/system/cpu/online").read_text())


def read_host_info() -> HostInfo:
    boot = 0.0
    for line in (PROC / "stat").read_text().splitlines():
        if line.startswith("btime "):
            boot = float(line.split()[1])
    netns = os.stat("/proc/self/ns/net").st_ino
    return HostInfo(socket.gethostname(), os.uname().release, read_online_cpus(), boot, netns)


def read_device_owners() -> tuple[dict[str, str], dict[int, str]]:
    """Which network or block device owns a bus device (e.g. virtio2 -> eth0) or an MSI IRQ.

    Used to name IRQ lines: drivers name them after the bus device (`virtio2-input.0`) or the
    interface (`eth0-TxRx-0`); MSI vectors listed in sysfs catch the rest.
    """
    by_bus: dict[str, str] = {}
    by_irq: dict[int, str] = {}
    for kind in ("net", "block"):
        root = SYS / "class" / kind
        if not root.is_dir():
            continue
        for dev in sorted(root.iterdir()):
            try:
                link = dev / "device"
                if not link.exists() or (kind == "block" and (dev / "partition").exists()):
                    continue
                bus_dev = link.resolve()
                by_bus.setdefault(bus_dev.name, dev.name)
                for parent in (bus_dev, bus_dev.parent):
                    msi = parent / "msi_irqs"
                    if msi.is_dir():
                        for entry in msi.iterdir():
                            if entry.name.isdigit():
                                by_irq.setdefault(int(entry.name), dev.name)
                        break
            except OSError:
                continue  # the device went away while being read
    return by_bus, by_irq


def read_interfaces() -> set[str]:
    root = SYS / "class" / "net"
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


@dataclass(frozen=True)
class NetnsRef:
    name: str  # `ip netns` name, or "pid N comm" of a process living there
    path: str  # a path to enter it (setns)


NAMED_NETNS = (Path("/run/netns"), Path("/var/run/netns"))


def named_netns_changed() -> float:
    """When a namespace was last named or unnamed (`ip netns add` / `del`): the directories' mtimes."""
    stamp = 0.0
    for root in NAMED_NETNS:
        with contextlib.suppress(OSError):
            stamp = max(stamp, root.stat().st_mtime)
    return stamp


def read_netns(wanted: set[int] | None) -> dict[int, NetnsRef]:
    """Names and entry paths for network namespace inodes (None: every namespace a process or
    `ip netns` holds): `ip netns` names (/run/netns), else a process living there ("pid 1234 nginx")
    for the unnamed ones containers make."""
    found: dict[int, NetnsRef] = {}
    for root in NAMED_NETNS:
        if root.is_dir():
            for entry in root.iterdir():
                try:
                    found.setdefault(entry.stat().st_ino, NetnsRef(entry.name, str(entry)))
                except OSError:
                    continue
    missing = None if wanted is None else wanted - set(found)
    if missing is None or missing:
        for pid_dir in PROC.iterdir():
            if not pid_dir.name.isdigit():
                continue
            try:
                link = os.readlink(pid_dir / "ns" / "net")
                inode = int(link[link.index("[") + 1 : -1])
                if inode not in found and (missing is None or inode in missing):
                    comm = (pid_dir / "comm").read_text().strip()
                    found[inode] = NetnsRef(f"pid {pid_dir.name} {comm}", str(pid_dir / "ns" / "net"))
                    if missing is not None:
                        missing.discard(inode)
            except (OSError, ValueError):
                continue
            if missing is not None and not missing:
                break
    return found if wanted is None else {k: v for k, v in found.items() if k in wanted}


def read_socket_owners() -> tuple[SocketOwner, ...]:
    """TCP/UDP sockets of netscope's own namespace with their process (psutil sees only this one)."""
    import socket as _socket

    import psutil

    owners = []
    names: dict[int, str] = {}
    for c in psutil.net_connections(kind="inet"):
        if c.pid is None or not c.laddr:
            continue
        if c.pid not in names:
            try:
                names[c.pid] = psutil.Process(c.pid).name()
            except psutil.Error:
                names[c.pid] = ""
        proto = 6 if c.type == _socket.SOCK_STREAM else 17
        raddr, rport = (c.raddr.ip, c.raddr.port) if c.raddr else ("", 0)
        owners.append(SocketOwner(proto, c.laddr.ip, c.laddr.port, raddr, rport, c.pid, names[c.pid]))
    return tuple(owners)


def read_process_facts(pids: Iterable[int]) -> tuple[ProcessFacts, ...]:
    """Each of `pids` still alive: its name, cgroup v2 path, network namespace and socket count (a
    process gone meanwhile is left out)."""
    out = []
    for pid in pids:
        base = PROC / str(pid)
        try:
            comm = (base / "comm").read_text().strip()
            cgroup = parse_cgroup_v2((base / "cgroup").read_text())
            netns = os.stat(base / "ns" / "net").st_ino
            sockets = 0
            for fd in os.scandir(base / "fd"):
                with contextlib.suppress(OSError):  # closed meanwhile
                    sockets += os.readlink(fd.path).startswith("socket:")
        except OSError:
            continue
        out.append(ProcessFacts(pid, comm, cgroup, netns, sockets))
    return tuple(out)


def read_socket_pids(inodes: Collection[int]) -> dict[int, int]:
    """socket inode -> the pid holding it (the lowest, where several share it), for `inodes`:
    every process's file descriptors looked through (/proc/PID/fd), until all are found."""
    wanted = {f"socket:[{ino}]": ino for ino in inodes}
    found: dict[int, int] = {}
    for entry in sorted(os.scandir(PROC), key=lambda e: int(e.name) if e.name.isdigit() else 0):
        if not entry.name.isdigit():
            continue
        try:
            fds = list(os.scandir(f"{entry.path}/fd"))
        except OSError:  # gone, or not ours to read
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                ino = wanted.get(os.readlink(fd.path))
                if ino is not None and ino not in found:
                    found[ino] = int(entry.name)
        if len(found) == len(wanted):
            break
    return found


def parse_cgroup_v2(text: str) -> str:
    """/proc/PID/cgroup: the unified hierarchy's path (its `0::` line), also on a v1/v2 hybrid."""
    for line in text.splitlines():
        if line.startswith("0::"):
            return line[3:]
    return ""


def cgroup_paths(ids: Collection[int], mount: Path) -> dict[int, str]:
    """cgroup id (what bpf_get_current_cgroup_id returns: the v2 directory's inode) -> its path as
    /proc/PID/cgroup writes it ("/system.slice/ssh.service"), for `ids`: the hierarchy under
    `mount` walked until all are found."""
    wanted, found = set(ids), {}
    for root, _dirs, _files in os.walk(mount):
        with contextlib.suppress(OSError):  # removed meanwhile
            ino = os.stat(root).st_ino
            if ino in wanted:
                found[ino] = "/" + os.path.relpath(root, mount) if root != str(mount) else "/"
                if len(found) == len(wanted):
                    break
    return found


def container_cgroups(mount: Path) -> dict[int, Container]:
    """Every cgroup v2 directory under `mount` that is a container's (or a pod's, or inside one),
    by its id (the directory's inode, what bpf_get_current_cgroup_id returns)."""
    found = {}
    for root, _dirs, _files in os.walk(mount):
        container = container_of("/" + os.path.relpath(root, mount))
        if container is not None:
            with contextlib.suppress(OSError):  # removed meanwhile
                found[os.stat(root).st_ino] = container
    return found


def cgroup_paths_here(ids: Collection[int]) -> dict[int, str]:
    """cgroup_paths under this system's cgroup v2 mount (nothing where there is none)."""
    mount = cgroup2_mount()
    return cgroup_paths(ids, mount) if mount is not None else {}


def cgroup2_mount(mountinfo: str | None = None) -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a
    v1/v2 hybrid): the mount point of the first `cgroup2` filesystem in /proc/self/mountinfo."""
    text = (PROC / "self" / "mountinfo").read_text() if mountinfo is None else mountinfo
    for line in text.splitlines():
        fields = line.split()
        if " - cgroup2 " in line and len(fields) > 4:
            return Path(fields[4])
    return None


BPF_STATS = PROC / "sys" / "kernel" / "bpf_stats_enabled"


def read_bpf_stats_enabled() -> int | None:
    try:
        return int(BPF_STATS.read_text())
    except (OSError, ValueError):
        return None


def write_bpf_stats_enabled(value: int) -> bool:
    try:
        BPF_STATS.write_text(str(value))
    except OSError:
        return False
    return True


def read_own_usage() -> tuple[float, int]:
    """(CPU seconds used so far by this process, its RSS in bytes), from /proc/self."""
    fields = (PROC / "self" / "stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_s = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu_s, rss
