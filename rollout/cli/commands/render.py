"""`rollout render`: the region's Cluster API / Metal3 manifests, validated against the upstream CRDs.

Thin: load the region, compute the role bundle's digest (the KubeadmConfigTemplates pin it), render,
report. Secret values are only ever written to `<out>/secrets/` (mode 0600) with --include-secrets;
stdout and stderr carry names of Secrets, never values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rollout.app.planning import load, resolve_limit
from rollout.bundle import BundleError, build_bundle, bundle_url
from rollout.cli.console import console
from rollout.cli.options import RegionOpt
from rollout.errors import ConfigError
from rollout.exitcodes import ExitCode
from rollout.model.region import Method
from rollout.paths import project_dir
from rollout.render.capi_objects import BundleRef
from rollout.render.crd_schema import CrdSchemaError, default_validator
from rollout.render.manifests import RenderError, dump, render, write


def render_cmd(
    ctx: typer.Context,
    region: RegionOpt,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="DIR",
            help="Write one YAML file per kind into DIR (default: non-secret YAML to stdout).",
        ),
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Render and validate only; write nothing.")] = False,
    include_secrets: Annotated[
        bool,
        typer.Option(
            "--include-secrets",
            help="Also render the Secrets (BMC "
            "credentials, node secrets) from the vault into "
            "DIR/secrets/ (mode 0600). Needs --out.",
        ),
    ] = False,
    limit: Annotated[
        str | None,
        typer.Option(
            "--limit",
            "-l",
            metavar="PATTERN",
            help="Only these nodes get a BareMetalHost (Ansible limit pattern); replicas count only them.",
        ),
    ] = None,
    bundle_sha256: Annotated[
        str | None,
        typer.Option(
            "--bundle-sha256", metavar="SHA256",
            help="Use this bundle digest instead of building the bundle in memory.",
        ),
    ] = None,
    crd_dir: Annotated[
        Path | None,
        typer.Option(
            "--crd-dir",
            metavar="DIR",
            envvar="ROLLOUT_CRD_DIR",
            help="Upstream CRD YAML directory (default ../shared/crds).",
        ),
    ] = None,
) -> int:
    """Render the region as Cluster API + Metal3 objects and validate them against the upstream CRDs.

    Per region: Cluster + Metal3Cluster (existing kubeadm control plane), IPPools with every node's
    address pre-allocated, a Metal3RemediationTemplate. Per node class: Metal3DataTemplate,
    Metal3MachineTemplate, KubeadmConfigTemplate (first boot runs the role bundle), MachineDeployment
    (OnDelete), MachineHealthCheck. Per node: BareMetalHost (+ its BMC Secret with --include-secrets).
    Output is deterministic: the same inventory gives the same bytes.

    Examples:

    \b
      rollout render --region example --check
      rollout render --region example --out build/capi/example
      rollout render --region example --out /secure/capi --include-secrets
      rollout render --region example --limit ex-r1-n02 | kubectl apply --dry-run=server -f -
    """
    con = console()
    if include_secrets and out is None:
        raise ConfigError("--include-secrets needs --out DIR", hint="Secrets are never written to stdout")
    if check and out is not None:
        raise ConfigError("--check writes nothing; drop --out or --check")
    source = load(ctx.obj, region, cached=not check)  # --check writes nothing, not even the cache
    r = source.region
    if not r.bundle_base_url:
        raise ConfigError(
            f"region {region}: region.yml bundle.base_url is not set",
            hint="set bundle.base_url to where `rollout bundle build` output is served from",
        )
    nodes = resolve_limit(source, limit)
    if bundle_sha256 is None:
        try:
            bundle_sha256 = build_bundle(source, project_dir()).sha256
        except BundleError as exc:
            raise ConfigError(
                str(exc), hint="run from a checkout with roles/ and playbooks/, or pass --bundle-sha256"
            ) from exc
    bundle = BundleRef(bundle_url(r.bundle_base_url, r.name, bundle_sha256), bundle_sha256)
    try:
        validator = default_validator(str(crd_dir) if crd_dir else None)
        rendered = render(
            r, bundle, nodes=nodes, secrets=source if include_secrets else None, validator=validator
        )
    except CrdSchemaError as exc:
        raise ConfigError(str(exc), hint="set ROLLOUT_CRD_DIR or --crd-dir") from exc
    except FileNotFoundError as exc:  # capi/ templates: part of a source checkout, not of the package
        raise ConfigError(f"cannot read {exc.filename}: `rollout render` needs the capi/ templates of a "
                          "rollout checkout", hint="run from a checkout or set ROLLOUT_PROJECT_DIR to one") from exc
    except RenderError as exc:
        raise ConfigError(
            f"region {region}: the CAPI manifests are invalid:\n  " + "\n  ".join(exc.problems),
            hint=f"fix the inventory, then `rollout render --region {region} --check`",
        ) from exc

    counts = ", ".join(f"{n} {k}" for k, n in sorted(rendered.counts().items()))
    if check:
        con.say(f"Valid against the CRDs in {validator.directory}: {counts}.", style="green")
    elif out is not None:
        written = write(rendered, out)
        con.say(f"Wrote {len(written)} file(s) to {out}: {counts}.", style="green")
    else:
        con.data(b"".join(rendered.files[k] for k in sorted(rendered.files)).decode("utf-8"))
    con.say(f"Role bundle: {bundle.url} (sha256 {bundle.sha256}); it must be served there before nodes boot.")
    missing = rendered.missing_secrets
    if missing:
        con.say(
            f"{len(missing)} Secret(s) in namespace {r.clusters.management_namespace} must exist "
            "(referenced, not rendered):"
        )
        for s in missing:
            con.say(f"  {s.name}  keys: {', '.join(s.keys)}  ({s.purpose})")
    if r.method is Method.ANSIBLE and nodes is None:
        con.hint(
            f"region {region} is managed by Ansible: applying BareMetalHosts for nodes still on Ansible "
            "makes baremetal-operator inspect (reboot) them; migrate node by node instead"
        )
        con.next_command(f"rollout plan --region {region} --to capi")
    else:
        con.next_command(f"rollout bundle build --region {region}, then kubectl apply -f {out or 'DIR'}")
    return ExitCode.OK


def register(app: typer.Typer) -> None:
    app.command("render", short_help="Render Cluster API + Metal3 manifests, CRD-validated.")(render_cmd)


__all__ = ["dump", "register", "render_cmd"]
