"""Process exit codes: the one place they are defined (documented in `rollout --help`)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    CHANGES_PRESENT = 2  # only with --detailed-exitcode
    REFUSED = 3  # refused for safety (policy, Ceph, lock held)
    PARTIAL = 4  # some nodes not done; `rollout apply` resumes
    USAGE = 64  # bad usage or bad configuration (inventory, region.yml)
    INTERRUPTED = 130


HELP_TEXT = (
    "Exit codes: 0 ok, 1 error, 2 changes present (with --detailed-exitcode), 3 refused for safety, "
    "4 partial (resumable with `rollout apply`), 64 usage/configuration error, 130 interrupted."
)
