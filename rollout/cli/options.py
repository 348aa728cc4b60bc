"""Options every command shares, so that the same flag has the same name, help, metavar and completion
everywhere (`--region/-r REGION`, `--output/-o text|json`, `--limit/-l PATTERN`).

Invariant: an `--output` value other than text or json is a usage error (exit 64) in every command,
never a silent fallback to text.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rollout.cli.completion import complete_node, complete_region

RegionOpt = Annotated[str, typer.Option("--region", "-r", metavar="REGION", autocompletion=complete_region,
                                        help="Region name (a folder under the inventory root).")]
OptionalRegionOpt = Annotated[str | None, typer.Option("--region", "-r", metavar="REGION",
                                                       autocompletion=complete_region,
                                                       help="Region (found from the node name when omitted).")]
OutputOpt = Annotated[str, typer.Option("--output", "-o", metavar="text|json",
                                        help="text (people, on stderr) or json (stdout).")]
LimitOpt = Annotated[str | None, typer.Option("--limit", "-l", metavar="PATTERN",
                                              help="Ansible limit pattern: hosts, groups, wildcards, `:!` "
                                                   "exclusions (e.g. 'rack_r1:!ex-r1-n02').")]
NodeArg = Annotated[str, typer.Argument(metavar="NODE", help="Node name (as in the inventory).",
                                        autocompletion=complete_node)]

OUTPUTS = ("text", "json")


def check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise typer.BadParameter(f"--output must be text or json, not {output!r}")
