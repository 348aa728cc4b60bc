"""The one typed door to Ansible: every playbook (and ad-hoc command) rollout runs goes through here.

Invariants and decisions:
- An explicit `limit` is always required (host names, never `all`/`*`/empty): a typo must not
  turn a one-node re-configure into a region-wide one.
- One private data dir per step under the run's artifacts dir (`<artifacts>/<NNN>-<step>/`), so
  concurrent steps never share state (ansible-runner's rule) and an operator finds a failed
  step's job events next to the run's other artifacts.
- Results come from ansible-runner's structured events and stats, never from parsing stdout.
- Secrets: non-secret extravars go on the command line (they are recorded in the artifacts'
  `command` file). Secret extravars are written to a 0600 file in a private temp dir *outside*
  the artifacts, passed as `-e @file`, and deleted when the run ends; playbooks must mark tasks
  that use them `no_log: true` (ansible then censors them in job events). ansible-runner's own
  env files are suppressed (`suppress_env_files`). Every message we build is redacted.
- SSH host keys: a per-region known_hosts file with `StrictHostKeyChecking=accept-new`: first
  contact records the key, a changed key fails the run (unreachable) until `forget_host_keys()`
  is called for a node rollout itself just re-imaged. Entries are written unhashed
  (`HashKnownHosts=no`) but hashed entries are recognised too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from rollout.backends.orphans import marker_env
from rollout.errors import ConfigError, TransientError
from rollout.journal import redact, secret_strings

LOG = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROJECT_DIR = REPO_ROOT / "playbooks"
DEFAULT_ROLES_PATH = (REPO_ROOT / "roles",)

_FORBIDDEN_LIMITS = {"all", "ungrouped"}
_STEP_RE = re.compile(r"[^A-Za-z0-9_.-]+")
_LIMIT_ITEM_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class HostStats:
    ok: int = 0
    changed: int = 0
    failures: int = 0
    skipped: int = 0
    unreachable: int = 0
    rescued: int = 0
    ignored: int = 0

    @property
    def failed(self) -> bool:
        return self.failures > 0 or self.unreachable > 0


@dataclass(frozen=True)
class HostFailure:
    host: str
    task: str
    message: str
    unreachable: bool = False


@dataclass(frozen=True)
class RunResult:
    status: str  # successful | failed | timeout | canceled
    rc: int
    stats: Mapping[str, HostStats]
    failures: Mapping[str, HostFailure]  # first failed task per host
    artifacts_dir: Path  # ansible-runner's artifacts/<ident> for this step
    step: str
    limit: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0 and not self.failed_hosts

    @property
    def failed_hosts(self) -> tuple[str, ...]:
        bad = {h for h, s in self.stats.items() if s.failed} | set(self.failures)
        return tuple(sorted(bad))

    def describe(self) -> str:
        if self.ok:
            return f"{self.step}: ok on {', '.join(sorted(self.stats)) or 'no hosts'}"
        parts = [
            f"{f.host}: task `{f.task}` {'unreachable' if f.unreachable else 'failed'}: {f.message}"
            for f in self.failures.values()
        ]
        detail = "; ".join(parts) or f"status {self.status}, rc {self.rc}"
        return f"{self.step}: {detail} (artifacts: {self.artifacts_dir})"


@dataclass(frozen=True)
class CommandOutcome:
    """An ad-hoc command's result on one host (from the module result, not from stdout parsing)."""

    host: str
    rc: int
    stdout: str
    stderr: str
    run: RunResult


@dataclass(frozen=True)
class AnsibleEvent:
    """A trimmed job event for live progress."""

    step: str
    event: str  # runner_on_ok | runner_on_failed | playbook_on_task_start | ...
    host: str | None
    task: str | None
    changed: bool = False


EventCallback = Callable[[AnsibleEvent], None]


@dataclass(frozen=True)
class AnsibleSettings:
    inventory: Path  # the region's inventory dir (hosts.yml + group_vars + host_vars)
    artifacts_dir: Path  # the run's artifacts dir; one sub dir per step
    known_hosts: Path  # per-region known_hosts file
    project_dir: Path = DEFAULT_PROJECT_DIR
    roles_path: tuple[Path, ...] = DEFAULT_ROLES_PATH
    vault_password_file: Path | None = None
    forks: int = 10
    envvars: Mapping[str, str] = field(default_factory=dict)
    ssh_extra_args: str = ""
    # ssh ControlMaster sockets; kept short (unix socket paths are limited to 108 bytes).
    control_path_dir: Path = field(default_factory=lambda: Path.home() / ".ansible" / "cp")
    # Marks every process of a run (rollout.backends.orphans), so a resume can stop what a killed
    # run left behind; None in tests and tools that run no region.
    scope: Path | None = None
    run_id: str = "-"


def validate_limit(limit: str | Sequence[str]) -> tuple[str, ...]:
    hosts = tuple(h.strip() for h in ([limit] if isinstance(limit, str) else limit))
    flat = tuple(p for h in hosts for p in h.split(",") if p.strip())
    # Host (or group) names only: no `all`, no wildcards, regexes, exclusions or intersections.
    if not flat or any(h in _FORBIDDEN_LIMITS or not _LIMIT_ITEM_RE.fullmatch(h) for h in flat):
        raise ConfigError(
            f"An explicit limit is required for every Ansible run (got {limit!r})",
            hint="pass the node names to act on, e.g. limit=['lab-r1-n01']",
        )
    return flat


class AnsibleRunner:
    """Runs playbooks and ad-hoc commands for one region; thread-safe (one private dir per step)."""

    def __init__(
        self,
        settings: AnsibleSettings,
        *,
        secrets: Iterable[str] = (),
        on_event: EventCallback | None = None,
    ) -> None:
        self.settings = settings
        self._secrets = frozenset(s for s in secrets if s)
        self._on_event = on_event
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()

    # -- environment ---------------------------------------------------------------------------------
    def envvars(self, step: str = "-") -> dict[str, str]:
        s = self.settings
        ssh_args = " ".join(
            [
                "-C -o ControlMaster=auto -o ControlPersist=60s",
                f"-o UserKnownHostsFile={shlex.quote(str(s.known_hosts))}",
                "-o StrictHostKeyChecking=accept-new -o HashKnownHosts=no",
                "-o ConnectTimeout=15",
                s.ssh_extra_args,
            ]
        ).strip()
        env = {
            "ANSIBLE_ROLES_PATH": os.pathsep.join(str(p) for p in s.roles_path),
            "ANSIBLE_SSH_ARGS": ssh_args,
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(s.control_path_dir),
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            # Fewer SSH round trips per task (no remote temp files); Debian's sudo has no requiretty.
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_NOCOLOR": "True",
            "ANSIBLE_FORCE_COLOR": "False",
            "ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "False",
        }
        # NOTE: ansible-runner finds `ansible-playbook` on PATH; a venv that is not activated (cron, a
        # systemd unit, `.venv/bin/rollout`) must still run the ansible-core it was installed with.
        bindir = str(Path(sys.executable).parent)
        path = os.environ.get("PATH", "")
        env["PATH"] = path if bindir in path.split(os.pathsep) else os.pathsep.join(p for p in (bindir, path) if p)
        env.update(s.envvars)
        if s.scope is not None:
            env.update(marker_env(s.scope, s.run_id, step))
        return env

    def _private_dir(self, step: str) -> tuple[Path, str]:
        with self._seq_lock:
            n = next(self._seq)
        ident = _STEP_RE.sub("-", step).strip("-") or "step"
        self.settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
        while True:
            base = self.settings.artifacts_dir / f"{n:03d}-{ident}"
            try:
                base.mkdir()  # atomic claim: a resumed run appends to the same artifacts dir
                return base, ident
            except FileExistsError:
                with self._seq_lock:
                    n = next(self._seq)

    def _cmdline(self, extra: Sequence[str]) -> str:
        args = list(extra)
        if self.settings.vault_password_file is not None:
            args += ["--vault-password-file", str(self.settings.vault_password_file)]
        return shlex.join(args)

    # -- runs ------------------------------------------------------------------------------------------
    def run_playbook(
        self,
        playbook: str,
        *,
        limit: str | Sequence[str],
        step: str,
        extravars: Mapping[str, Any] | None = None,
        secret_extravars: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        skip_tags: Sequence[str] = (),
        check: bool = False,
        timeout: int | None = None,
        on_event: EventCallback | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> RunResult:
        hosts = validate_limit(limit)
        path = Path(playbook) if Path(playbook).is_absolute() else self.settings.project_dir / playbook
        if not path.is_file():
            raise ConfigError(
                f"Playbook {playbook} not found (looked at {path})",
                hint="playbooks live in the project's playbooks/ directory (ROLLOUT_PROJECT_DIR)",
            )
        extra: list[str] = []
        if tags:
            extra += ["--tags", ",".join(tags)]
        if skip_tags:
            extra += ["--skip-tags", ",".join(skip_tags)]
        if check:
            extra += ["--check", "--diff"]
        return self._run(
            step=step,
            hosts=hosts,
            secret_extravars=secret_extravars,
            extra_cmdline=extra,
            timeout=timeout,
            on_event=on_event,
            cancel=cancel,
            runner_kwargs={
                "playbook": playbook,
                "project_dir": str(self.settings.project_dir),
                "extravars": dict(extravars or {}),
            },
        )

    def run_command(self, host: str, argv: Sequence[str], *, step: str, timeout: float | None = None) -> CommandOutcome:
        """`ansible.builtin.command` on one host, ad hoc. rc/stdout/stderr come from the module result."""
        hosts = validate_limit([host])
        if len(hosts) != 1:
            raise ConfigError(f"run_command takes exactly one host, got {host!r}")
        captured: dict[str, Any] = {}

        def keep(ev: dict[str, Any]) -> None:
            if ev.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
                data = ev.get("event_data", {})
                if data.get("host") == host:
                    captured["event"] = ev.get("event")
                    captured["res"] = data.get("res", {})

        run = self._run(
            step=step,
            hosts=hosts,
            secret_extravars=None,
            extra_cmdline=[],
            timeout=int(timeout) if timeout else None,
            on_event=None,
            cancel=None,
            runner_kwargs={"module": "ansible.builtin.command", "module_args": shlex.join(argv), "host_pattern": host},
            raw_event_hook=keep,
        )
        res = captured.get("res", {})
        if captured.get("event") in (None, "runner_on_unreachable") or "rc" not in res:
            reason = run.failures[host].message if host in run.failures else f"status {run.status}"
            raise TransientError(
                f"Could not run `{argv[0] if argv else ''}` on {host}: {reason}",
                hint=f"check SSH to {host}; artifacts: {run.artifacts_dir}",
            )
        return CommandOutcome(
            host=host,
            rc=int(res.get("rc", -1)),
            stdout=str(res.get("stdout", "")),
            stderr=self._clean(str(res.get("stderr", ""))),
            run=run,
        )

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)

    def _run(
        self,
        *,
        step: str,
        hosts: tuple[str, ...],
        secret_extravars: Mapping[str, Any] | None,
        extra_cmdline: list[str],
        timeout: int | None,
        on_event: EventCallback | None,
        cancel: Callable[[], bool] | None,
        runner_kwargs: dict[str, Any],
        raw_event_hook: Callable[[dict[str, Any]], None] | None = None,
    ) -> RunResult:
        private_dir, ident = self._private_dir(step)
        self.settings.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        secret_dir: str | None = None
        secrets = set(self._secrets)
        cmdline = list(extra_cmdline)
        if secret_extravars:
            # NOTE: outside the artifacts dir on purpose, and removed in `finally` (see module docstring).
            secret_dir = tempfile.mkdtemp(prefix="rollout-secret-")
            secret_file = Path(secret_dir) / "extravars.json"
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(dict(secret_extravars), fh)
            cmdline += ["-e", f"@{secret_file}"]
            secrets |= secret_strings(dict(secret_extravars))
        failures: dict[str, HostFailure] = {}
        callback = on_event or self._on_event

        def handler(ev: dict[str, Any]) -> bool:
            if raw_event_hook is not None:
                raw_event_hook(ev)
            name = ev.get("event", "")
            data = ev.get("event_data", {}) or {}
            host = data.get("host")
            task = data.get("task")
            failed = name in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors")
            # The first failure per host is the cause; later ones (handlers, rescue) are consequences.
            if failed and host and host not in failures:
                failures[host] = HostFailure(
                    host=host,
                    task=str(task or "?"),
                    message=redact(_failure_message(data.get("res", {})), secrets),
                    unreachable=name == "runner_on_unreachable",
                )
            if callback is not None and name and not name.startswith("verbose"):
                try:
                    callback(
                        AnsibleEvent(
                            step=step,
                            event=name,
                            host=host,
                            task=task,
                            changed=bool((data.get("res") or {}).get("changed")),
                        )
                    )
                except Exception:  # a broken progress display must not break a rollout
                    LOG.exception("Progress callback failed: step=%s", step)
            return True  # keep the event on disk

        LOG.info("Ansible run starting: step=%s limit=%s private_dir=%s", step, ",".join(hosts), private_dir)
        try:
            r = ansible_runner.run(
                private_data_dir=str(private_dir),
                ident=ident,
                inventory=str(self.settings.inventory),
                envvars=self.envvars(step),
                cmdline=self._cmdline(cmdline),
                limit=",".join(hosts),
                forks=self.settings.forks,
                quiet=True,
                suppress_env_files=True,
                event_handler=handler,
                cancel_callback=cancel,
                timeout=timeout,
                **runner_kwargs,
            )
        finally:
            if secret_dir is not None:
                shutil.rmtree(secret_dir, ignore_errors=True)
        stats = _host_stats(r.stats or {})
        result = RunResult(
            status=str(r.status),
            rc=int(r.rc if r.rc is not None else -1),
            stats=stats,
            failures=failures,
            artifacts_dir=Path(r.config.artifact_dir),
            step=step,
            limit=hosts,
        )
        log = LOG.info if result.ok else LOG.warning
        log(
            "Ansible run finished: step=%s status=%s rc=%s failed_hosts=%s",
            step,
            result.status,
            result.rc,
            ",".join(result.failed_hosts) or "-",
        )
        return result

    # -- host keys -------------------------------------------------------------------------------------
    def forget_host_keys(self, names: Iterable[str], *, port: int = 22, users: Sequence[str] = ("root",)) -> int:
        """Forget a re-imaged node: drop its known_hosts entries and close any ssh ControlMaster still
        attached to the old installation (it would otherwise serve new sessions from a dead connection).
        """
        names = list(names)
        for name in names:
            for user in users:
                # NOTE: `ssh -O exit` computes the same %C hash ansible's ControlPath uses; errors mean
                # "no master", which is the normal case.
                subprocess.run(
                    [
                        "ssh",
                        "-o",
                        f"ControlPath={self.settings.control_path_dir}/%C",
                        "-p",
                        str(port),
                        "-O",
                        "exit",
                        f"{user}@{name}",
                    ],
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
        return forget_host_keys(self.settings.known_hosts, names, port=port)


def _failure_message(res: Mapping[str, Any]) -> str:
    if res.get("censored"):
        return "output hidden (no_log)"
    text = ""
    for key in ("msg", "stderr", "module_stderr", "reason"):
        if res.get(key):
            text = str(res[key])
            break
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text:
        # ssh's banner is 20 lines of @@@; say what it means instead.
        return (
            "SSH host key changed since the last contact (known_hosts has the old key): expected after a "
            "re-image, which forgets the old key; otherwise investigate before trusting the node"
        )
    return " ".join(text.split())[:300] or "failed"


def _host_stats(raw: Mapping[str, Mapping[str, int]]) -> dict[str, HostStats]:
    names = {
        "ok": "ok",
        "changed": "changed",
        "failures": "failures",
        "skipped": "skipped",
        "dark": "unreachable",
        "rescued": "rescued",
        "ignored": "ignored",
    }
    per_host: dict[str, dict[str, int]] = {}
    for key, field_name in names.items():
        for host, n in (raw.get(key) or {}).items():
            per_host.setdefault(host, {})[field_name] = int(n)
    for host in raw.get("processed") or {}:
        per_host.setdefault(host, {})
    return {h: HostStats(**v) for h, v in sorted(per_host.items())}


def _known_host_patterns(name: str, port: int) -> set[str]:
    return {name} if port == 22 else {f"[{name}]:{port}"}


def _hashed_match(entry: str, candidates: set[str]) -> bool:
    # |1|base64(salt)|base64(HMAC-SHA1(salt, hostname))
    try:
        _, _, salt_b64, digest_b64 = entry.split("|", 3)
        salt = base64.b64decode(salt_b64)
        digest = base64.b64decode(digest_b64)
    except ValueError:
        return False
    return any(hmac.compare_digest(hmac.new(salt, c.encode(), hashlib.sha1).digest(), digest) for c in candidates)


def forget_host_keys(known_hosts: Path, names: Iterable[str], *, port: int = 22) -> int:
    """Remove every known_hosts line naming any of `names` (plain or hashed). Returns lines removed."""
    if not known_hosts.exists():
        return 0
    candidates: set[str] = set()
    for n in names:
        candidates |= _known_host_patterns(n, port)
    kept, removed = [], 0
    for line in known_hosts.read_text().splitlines(keepends=True):
        fields = line.split()
        if not fields or line.lstrip().startswith("#"):
            kept.append(line)
            continue
        hostfield = fields[1] if fields[0].startswith("@") and len(fields) > 1 else fields[0]
        if hostfield.startswith("|1|"):
            hit = _hashed_match(hostfield, candidates)
        else:
            hit = bool(set(hostfield.split(",")) & candidates)
        if hit:
            removed += 1
        else:
            kept.append(line)
    if removed:
        tmp = known_hosts.with_suffix(".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, known_hosts)
    return removed


__all__ = [
    "AnsibleEvent",
    "AnsibleRunner",
    "AnsibleSettings",
    "CommandOutcome",
    "HostFailure",
    "HostStats",
    "RunResult",
    "forget_host_keys",
    "validate_limit",
]
