"""The one object that talks to people: colour, prompts, progress. Data goes to stdout, people to stderr.

Tests replace it (`set_console`) to capture what a command said and to answer prompts.
"""

from __future__ import annotations

import sys

from rich.console import Console as RichConsole


class Console:
    def __init__(self, *, stdout: RichConsole | None = None, stderr: RichConsole | None = None) -> None:
        self.out = stdout or RichConsole(highlight=False, soft_wrap=True)
        self.err = stderr or RichConsole(stderr=True, highlight=False, soft_wrap=True)
        # Global options the user typed (`--inventory-root DIR`) that suggested commands need too; set by main.
        self.carry: str | None = None
        self.carry_env: str | None = None
        self._carried = False

    def set_carry(self, flags: str | None, env: str | None) -> None:
        self.carry, self.carry_env, self._carried = flags, env, False

    def _carry_note(self, text: str) -> None:
        """Once per command: suggested `rollout ...` commands need the global options typed this time."""
        if self.carry and not self._carried and "rollout " in text:
            self._carried = True
            self.err.print(f"(the rollout commands suggested here need the same {self.carry}; or "
                           f"export {self.carry_env})", style="dim", markup=False, highlight=False)

    @property
    def interactive(self) -> bool:
        return sys.stdin.isatty() and self.err.is_terminal

    def data(self, text: str) -> None:
        """Machine-readable output (JSON, YAML): stdout, no markup."""
        self.out.print(text, end="", markup=False, highlight=False)

    def say(self, text: str, style: str | None = None) -> None:
        self.err.print(text, style=style, markup=False, highlight=False)

    def error(self, text: str) -> None:
        self.err.print(f"Error: {text}", style="bold red", markup=False, highlight=False)

    def hint(self, text: str) -> None:
        self.err.print(f"Hint: {text}", style="yellow", markup=False, highlight=False)
        self._carry_note(text)

    def next_command(self, command: str) -> None:
        self._carry_note(command)
        self.err.print(f"Next: {command}", style="cyan", markup=False, highlight=False)

    def ask(self, prompt: str) -> str:
        self.err.print(prompt, end="", markup=False, highlight=False)
        return input()


_console = Console()


def console() -> Console:
    return _console


def set_console(new: Console) -> Console:
    global _console
    old, _console = _console, new
    return old
