"""The kernel's `netdev` generic netlink family: which NAPI instance serves each queue, and per-queue
stats the driver keeps (qstats). pyroute2 has no netdev family; these are its two dump requests.

Attribute numbers are the uapi's (include/uapi/linux/netdev.h, stable ABI). qstats values are
NLA_UINT: 4 or 8 bytes, so they are read as raw bytes. A kernel or driver without them gives none.
"""

from __future__ import annotations

from typing import Any

from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, genlmsg
from pyroute2.netlink.generic import GenericNetlinkSocket

NETDEV_CMD_QUEUE_GET = 10
NETDEV_CMD_QSTATS_GET = 12
NETDEV_QSTATS_SCOPE_QUEUE = 1
QUEUE_TYPES = {0: "rx", 1: "tx"}
_QSTATS = (
    "ifindex",
    "queue-type",
    "queue-id",
    "scope",
    "5",
    "6",
    "7",
    "rx-packets",
    "rx-bytes",
    "tx-packets",
    "tx-bytes",
    "rx-alloc-fail",
    "rx-hw-drops",
    "rx-hw-drop-overruns",
)


class netdev_queue_msg(genlmsg):  # type: ignore[misc]  # pyroute2 message classes are untyped
    nla_map = (
        ("NETDEV_A_QUEUE_UNSPEC", "none"),
        ("NETDEV_A_QUEUE_ID", "uint32"),
        ("NETDEV_A_QUEUE_IFINDEX", "uint32"),
        ("NETDEV_A_QUEUE_TYPE", "uint32"),
        ("NETDEV_A_QUEUE_NAPI_ID", "uint32"),
    )


class netdev_qstats_msg(genlmsg):  # type: ignore[misc]
    nla_map = (("NETDEV_A_QSTATS_UNSPEC", "none"), *((f"NETDEV_A_QSTATS_{n}", "cdata") for n in _QSTATS))


class NetdevFamily:
    """A generic netlink socket bound to the `netdev` family, in the namespace it was opened in, kept
    open so that each interval's dumps do not resolve the family again. Without the family (before
    Linux 6.8, or not allowed) every dump gives nothing."""

    def __init__(self) -> None:
        self._sock: GenericNetlinkSocket | None = GenericNetlinkSocket()
        try:
            self._sock.bind("netdev", netdev_qstats_msg)
        except Exception:
            self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _dump(self, msg_class: Any, cmd: int, attrs: list[tuple[str, Any]]) -> list[Any]:
        if self._sock is None:
            return []
        msg = msg_class()
        msg["cmd"] = cmd
        msg["version"] = 1
        msg["attrs"] = attrs
        # The socket parses replies with the class it was bound with: set for each request.
        self._sock.marshal.msg_map[self._sock.prid] = msg_class
        try:
            return list(
                self._sock.nlm_request(msg, msg_type=self._sock.prid, msg_flags=NLM_F_REQUEST | NLM_F_DUMP)
            )
        except Exception:  # not allowed, or the driver cannot say: nothing
            return []

    def queue_napi_ids(self) -> dict[int, tuple[tuple[str, int, int], ...]]:
        """ifindex -> (queue type, queue id, napi id) for queues that name their NAPI instance."""
        out: dict[int, list[tuple[str, int, int]]] = {}
        for m in self._dump(netdev_queue_msg, NETDEV_CMD_QUEUE_GET, []):
            napi_id = m.get_attr("NETDEV_A_QUEUE_NAPI_ID")
            if napi_id is None:
                continue
            kind = QUEUE_TYPES.get(m.get_attr("NETDEV_A_QUEUE_TYPE"), "?")
            entry = (kind, int(m.get_attr("NETDEV_A_QUEUE_ID")), int(napi_id))
            out.setdefault(int(m.get_attr("NETDEV_A_QUEUE_IFINDEX")), []).append(entry)
        return {k: tuple(v) for k, v in out.items()}

    def queue_stats(self) -> dict[int, dict[tuple[str, int], dict[str, int]]]:
        """ifindex -> (queue type, id) -> the counters the driver reports (cumulative)."""
        out: dict[int, dict[tuple[str, int], dict[str, int]]] = {}
        scope = NETDEV_QSTATS_SCOPE_QUEUE.to_bytes(4, "little")
        for m in self._dump(netdev_qstats_msg, NETDEV_CMD_QSTATS_GET, [("NETDEV_A_QSTATS_scope", scope)]):
            values = {
                name.removeprefix("NETDEV_A_QSTATS_"): int.from_bytes(raw, "little")
                for name, raw in m["attrs"]
                if name.startswith("NETDEV_A_QSTATS_") and isinstance(raw, bytes)
            }
            ifindex = values.pop("ifindex", None)
            kind = QUEUE_TYPES.get(values.pop("queue-type", -1), "?")
            queue = values.pop("queue-id", -1)
            values.pop("scope", None)
            if ifindex is not None:
                out.setdefault(ifindex, {})[(kind, queue)] = values
        return out
