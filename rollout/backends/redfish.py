"""Redfish BMC control through `sushy`: power, one-time boot override, virtual media.

Invariants and decisions:
- Basic auth only (`sushy.auth.BasicAuth`): session auth is not offered by every BMC (sushy-tools has
  no SessionService) and basic auth never leaves a session behind when the process is killed.
- TLS: verify against a CA file, or the system store, or (explicitly, per node) not at all.
- Retries are ours, not sushy's: sushy's own server-side retries are set to one attempt so that the
  retry budget and backoff live in one place (`RetryPolicy`). Transient = connection refused/reset,
  timeouts, HTTP 5xx. Permanent, never retried = 401/403 (bad credentials: retrying can lock the
  account), TLS failures (a wrong CA does not heal), 4xx.
- The BMC password never reaches a log line or an exception text: every message we build passes
  through `redact()` with the password (and its base64 basic-auth form); `BmcCredentials` hides the
  password from `repr`. sushy itself logs request headers only after its own sanitising, and the
  Authorization header is added by requests below that log line.
- `BootSourceOverrideEnabled` is requested as `Once`; the sushy-tools emulator always reports
  `Continuous` (hard-coded template), so callers must not assert "once" against it.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import sushy
from sushy import exceptions as sushy_exc
from sushy.auth import BasicAuth

from rollout.errors import ConfigError, PermanentError, TransientError
from rollout.journal import redact
from rollout.model.region import BmcSpec

LOG = logging.getLogger(__name__)
T = TypeVar("T")

_BOOT_TARGETS = {"pxe": sushy.BootSource.PXE, "cd": sushy.BootSource.CD, "hdd": sushy.BootSource.HDD}
_BOOT_MODES = {"uefi": sushy.BootSourceOverrideMode.UEFI, "bios": sushy.BootSourceOverrideMode.LEGACY}
_MEDIA_TYPES = {"cd": (sushy.VirtualMediaType.CD, sushy.VirtualMediaType.DVD)}


class BmcError(PermanentError):
    """A BMC request failed for a reason retrying will not fix (4xx, unsupported operation)."""


class BmcAuthError(BmcError):
    """401/403: wrong username or password (or an account without the needed privilege)."""


class BmcTlsError(BmcError):
    """The BMC's certificate did not verify (wrong CA, wrong name, expired) or TLS failed."""


class BmcUnavailable(TransientError):
    """Connection refused/reset/timeout or 5xx, still failing after every retry."""


@dataclass(frozen=True)
class BmcCredentials:
    username: str
    password: str = field(repr=False)

    @classmethod
    def from_vault(cls, entry: Any) -> BmcCredentials:
        """An entry of `vault_bmc_credentials`: {username, password}."""
        try:
            return cls(username=str(entry["username"]), password=str(entry["password"]))
        except (KeyError, TypeError) as exc:
            raise ConfigError(
                "BMC credentials entry lacks username/password",
                hint="each vault_bmc_credentials entry must be {username: ..., password: ...}",
            ) from exc

    def secret_forms(self) -> tuple[str, ...]:
        """The password and the basic-auth token that contains it, for redaction."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return (self.password, token)


@dataclass(frozen=True)
class RedfishTarget:
    """Where a node's BMC is: base URL (scheme://host[:port]), system path, TLS verification."""

    base_url: str
    system_path: str | None  # /redfish/v1/Systems/<id>; None = the only system there is
    verify: bool | str = True  # True (system CAs) | path to a CA bundle | False

    @classmethod
    def from_spec(cls, spec: BmcSpec) -> RedfishTarget:
        """`redfish[-virtualmedia]+https://host[:port]/redfish/v1/Systems/<id>` (Metal3 address form)."""
        if spec.driver not in ("redfish", "redfish-virtualmedia"):
            raise ConfigError(
                f"BMC driver `{spec.driver}` is not Redfish ({spec.address})",
                hint="rollout drives BMCs through Redfish; use driver redfish or redfish-virtualmedia",
            )
        address = spec.address.split("+", 1)[1] if "+" in spec.address.split("://", 1)[0] else spec.address
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"BMC address `{spec.address}` is not a URL", hint="e.g. redfish+https://10.0.0.5/…")
        path = parts.path.rstrip("/")
        system_path = path if "/Systems/" in path else None
        verify: bool | str = spec.ca_file if spec.ca_file else not spec.disable_certificate_verification
        return cls(base_url=f"{parts.scheme}://{parts.netloc}", system_path=system_path, verify=verify)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 15.0

    def delays(self) -> list[float]:
        """Sleeps between attempts: e.g. [1, 2, 4] for 4 attempts."""
        out, d = [], self.initial_delay
        for _ in range(max(self.attempts - 1, 0)):
            out.append(min(d, self.max_delay))
            d *= self.multiplier
        return out


@dataclass(frozen=True)
class PowerStatus:
    state: str  # on | off | powering on | powering off | paused | unknown


@dataclass(frozen=True)
class BootOverride:
    target: str | None
    enabled: str | None
    mode: str | None


@dataclass(frozen=True)
class MediaStatus:
    device: str
    media_types: tuple[str, ...]
    image: str | None
    inserted: bool


def _tls_failure(exc: BaseException) -> bool:
    """Is this (or what it wraps) a TLS/certificate failure? sushy does not chain, so walk __context__."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.exceptions.SSLError):
            return True
        if isinstance(seen, ValueError) and "TLS" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _tls_reason(exc: BaseException) -> str:
    """A short, secret-free reason from the OpenSSL text (which never contains credentials)."""
    text = str(exc.__context__ or exc)
    for marker in (
        "certificate verify failed: ",
        "hostname mismatch",
        "certificate has expired",
        "self-signed certificate",
        "unable to get local issuer certificate",
        "wrong version number",
    ):
        i = text.find(marker)
        if i >= 0:
            return text[i : i + 80].split("(")[0].split("'")[0].strip().rstrip(":,")
    return type(exc.__context__ or exc).__name__


class RedfishBmc:
    """One node's BMC. Create per use; the sushy connection is opened lazily and reused."""

    def __init__(
        self,
        target: RedfishTarget,
        credentials: BmcCredentials,
        *,
        node: str = "",
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.target = target
        self.node = node or target.base_url
        self._credentials = credentials
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._sleep = sleep
        self._secrets = credentials.secret_forms()
        self._root: Any = None
        self._system: Any = None

    def __repr__(self) -> str:
        return f"RedfishBmc(node={self.node!r}, base_url={self.target.base_url!r})"

    # -- plumbing ------------------------------------------------------------------------------------
    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)

    def _connect(self) -> Any:
        if self._root is None:
            self._root = sushy.Sushy(
                self.target.base_url,
                auth=BasicAuth(self._credentials.username, self._credentials.password),
                verify=self.target.verify,
                # NOTE: one sushy attempt per call; `RetryPolicy` owns retries and backoff (see docstring).
                server_side_retries=1,
                server_side_retries_delay=1,
                read_timeout=self._timeout,
                connect_timeout=min(self._timeout, 10.0),
            )
        return self._root

    def _get_system(self) -> Any:
        if self._system is None:
            root = self._connect()
            path = self.target.system_path
            if path is None:
                members = root.get_system_collection().members_identities
                if len(members) != 1:
                    raise BmcError(
                        f"BMC {self.target.base_url} of {self.node} has {len(members)} systems and the "
                        "address names none",
                        hint="put the full system path in bmc.address (…/redfish/v1/Systems/<id>)",
                    )
                path = members[0]
            self._system = root.get_system(path)
        return self._system

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run `fn` with the retry policy and map sushy's errors onto the rollout taxonomy."""
        delays = self._retry.delays()
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except sushy_exc.AccessError as exc:
                raise BmcAuthError(
                    f"BMC {self.target.base_url} of {self.node} rejected the credentials "
                    f"(HTTP {exc.status_code}) during {what}",
                    hint="check the node's entry in vault_bmc_credentials (username/password) and the account's "
                    "role on the BMC; not retried to avoid locking the account",
                ) from None
            except sushy_exc.ConnectionError as exc:
                if _tls_failure(exc):
                    raise BmcTlsError(
                        f"TLS verification failed for BMC {self.target.base_url} of {self.node} during {what}: "
                        f"{_tls_reason(exc)}",
                        hint="set bmc ca_file to the CA that signed the BMC certificate, or (lab only) "
                        "disable_certificate_verification",
                    ) from None
                failure = f"cannot connect to BMC {self.target.base_url} of {self.node} during {what}"
            except sushy_exc.ServerSideError as exc:
                failure = f"BMC {self.target.base_url} of {self.node} answered HTTP {exc.status_code} to {what}"
            except sushy_exc.HTTPError as exc:
                raise BmcError(
                    f"BMC {self.target.base_url} of {self.node} refused {what}: HTTP {exc.status_code} "
                    f"{self._clean(str(exc.detail or ''))[:200]}",
                    hint="the BMC may not support this operation; check its Redfish version and firmware",
                ) from None
            except ValueError as exc:  # sushy raises ValueError for a TLS setup problem (bad CA file)
                if _tls_failure(exc) or "certificate" in str(exc).lower():
                    raise BmcTlsError(
                        f"TLS setup failed for BMC {self.target.base_url} of {self.node}: {self._clean(str(exc))}",
                        hint="check bmc ca_file",
                    ) from None
                raise
            if attempt > len(delays):
                raise BmcUnavailable(
                    f"{failure} (gave up after {attempt} attempts)",
                    hint="is the BMC reachable from here and powered? `rollout apply` retries the step",
                    retry_after=self._retry.max_delay,
                ) from None
            delay = delays[attempt - 1]
            LOG.warning(
                "BMC request failed, retrying: node=%s step=%s attempt=%d delay=%.1fs", self.node, what, attempt, delay
            )
            self._sleep(delay)

    # -- power ---------------------------------------------------------------------------------------
    def power_state(self) -> str:
        def read() -> str:
            system = self._get_system()
            system.refresh()
            state = system.power_state
            return str(state.value).lower() if state is not None else "unknown"

        return self._call("power state", read)

    def _reset(self, what: str, reset: sushy.ResetType) -> None:
        self._call(what, lambda: self._get_system().reset_system(reset))
        LOG.info("BMC power action sent: node=%s action=%s", self.node, reset.value)

    def power_on(self) -> None:
        self._reset("power on", sushy.ResetType.ON)

    def power_off(self, *, graceful: bool = False) -> None:
        self._reset("power off", sushy.ResetType.GRACEFUL_SHUTDOWN if graceful else sushy.ResetType.FORCE_OFF)

    def power_cycle(self) -> None:
        """Force restart when on, power on when off (a PXE/vmedia boot needs either)."""
        if self.power_state() == "off":
            self.power_on()
        else:
            self._reset("force restart", sushy.ResetType.FORCE_RESTART)

    def wait_power(
        self, state: str, *, timeout: float, poll: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> str:
        deadline = clock() + timeout
        while True:
            current = self.power_state()
            if current == state:
                return current
            if clock() >= deadline:
                raise BmcUnavailable(
                    f"BMC {self.target.base_url} of {self.node} still reports power {current!r} after "
                    f"{timeout:.0f}s (wanted {state!r})",
                    hint="check the BMC's event log; `rollout apply` retries the step",
                )
            self._sleep(poll)

    # -- boot ----------------------------------------------------------------------------------------
    def set_boot_once(self, device: str, *, mode: str = "UEFI") -> None:
        try:
            target = _BOOT_TARGETS[device.lower()]
            boot_mode = _BOOT_MODES[mode.lower()]
        except KeyError as exc:
            raise ConfigError(f"unsupported boot device/mode {device}/{mode}", hint="pxe|cd|hdd, UEFI|BIOS") from exc
        self._call(
            f"boot override {device}",
            lambda: self._get_system().set_system_boot_options(
                target=target, enabled=sushy.BootSourceOverrideEnabled.ONCE, mode=boot_mode
            ),
        )
        LOG.info("BMC boot override set: node=%s device=%s mode=%s", self.node, device, mode)

    def boot_override(self) -> BootOverride:
        def read() -> BootOverride:
            system = self._get_system()
            system.refresh()
            boot = system.boot
            return BootOverride(
                target=boot.target.value if boot.target else None,
                enabled=boot.enabled.value if boot.enabled else None,
                mode=boot.mode.value if boot.mode else None,
            )

        return self._call("boot override read", read)

    # -- virtual media ---------------------------------------------------------------------------------
    def _media_device(self, device: str) -> Any:
        wanted = _MEDIA_TYPES.get(device.lower())
        if wanted is None:
            raise ConfigError(f"unsupported virtual media device {device}", hint="use cd")
        system = self._get_system()
        try:
            collection = system.virtual_media
            members = collection.get_members()
        except (sushy_exc.MissingAttributeError, sushy_exc.ResourceNotFoundError):
            # Older BMCs expose virtual media on the Manager only.
            managers = self._connect().get_manager_collection().get_members()
            members = [m for mgr in managers for m in mgr.virtual_media.get_members()]
        for m in members:
            if any(t in wanted for t in (m.media_types or [])):
                return m
        raise BmcError(
            f"BMC {self.target.base_url} of {self.node} has no virtual {device} device",
            hint="use driver redfish (PXE) for this node, or check the BMC's virtual media licence",
        )

    def insert_media(self, url: str, *, device: str = "cd") -> None:
        def do() -> None:
            dev = self._media_device(device)
            dev.refresh()
            if dev.inserted and dev.image == url:
                return  # idempotent: already there
            if dev.inserted:
                dev.eject_media()
            dev.insert_media(url, inserted=True, write_protected=True)

        self._call(f"virtual media insert {device}", do)
        LOG.info("BMC virtual media inserted: node=%s device=%s", self.node, device)

    def eject_media(self, *, device: str = "cd") -> None:
        def do() -> None:
            dev = self._media_device(device)
            dev.refresh()
            if dev.inserted or dev.image:
                dev.eject_media()

        self._call(f"virtual media eject {device}", do)

    def media_status(self, *, device: str = "cd") -> MediaStatus:
        def read() -> MediaStatus:
            dev = self._media_device(device)
            dev.refresh()
            return MediaStatus(
                device=device,
                media_types=tuple(str(t.value) for t in (dev.media_types or [])),
                image=dev.image or None,
                inserted=bool(dev.inserted),
            )

        return self._call(f"virtual media read {device}", read)


__all__ = [
    "BmcAuthError",
    "BmcCredentials",
    "BmcError",
    "BmcTlsError",
    "BmcUnavailable",
    "BootOverride",
    "MediaStatus",
    "RedfishBmc",
    "RedfishTarget",
    "RetryPolicy",
]
