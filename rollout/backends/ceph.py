"""Ceph: pure parsers of `ceph ... -f json` output, and `CephAdmin`, the executor's door to Ceph.

Parsers are pure functions of recorded JSON (unit-tested with the shapes Ceph 16 prints). `CephAdmin`
runs `ceph` commands through a pluggable `CephCommandRunner`: Ansible on the region's ceph admin host
(`AnsibleCephRunner`, through the one ansible-runner wrapper) or `podman exec <container>` for the lab.

Invariants and decisions:
- "Clean" is decided from PG states, never from HEALTH_OK: unrelated warnings (a muted check, a
  clock skew, `noout` itself raising OSD_FLAGS) keep health yellow while data is perfectly safe, and
  HEALTH_OK can precede peering. A PG counts as active+clean only when its state has both `active`
  and `clean` and nothing outside a short allowlist (scrubbing, snaptrim): anything unknown is unclean.
- `osd ok-to-stop` is trusted only when rc == 0 AND the JSON says `ok_to_stop: true`. rc 16 (EBUSY)
  with a JSON report is a normal "no" (with the numbers); rc 11 (EAGAIN) means unknown PG states and
  is transient; any other rc is an error.
- noout is set per CRUSH bucket (`set-group noout <host>`), never cluster-wide, and `osd dump` is
  the source of truth for what is set (`crush_node_flags`, and per-OSD `state` for `osd.N` groups).
- Command output never contains secrets (the admin keyring stays on the admin host); nothing here
  logs command output beyond the command words.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from rollout.errors import PermanentError, SafetyRefused, TransientError
from rollout.model.observation import CephObservation

if TYPE_CHECKING:
    from rollout.backends.ansible import AnsibleRunner

LOG = logging.getLogger(__name__)

EBUSY = 16
EAGAIN = 11

# States that may accompany active+clean without putting data at risk.
_BENIGN_EXTRA_STATES = frozenset({"active", "clean", "scrubbing", "deep", "snaptrim", "snaptrim_wait"})


class CephParseError(PermanentError):
    """Ceph printed something that is not the JSON shape we expect (wrong command, wrong release)."""


# --------------------------------------------------------------------------------------------------
# PG states
# --------------------------------------------------------------------------------------------------
def is_active_clean(state: str) -> bool:
    parts = set(state.split("+"))
    return {"active", "clean"} <= parts and parts <= _BENIGN_EXTRA_STATES


@dataclass(frozen=True)
class PgSummary:
    total: int
    by_state: tuple[tuple[str, int], ...]  # sorted by state name

    @property
    def active_clean(self) -> int:
        return sum(n for s, n in self.by_state if is_active_clean(s))

    @property
    def all_active_clean(self) -> bool:
        # NOTE: a cluster with zero PGs is not "clean" for our purpose: it usually means the mgr has
        # not reported yet (pg_ready false), and treating it as clean would unfence too early.
        return self.total > 0 and self.active_clean == self.total

    @property
    def not_clean(self) -> tuple[tuple[str, int], ...]:
        return tuple((s, n) for s, n in self.by_state if not is_active_clean(s))

    def describe(self) -> str:
        bad = ", ".join(f"{n} {s}" for s, n in self.not_clean) or "none"
        return f"{self.active_clean}/{self.total} PGs active+clean (others: {bad})"


def _summary(counts: Mapping[str, int], total: int | None) -> PgSummary:
    n = sum(counts.values())
    return PgSummary(total=total if total is not None else n, by_state=tuple(sorted(counts.items())))


def parse_pg_summary(doc: Any) -> PgSummary:
    """PG states from any of: `pg stat`, `status` (`-s`), `pg dump pgs_brief` (list or {pg_stats})."""
    counts: dict[str, int]
    if isinstance(doc, Mapping) and "pg_summary" in doc:  # ceph pg stat -f json
        s = doc["pg_summary"]
        counts = {e["name"]: int(e["num"]) for e in s.get("num_pg_by_state", [])}
        return _summary(counts, int(s.get("num_pgs", sum(counts.values()))))
    if isinstance(doc, Mapping) and "pgmap" in doc:  # ceph status -f json
        m = doc["pgmap"]
        counts = {e["state_name"]: int(e["count"]) for e in m.get("pgs_by_state", [])}
        return _summary(counts, int(m.get("num_pgs", sum(counts.values()))))
    stats = doc.get("pg_stats") if isinstance(doc, Mapping) else doc  # pg dump pgs_brief
    if isinstance(stats, list):
        counts = {}
        for pg in stats:
            counts[pg["state"]] = counts.get(pg["state"], 0) + 1
        return _summary(counts, None)
    raise CephParseError(
        "Unrecognised PG JSON: expected `ceph pg stat`, `ceph status` or `ceph pg dump pgs_brief` output",
        hint="run the command with `-f json` on a Ceph >= 14 cluster",
    )


# --------------------------------------------------------------------------------------------------
# osd ok-to-stop
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OkToStop:
    ok: bool
    osds: tuple[int, ...]
    num_ok_pgs: int = 0
    num_not_ok_pgs: int = 0
    bad_become_inactive: tuple[str, ...] = ()
    bad_already_inactive: tuple[str, ...] = ()
    unknown_pgs: tuple[str, ...] = ()
    ok_become_degraded: tuple[str, ...] = ()
    rc: int = 0

    def describe(self) -> str:
        ids = ",".join(str(o) for o in self.osds) or "-"
        verdict = "ok to stop" if self.ok else "NOT ok to stop"
        extra = ""
        if self.bad_become_inactive:
            extra += f"; {len(self.bad_become_inactive)} PGs would become inactive"
        if self.bad_already_inactive:
            extra += f"; {len(self.bad_already_inactive)} PGs already inactive"
        if self.unknown_pgs:
            extra += f"; {len(self.unknown_pgs)} PGs in unknown state"
        counts = f"{self.num_ok_pgs} PGs ok, {self.num_not_ok_pgs} not ok"
        return f"OSDs {ids} {verdict}: {counts}{extra} (rc {self.rc})"


def parse_ok_to_stop(rc: int, stdout: str, stderr: str = "") -> OkToStop:
    """`ceph osd ok-to-stop <ids> -f json`: rc 0 = yes, rc 16 (EBUSY) + JSON = no, rc 11 = transient."""
    if rc == EAGAIN:
        raise TransientError(
            f"ceph osd ok-to-stop cannot answer yet (EAGAIN: some PG states are unknown): {stderr.strip()[:200]}",
            retry_after=10.0,
        )
    if rc not in (0, EBUSY):
        raise PermanentError(
            f"ceph osd ok-to-stop failed with rc {rc}: {stderr.strip()[:200]}",
            hint="check the OSD ids exist (`ceph osd tree`) and the admin host can reach the mons",
        )
    try:
        doc = json.loads(stdout) if stdout.strip() else {}
    except json.JSONDecodeError as exc:
        raise CephParseError(f"ceph osd ok-to-stop printed invalid JSON: {exc}") from exc
    if not doc and rc == 0:
        raise CephParseError("ceph osd ok-to-stop returned rc 0 but no JSON report; refusing to assume yes")
    if not doc:  # EBUSY with the report on stderr only (older releases): a plain no.
        return OkToStop(ok=False, osds=(), rc=rc)
    return OkToStop(
        ok=rc == 0 and bool(doc.get("ok_to_stop")),
        osds=tuple(int(o) for o in doc.get("osds", ())),
        num_ok_pgs=int(doc.get("num_ok_pgs", 0)),
        num_not_ok_pgs=int(doc.get("num_not_ok_pgs", 0)),
        bad_become_inactive=tuple(doc.get("bad_become_inactive", ())),
        bad_already_inactive=tuple(doc.get("bad_already_inactive", ())),
        unknown_pgs=tuple(doc.get("unknown_pgs", ())),
        ok_become_degraded=tuple(doc.get("ok_become_degraded", ())),
        rc=rc,
    )


# --------------------------------------------------------------------------------------------------
# osd tree / osd dump / osd stat / health
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CrushBucket:
    id: int
    name: str
    type: str
    children: tuple[int, ...]


@dataclass(frozen=True)
class OsdTreeEntry:
    id: int
    name: str
    up: bool
    reweight: float
    device_class: str | None = None


@dataclass(frozen=True)
class OsdTree:
    buckets: tuple[CrushBucket, ...]
    osds: tuple[OsdTreeEntry, ...]

    def bucket(self, name: str) -> CrushBucket | None:
        return next((b for b in self.buckets if b.name == name), None)

    def osds_under(self, name: str) -> tuple[int, ...]:
        """OSD ids anywhere under the named bucket (host or rack), sorted."""
        root = self.bucket(name)
        if root is None:
            return ()
        by_id = {b.id: b for b in self.buckets}
        found: set[int] = set()
        stack = list(root.children)
        while stack:
            cid = stack.pop()
            if cid >= 0:
                found.add(cid)
            elif cid in by_id:
                stack.extend(by_id[cid].children)
        return tuple(sorted(found))

    def host_of(self, osd_id: int) -> str | None:
        return next((b.name for b in self.buckets if b.type == "host" and osd_id in b.children), None)

    @property
    def down(self) -> tuple[int, ...]:
        return tuple(sorted(o.id for o in self.osds if not o.up))


def parse_osd_tree(doc: Any) -> OsdTree:
    try:
        nodes = doc["nodes"]
    except (KeyError, TypeError) as exc:
        raise CephParseError("`ceph osd tree -f json` output has no `nodes`") from exc
    buckets, osds = [], []
    for n in nodes:
        if n.get("type") == "osd" or int(n["id"]) >= 0:
            osds.append(
                OsdTreeEntry(
                    id=int(n["id"]),
                    name=n.get("name", f"osd.{n['id']}"),
                    up=n.get("status") == "up",
                    reweight=float(n.get("reweight", 0.0)),
                    device_class=n.get("device_class"),
                )
            )
        else:
            buckets.append(
                CrushBucket(id=int(n["id"]), name=n["name"], type=n["type"], children=tuple(n.get("children", ())))
            )
    # `stray` lists OSDs that exist but are not in the CRUSH map (e.g. just created); they are OSDs too.
    for n in doc.get("stray", ()):
        osds.append(OsdTreeEntry(id=int(n["id"]), name=n.get("name", ""), up=n.get("status") == "up", reweight=0.0))
    return OsdTree(buckets=tuple(buckets), osds=tuple(sorted(osds, key=lambda o: o.id)))


@dataclass(frozen=True)
class OsdState:
    id: int
    up: bool
    in_: bool
    state: tuple[str, ...]


@dataclass(frozen=True)
class PoolSize:
    name: str
    size: int
    min_size: int

    def describe(self) -> str:
        return f"pool {self.name} (size {self.size}, min_size {self.min_size})"


@dataclass(frozen=True)
class OsdDump:
    epoch: int
    flags: frozenset[str]  # cluster-wide flags (noout here would mean the whole cluster)
    crush_node_flags: Mapping[str, tuple[str, ...]]
    device_class_flags: Mapping[str, tuple[str, ...]]
    osds: tuple[OsdState, ...]
    pools: tuple[PoolSize, ...] = ()

    @property
    def pools_without_headroom(self) -> tuple[PoolSize, ...]:
        """Pools that stop serving I/O as soon as one copy is missing: no host may ever stop for them."""
        return tuple(p for p in self.pools if p.min_size >= p.size)

    def groups_with(self, flag: str) -> tuple[str, ...]:
        """CRUSH buckets and `osd.N` names that carry a per-group flag (set-group/add-noout)."""
        names = {name for name, fl in self.crush_node_flags.items() if flag in fl}
        names |= {f"osd.{o.id}" for o in self.osds if flag in o.state}
        return tuple(sorted(names))

    @property
    def noout_groups(self) -> tuple[str, ...]:
        return self.groups_with("noout")

    @property
    def down(self) -> tuple[int, ...]:
        return tuple(o.id for o in self.osds if not o.up)


def parse_osd_dump(doc: Any) -> OsdDump:
    if not isinstance(doc, Mapping) or "osds" not in doc:
        raise CephParseError("`ceph osd dump -f json` output has no `osds`")
    if "flags_set" in doc:
        flags = frozenset(doc["flags_set"])
    else:
        flags = frozenset(f for f in str(doc.get("flags", "")).split(",") if f)
    return OsdDump(
        epoch=int(doc.get("epoch", 0)),
        flags=flags,
        crush_node_flags={k: tuple(v) for k, v in (doc.get("crush_node_flags") or {}).items()},
        device_class_flags={k: tuple(v) for k, v in (doc.get("device_class_flags") or {}).items()},
        osds=tuple(
            OsdState(id=int(o["osd"]), up=bool(o.get("up")), in_=bool(o.get("in")), state=tuple(o.get("state", ())))
            for o in doc["osds"]
        ),
        pools=tuple(
            PoolSize(name=str(p.get("pool_name", p.get("pool", "?"))), size=int(p.get("size", 0)),
                     min_size=int(p.get("min_size", 0)))
            for p in doc.get("pools") or ()
        ),
    )


@dataclass(frozen=True)
class OsdStat:
    num_osds: int
    num_up_osds: int
    num_in_osds: int

    @property
    def all_up(self) -> bool:
        return self.num_osds > 0 and self.num_osds == self.num_up_osds


def parse_osd_stat(doc: Any) -> OsdStat:
    # Ceph < 15 nested the numbers under "osdmap"; accept both.
    d = doc.get("osdmap", doc) if isinstance(doc, Mapping) else {}
    try:
        return OsdStat(int(d["num_osds"]), int(d["num_up_osds"]), int(d["num_in_osds"]))
    except (KeyError, TypeError) as exc:
        raise CephParseError("`ceph osd stat -f json` output lacks num_osds/num_up_osds/num_in_osds") from exc


@dataclass(frozen=True)
class Health:
    status: str
    checks: Mapping[str, str]  # code -> summary message (muted checks excluded)


def parse_health(doc: Any) -> Health:
    if isinstance(doc, Mapping) and "health" in doc and "status" not in doc:  # `ceph status` wraps it
        doc = doc["health"]
    if not isinstance(doc, Mapping) or "status" not in doc:
        raise CephParseError("`ceph health -f json` output has no `status`")
    checks = {
        code: str(c.get("summary", {}).get("message", ""))
        for code, c in (doc.get("checks") or {}).items()
        if not c.get("muted")
    }
    return Health(status=str(doc["status"]), checks=checks)


def observation_from(pgs: PgSummary, dump: OsdDump, health: Health | None = None) -> CephObservation:
    return CephObservation(
        pgs_total=pgs.total,
        pgs_active_clean=pgs.active_clean,
        osds_down=dump.down,
        noout_groups=dump.noout_groups,
        health=health.status if health else None,
    )


# --------------------------------------------------------------------------------------------------
# Command execution
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str = ""


class CephCommandRunner(Protocol):
    """Runs `ceph <args>` somewhere that has an admin keyring and returns rc/stdout/stderr."""

    def __call__(self, args: Sequence[str], *, timeout: float) -> CommandResult: ...


@dataclass(frozen=True)
class PodmanExecRunner:
    """`podman exec <container> ceph ...`: the lab's Ceph runs in a podman container."""

    container: str
    podman: str = "podman"
    env: Mapping[str, str] | None = None

    def __call__(self, args: Sequence[str], *, timeout: float) -> CommandResult:
        cmd = [self.podman, "exec", self.container, "ceph", *args]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TransientError(
                f"`ceph {shlex.join(args)}` timed out after {timeout:.0f}s in {self.container}"
            ) from exc
        if p.returncode in (125, 126, 127):
            # podman's own failures (no such container, exec failed) are not Ceph answers.
            raise PermanentError(
                f"podman exec {self.container} failed (rc {p.returncode}): {p.stderr.strip()[:200]}",
                hint=f"is the container `{self.container}` running? `podman ps`",
            )
        return CommandResult(p.returncode, p.stdout, p.stderr)


@dataclass
class AnsibleCephRunner:
    """`ceph ...` on the region's ceph admin host, as an ad-hoc `command` task through the wrapper."""

    ansible: AnsibleRunner
    admin_host: str
    step: str = "ceph"

    def __call__(self, args: Sequence[str], *, timeout: float) -> CommandResult:
        res = self.ansible.run_command(
            self.admin_host,
            ["ceph", *args],
            step=f"{self.step}-{args[0] if args else 'cmd'}",
            timeout=timeout,
        )
        return CommandResult(res.rc, res.stdout, res.stderr)


def _no_such_bucket(res: CommandResult) -> bool:
    """Ceph's EINVAL for a name that is no CRUSH bucket or OSD: such a name carries no flag to clear."""
    return res.rc == 22 and "unable to parse osd id or crush node" in res.stderr


@dataclass
class CephAdmin:
    """The executor's Ceph operations. Every mutating call is idempotent (set/unset-group are)."""

    runner: CephCommandRunner
    command_timeout: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    history: list[tuple[str, ...]] = field(default_factory=list)  # command words only, for tests/journal

    def _json(self, *args: str, ok_rcs: Sequence[int] = (0,)) -> tuple[int, Any, str]:
        full = (*args, "-f", "json")
        self.history.append(full)
        res = self.runner(full, timeout=self.command_timeout)
        if res.rc not in ok_rcs:
            raise PermanentError(f"`ceph {' '.join(args)}` failed with rc {res.rc}: {res.stderr.strip()[:200]}")
        try:
            doc = json.loads(res.stdout) if res.stdout.strip() else None
        except json.JSONDecodeError as exc:
            raise CephParseError(f"`ceph {' '.join(args)}` printed invalid JSON: {exc}") from exc
        return res.rc, doc, res.stderr

    def _plain(self, *args: str, harmless: Callable[[CommandResult], bool] | None = None) -> None:
        """Run a command without JSON output; a failure raises unless `harmless` says it means "nothing to do"."""
        self.history.append(tuple(args))
        res = self.runner(tuple(args), timeout=self.command_timeout)
        if res.rc != 0 and harmless is not None and harmless(res):
            LOG.info("`ceph %s` had nothing to do: %s", " ".join(args), res.stderr.strip()[:200])
        elif res.rc != 0:
            raise PermanentError(f"`ceph {' '.join(args)}` failed with rc {res.rc}: {res.stderr.strip()[:200]}")

    # reads
    def pg_summary(self) -> PgSummary:
        return parse_pg_summary(self._json("pg", "stat")[1])

    def osd_tree(self) -> OsdTree:
        return parse_osd_tree(self._json("osd", "tree")[1])

    def osd_dump(self) -> OsdDump:
        return parse_osd_dump(self._json("osd", "dump")[1])

    def osd_stat(self) -> OsdStat:
        return parse_osd_stat(self._json("osd", "stat")[1])

    def health(self) -> Health:
        return parse_health(self._json("health")[1])

    def observe(self) -> CephObservation:
        return observation_from(self.pg_summary(), self.osd_dump(), self.health())

    def osds_of_host(self, host: str) -> tuple[int, ...]:
        return self.osd_tree().osds_under(host)

    def ok_to_stop(self, osd_ids: Sequence[int]) -> OkToStop:
        if not osd_ids:
            raise ValueError("ok_to_stop needs at least one OSD id")
        args = ("osd", "ok-to-stop", *(str(i) for i in osd_ids), "-f", "json")
        self.history.append(args)
        res = self.runner(args, timeout=self.command_timeout)
        return parse_ok_to_stop(res.rc, res.stdout, res.stderr)

    def require_ok_to_stop(self, node: str, osd_ids: Sequence[int]) -> OkToStop:
        verdict = self.ok_to_stop(osd_ids)
        if not verdict.ok:
            raise SafetyRefused(
                f"Ceph refuses to stop the OSDs of {node}: {verdict.describe()}",
                hint="wait for recovery to finish (`ceph -s`); size 1 pools never allow it",
            )
        return verdict

    # writes
    def set_noout(self, group: str) -> None:
        """`ceph osd set-group noout <group>` (a host bucket name or osd.N); idempotent."""
        self._plain("osd", "set-group", "noout", group)

    def unset_noout(self, group: str) -> None:
        """Idempotent, also when `group` is no CRUSH bucket (any more, or yet: a host whose OSDs were never
        created): then it carries no flag, and Ceph's EINVAL for the name means exactly that."""
        self._plain("osd", "unset-group", "noout", group, harmless=_no_such_bucket)

    # waits
    def wait_osds_up_and_clean(
        self, osd_ids: Sequence[int], *, timeout: float, poll_interval: float = 5.0
    ) -> PgSummary:
        """Poll until the given OSDs are up and every PG is active+clean; TransientError on timeout."""
        deadline = self.clock() + timeout
        while True:
            dump = self.osd_dump()
            up = {o.id for o in dump.osds if o.up}
            missing = sorted(set(osd_ids) - up)
            pgs = self.pg_summary()
            if not missing and pgs.all_active_clean:
                return pgs
            if self.clock() >= deadline:
                waiting = f"OSDs not up: {missing}; " if missing else ""
                raise TransientError(
                    f"Ceph not back to clean after {timeout:.0f}s: {waiting}{pgs.describe()}",
                    hint="look at `ceph -s` and `ceph osd tree`; `rollout apply` resumes the wait",
                    retry_after=poll_interval,
                )
            LOG.debug("Waiting for Ceph: missing_osds=%s pgs=%s", missing, pgs.describe())
            self.sleep(poll_interval)


__all__ = [
    "AnsibleCephRunner",
    "CephAdmin",
    "CephCommandRunner",
    "CephParseError",
    "CommandResult",
    "Health",
    "OkToStop",
    "OsdDump",
    "OsdStat",
    "OsdTree",
    "PgSummary",
    "PodmanExecRunner",
    "is_active_clean",
    "observation_from",
    "parse_health",
    "parse_ok_to_stop",
    "parse_osd_dump",
    "parse_osd_stat",
    "parse_osd_tree",
    "parse_pg_summary",
]
