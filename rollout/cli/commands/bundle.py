"""`rollout bundle build`: the reproducible role bundle CAPI nodes fetch on first boot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rollout.app.planning import load
from rollout.bundle import BundleError, build_bundle, bundle_url, write_bundle
from rollout.cli.console import console
from rollout.cli.options import RegionOpt
from rollout.errors import ConfigError
from rollout.exitcodes import ExitCode
from rollout.paths import project_dir

bundle_app = typer.Typer(
    help="The role bundle (roles, playbooks, non-secret node variables) for the CAPI method.",
    no_args_is_help=True,
)


@bundle_app.command("build")
def build(
    ctx: typer.Context,
    region: RegionOpt,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="Directory for the tarball (default: <state-dir>/bundles)."),
    ] = None,
) -> int:
    """Build the region's role bundle and print its sha256 (stdout).

    The tarball is reproducible (sorted entries, fixed mtimes and owners, gzip mtime 0): the same
    roles, playbooks and inventory give the same digest, which the KubeadmConfigTemplates rendered by
    `rollout render` pin. Its name is content-addressed: rollout-bundle-<region>-<sha256[:16]>.tar.gz.

    Examples:

    \b
      rollout bundle build --region example
      rollout bundle build --region example --out /srv/www/rollout-bundles
    """
    con = console()
    source = load(ctx.obj, region)
    root = ctx.obj.state_dir if ctx.obj is not None else Path(".rollout")
    try:
        bundle = build_bundle(source, project_dir())
    except BundleError as exc:
        raise ConfigError(str(exc), hint="run from a checkout with roles/ and playbooks/") from exc
    path = write_bundle(bundle, out or root / "bundles")
    con.data(f"{bundle.sha256}  {path}\n")
    con.say(f"Bundle of region {region}: {len(bundle.entries)} files, {len(bundle.data)} bytes.")
    if source.region.bundle_base_url:
        con.say(f"Serve it at {bundle_url(source.region.bundle_base_url, region, bundle.sha256)}")
    con.next_command(f"rollout render --region {region} --out DIR")
    return ExitCode.OK


def register(app: typer.Typer) -> None:
    app.add_typer(bundle_app, name="bundle", short_help="Build the role bundle CAPI nodes fetch at first boot.")
