"""`rollout`: the entry point (`rollout.cli.main:main`, `python -m rollout.cli.main`).

Invariant: this module imports nothing heavy at its top. The command tree (`rollout.cli.root`) pulls in
typer, ansible-core, kubernetes and sushy (about half a second); a Ctrl-C during that import ends with
`Error: interrupted` and exit 130 like a Ctrl-C anywhere else, not with a KeyboardInterrupt traceback.
`from rollout.cli.main import app` still works (PEP 562 module `__getattr__`).
"""

from __future__ import annotations

import sys
from typing import Any

from rollout.exitcodes import ExitCode  # an IntEnum, nothing more


def main(argv: list[str] | None = None) -> int:
    try:
        from rollout.cli import root
    except KeyboardInterrupt:
        sys.stderr.write("\nError: interrupted\n")
        if argv is None:
            sys.exit(ExitCode.INTERRUPTED)
        return ExitCode.INTERRUPTED
    return root.main(argv)


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # the import system probes `__path__` & co.: never load the tree for those
        raise AttributeError(name)
    from rollout.cli import root

    return getattr(root, name)


if __name__ == "__main__":
    main()
