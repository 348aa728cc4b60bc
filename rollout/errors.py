"""The error taxonomy. Every error says what, where, the numbers, and what to do next.

Invariants:
- Messages never contain secret values (callers pass references, not values).
- Each class maps to exactly one exit code (`RolloutError.exit_code`); the CLI prints
  `message` and `hint` and exits with it, and shows a traceback only with --debug.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollout.exitcodes import ExitCode


class RolloutError(Exception):
    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(RolloutError):
    """Bad inventory, region.yml or arguments; nothing was touched."""

    exit_code = ExitCode.USAGE


class PreflightError(RolloutError):
    """A precondition outside rollout is not met (missing Secret, unreachable cluster)."""


class SafetyRefused(RolloutError):
    """A step would break a safety rule (policy, Ceph, lock); refused with the numbers."""

    exit_code = ExitCode.REFUSED


class TransientError(RolloutError):
    """Worth retrying after `retry_after` seconds (BMC busy, API 5xx, SSH not up yet)."""

    def __init__(self, message: str, hint: str | None = None, retry_after: float = 5.0) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after


class PermanentError(RolloutError):
    """Retrying will not help (bad credentials, TLS failure, play failed)."""


class PartialFailure(RolloutError):
    """The run ended with some nodes not done; `rollout apply` resumes."""

    exit_code = ExitCode.PARTIAL


@dataclass(frozen=True)
class Problem:
    """One static-validation finding, located as precisely as the source allows."""

    field: str
    message: str
    hint: str
    file: str | None = None
    line: int | None = None
    host: str | None = None

    def location(self) -> str:
        where = self.file or "<inventory>"
        if self.line:
            where += f":{self.line}"
        return where

    def render(self) -> str:
        host = f" host {self.host}" if self.host else ""
        return f"{self.location()}:{host} field `{self.field}`: {self.message} (fix: {self.hint})"


class InventoryError(ConfigError):
    """Static validation failed; carries every problem found, not just the first."""

    def __init__(self, region: str, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p.render()}" for p in problems)
        super().__init__(
            f"Inventory of region `{region}` has {len(problems)} problem(s):\n{lines}",
            hint=f"fix the fields above, then run `rollout validate --region {region}`",
        )
