"""Build the Cluster API / Metal3 objects of a region from the model and the `capi/` templates.

Invariants and decisions:
- Pure: (Region, bundle reference, templates, optional secret values) -> list of plain dicts. No I/O
  besides the template set passed in, no clock; the same inputs give the same objects in the same order.
- Secret values enter only the two Secret templates and only when a `SecretSource` is given
  (`--include-secrets`); every other object names Secrets (`credentialsName`, `contentFrom`).
- Names: BMH = inventory host name (= Kubernetes node name, kept across re-images); BMC Secret
  `<node>-bmc`; class objects `<cluster>-<class>` (class `hc_t4` -> `hc-t4`). Infrastructure and
  bootstrap templates are immutable for CAPI, so their names end in a hash of their spec: changing a
  template yields a new name and the MachineDeployment is re-pointed, never an in-place edit.
- Object order: region objects, then per class (sorted), then per node (sorted): deterministic.
- Only the nodes passed in (`nodes=`, default all) get a BMH; MachineDeployment replicas count exactly
  those nodes of the class, so a partial render (`--limit`) never asks CAPI for hosts that do not exist.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from rollout.model.region import BmcSpec, Node, NodeClass, Region
from rollout.render import capi_labels as L
from rollout.render.capi_template import TemplateSet

EXACT_ROOT_HINTS = frozenset(
    {"serialNumber", "wwn", "wwnWithExtension", "wwnVendorExtension", "deviceName", "hctl"}
)
_INT_HINTS = frozenset({"minSizeGigabytes"})
_BOOL_HINTS = frozenset({"rotational"})
# Drivers whose scheme family differs from the inventory driver name (ipmi's `libvirt` alias).
_SCHEME_ALIASES = {"ipmi": ("ipmi", "libvirt")}
NODE_SECRET_KEYS = ("ceph_bootstrap_osd_key", "grid_client_token")
# Inventory variable (vault) behind each node-secret key and the BMC credentials.
NODE_SECRET_VARS = {
    "ceph_bootstrap_osd_key": "vault_ceph_bootstrap_osd_key",
    "grid_client_token": "vault_grid_client_token",
}
BMC_CREDENTIALS_VAR = "vault_bmc_credentials"


class BuildError(Exception):
    """The region cannot be expressed as CAPI objects; `problems` lists every reason (what and where)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class SecretSource(Protocol):
    def secret(self, var_name: str) -> Any: ...


@dataclass(frozen=True)
class BundleRef:
    """Where nodes fetch the role bundle on first boot, and its sha256 (verified before unpacking)."""

    url: str
    sha256: str


@dataclass(frozen=True)
class SecretRef:
    """A Secret the manifests reference: its name, the keys that must be present, and why."""

    name: str
    keys: tuple[str, ...]
    purpose: str
    rendered: bool = False  # True when this render wrote it (--include-secrets)


@dataclass
class BuildResult:
    objects: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[SecretRef] = field(default_factory=list)


def dns_name(name: str) -> str:
    return name.replace("_", "-").lower()


def spec_hash(obj: dict[str, Any]) -> str:
    canonical = json.dumps(obj.get("spec"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]


def bmc_address(bmc: BmcSpec) -> str:
    """The BMH `bmc.address` for the node's driver; raise ValueError when address and driver disagree."""
    families = _SCHEME_ALIASES.get(bmc.driver, (bmc.driver,))
    if "://" in bmc.address:
        scheme = bmc.address.split("://", 1)[0]
        allowed = {f"{f}{suffix}" for f in families for suffix in ("", "+http", "+https")}
        if scheme not in allowed:
            raise ValueError(
                f"bmc.address scheme {scheme!r} does not match driver {bmc.driver!r} "
                f"(expected one of {', '.join(sorted(allowed))})"
            )
        return bmc.address
    if bmc.driver == "ipmi":
        return f"ipmi://{bmc.address}"  # a bare host[:port] is IPMI for baremetal-operator
    raise ValueError(
        f"bmc.address {bmc.address!r} has no scheme; driver {bmc.driver!r} needs "
        f"{bmc.driver}://<host>/redfish/v1/Systems/<id>"
    )


def root_device_hints(node: Node) -> dict[str, Any] | None:
    if not node.root_device_hints:
        return None
    hints: dict[str, Any] = {}
    for key, value in node.root_device_hints:
        if key in _INT_HINTS:
            hints[key] = int(value)
        elif key in _BOOL_HINTS:
            hints[key] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        else:
            hints[key] = str(value)
    return hints


def cleaning_mode(nodes: Iterable[Node]) -> str:
    # Metadata cleaning wipes partition tables on every disk, OSDs included (baremetal-operator#2589).
    return "disabled" if any(n.is_osd_host for n in nodes) else "metadata"


def _endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if not parts.hostname:
        raise ValueError(f"control_plane_endpoint {url!r} has no host")
    return parts.hostname, parts.port or 6443


@dataclass(frozen=True)
class _Address:
    node: str
    role: str
    iface: str
    ip: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    gateway: str | None


def _addresses(nodes: Sequence[Node]) -> list[_Address]:
    out = []
    for node in nodes:
        for iface in node.interfaces:
            if iface.addresses:
                out.append(
                    _Address(
                        node.name,
                        iface.role,
                        iface.name,
                        ipaddress.ip_interface(iface.addresses[0]),
                        iface.gateway,
                    )
                )
    return out


def pool_name(cluster: str, role: str) -> str:
    return f"{cluster}-{dns_name(role)}"


def _ippools(
    cluster: str, nodes: Sequence[Node], problems: list[str]
) -> list[tuple[str, list[Any], dict[str, str]]]:
    """(pool name, pools[], preAllocations) per network role; one range per subnet, spanning its nodes."""
    by_role: dict[str, list[_Address]] = {}
    for addr in _addresses(nodes):
        by_role.setdefault(addr.role, []).append(addr)
    result = []
    for role in sorted(by_role):
        name = pool_name(cluster, role)
        subnets: dict[Any, list[_Address]] = {}
        for addr in by_role[role]:
            subnets.setdefault(addr.ip.network, []).append(addr)
        ranges = []
        for net in sorted(subnets, key=lambda n: (n.version, int(n.network_address))):
            members = subnets[net]
            gateways = sorted({a.gateway for a in members if a.gateway})
            if len(gateways) > 1:
                problems.append(
                    f"network {role} subnet {net}: nodes disagree on the gateway ({', '.join(gateways)})"
                )
            ips = sorted(a.ip.ip for a in members)
            entry: dict[str, Any] = {
                "start": str(ips[0]),
                "end": str(ips[-1]),
                "subnet": str(net),
                "prefix": net.prefixlen,
            }
            if gateways:
                entry["gateway"] = gateways[0]
            ranges.append(entry)
        # Claim names `<bmh>-<pool>` need CAPM3 --enable-bmh-name-based-preallocation (docs/migration.md).
        prealloc = {f"{a.node}-{name}": str(a.ip.ip) for a in sorted(by_role[role], key=lambda a: a.node)}
        result.append((name, ranges, prealloc))
    return result


def _class_layout(
    nodes: Sequence[Node], problems: list[str], cls: str
) -> list[tuple[str, str, int, bool, bool]]:
    """(iface, role, mtu, has_address, has_gateway) shared by every node of a class (one data template)."""
    layouts = {}
    for node in nodes:
        layouts[node.name] = [
            (i.name, i.role, i.mtu, bool(i.addresses), bool(i.gateway)) for i in node.interfaces
        ]
    distinct = {tuple(v) for v in layouts.values()}
    if len(distinct) > 1:
        first = nodes[0].name
        odd = sorted(n for n, v in layouts.items() if v != layouts[first])
        problems.append(
            f"node class {cls}: interface layout differs between {first} and {', '.join(odd)}; "
            "one Metal3DataTemplate per class needs identical interface names, roles and MTUs"
        )
    return layouts[nodes[0].name]


def _network(
    cluster: str, layout: Sequence[tuple[str, str, int, bool, bool]], nodes: Sequence[Node]
) -> tuple[list[Any], list[Any], dict[str, Any]]:
    ethernets, meta_ips = [], []
    networks: dict[str, list[Any]] = {}
    first = {i.name: i for i in nodes[0].interfaces}
    for iface, role, mtu, has_address, has_gateway in layout:
        ethernets.append(
            {
                "id": iface,
                "type": "phy",
                "mtu": mtu,
                "macAddress": {
                    "fromAnnotation": {
                        "object": "baremetalhost",
                        "annotation": f"{L.MAC_ANNOTATION_PREFIX}{iface}",
                    }
                },
            }
        )
        if not has_address:
            continue
        pool = pool_name(cluster, role)
        ref = {"apiGroup": "ipam.metal3.io", "kind": "IPPool", "name": pool}
        family = "ipv6" if ipaddress.ip_interface(first[iface].addresses[0]).version == 6 else "ipv4"
        entry: dict[str, Any] = {"id": dns_name(role), "link": iface, "fromPoolRef": ref}
        if has_gateway:
            default = "::" if family == "ipv6" else "0.0.0.0"
            entry["routes"] = [{"network": default, "prefix": 0, "gateway": {"fromPoolRef": ref}}]
        networks.setdefault(family, []).append(entry)
        meta_ips.append(
            {
                "key": f"{dns_name(role).replace('-', '_')}_ip",
                "name": pool,
                "apiGroup": "ipam.metal3.io",
                "kind": "IPPool",
            }
        )
    return ethernets, meta_ips, networks


def _class_gpu(cls: NodeClass, nodes: Sequence[Node]) -> str | None:
    return cls.gpu_model or next((n.gpu_model for n in nodes if n.gpu_model), None)


def _node_labels(cls: NodeClass, nodes: Sequence[Node]) -> str:
    """kubelet --node-labels: the Ansible method's kubelet labels plus metal3.io/uuid (CAPM3's Node match).

    Per-node values (rack, GPU count) come from the BMH labels through the Metal3DataTemplate metadata.
    """
    labels = [
        f"{L.METAL3_UUID}={{{{ ds.meta_data.uuid }}}}",
        f"{L.RACK}={{{{ ds.meta_data.rack }}}}",
        f"{L.NODE_CLASS}={cls.name}",
    ]
    gpu = _class_gpu(cls, nodes)
    if gpu:
        labels += [f"{L.GPU_MODEL}={gpu}", f"{L.GPU_COUNT}={{{{ ds.meta_data.gpu_count }}}}"]
    return ",".join(labels)


def build(
    region: Region,
    bundle: BundleRef,
    templates: TemplateSet,
    *,
    nodes: Iterable[str] | None = None,
    secrets: SecretSource | None = None,
) -> BuildResult:
    """All objects for `region` (restricted to `nodes` when given); raise BuildError listing every problem."""
    problems: list[str] = []
    wanted = set(nodes) if nodes is not None else {n.name for n in region.nodes}
    unknown = sorted(wanted - {n.name for n in region.nodes})
    if unknown:
        problems.append(f"unknown node(s): {', '.join(unknown)}")
    selected = [n for n in region.nodes if n.name in wanted]
    c = region.clusters
    if not c.workload_name:
        problems.append("region.yml clusters.workload.name is required to render CAPI objects")
    if not c.control_plane_endpoint:
        problems.append(
            "region.yml clusters.workload.control_plane_endpoint is required to render CAPI objects"
        )
    if not c.kubernetes_version:
        problems.append("region.yml clusters.workload.kubernetes_version is required to render CAPI objects")
    if region.image is None:
        problems.append("region.yml image (url, checksum) is required to render CAPI objects")
    if problems:
        raise BuildError(problems)
    assert c.workload_name and c.control_plane_endpoint and c.kubernetes_version and region.image
    cluster, ns = c.workload_name, c.management_namespace
    try:
        cp_host, cp_port = _endpoint(c.control_plane_endpoint)
    except ValueError as exc:
        raise BuildError([str(exc)]) from exc
    version = c.kubernetes_version if c.kubernetes_version.startswith("v") else f"v{c.kubernetes_version}"
    region_labels = {L.REGION: region.name, L.CLUSTER_NAME: cluster}
    node_secrets_name = f"{cluster}-rollout-node-secrets"
    base = {"NAMESPACE": ns, "CLUSTER_NAME": cluster, "REGION_LABELS": region_labels}
    out = BuildResult()
    objs = out.objects

    objs += templates.render(
        "region/cluster.yaml",
        {
            **base,
            "CONTROL_PLANE_HOST": cp_host,
            "CONTROL_PLANE_PORT": cp_port,
            # Every rack of the region, not only the selected nodes': a partial apply must not shrink it.
            "FAILURE_DOMAINS": [{"name": fd, "controlPlane": False} for fd in region.failure_domains],
            "LABEL_SYNC_PREFIXES": ",".join(L.SYNC_PREFIXES),
        },
    )
    # Pools cover every node of the region, not only the selected ones: pre-allocations must reserve the
    # addresses of nodes still on Ansible so a CAPI node never receives one of them.
    for name, ranges, prealloc in _ippools(cluster, region.nodes, problems):
        objs += templates.render(
            "region/ippool.yaml",
            {**base, "POOL_NAME": name, "POOL_RANGES": ranges, "POOL_PREALLOCATIONS": prealloc},
        )
    objs += templates.render("region/remediation.yaml", base)
    if secrets is not None:
        data = {key: str(secrets.secret(var)) for key, var in sorted(NODE_SECRET_VARS.items())}
        objs += templates.render(
            "region/node-secrets.yaml",
            {**base, "NODE_SECRETS_NAME": node_secrets_name, "NODE_SECRET_DATA": data},
        )
    out.secrets += [
        SecretRef(
            f"{cluster}-kubeconfig", ("value",), "workload cluster kubeconfig (CAPI, CABPK bootstrap tokens)"
        ),
        SecretRef(f"{cluster}-ca", ("tls.crt", "tls.key"), "workload cluster CA with its key (CABPK join)"),
        SecretRef(
            node_secrets_name,
            NODE_SECRET_KEYS,
            "node secrets for first boot (contentFrom)",
            rendered=secrets is not None,
        ),
    ]

    by_class: dict[str, list[Node]] = {}
    for node in selected:
        by_class.setdefault(node.node_class, []).append(node)
    for cls_name in sorted(by_class):
        members = by_class[cls_name]
        cls = region.node_class(cls_name)
        objs += _class_objects(
            region, cls, members, bundle, templates, base, problems, version, node_secrets_name
        )

    bmc_creds = secrets.secret(BMC_CREDENTIALS_VAR) if secrets is not None else None
    for node in selected:
        labels = {
            L.REGION: region.name,
            L.RACK: node.failure_domain,
            L.NODE_CLASS: node.node_class,
            L.FAILURE_DOMAIN: node.failure_domain,
        }
        if node.gpu:
            labels[L.GPU_MODEL] = node.gpu.model
            labels[L.GPU_COUNT] = str(node.gpu.count)
        try:
            address = bmc_address(node.bmc)
        except ValueError as exc:
            problems.append(f"host {node.name}: {exc}")
            continue
        cred_name = f"{node.name}-bmc"
        objs += templates.render(
            "node/baremetalhost.yaml",
            {
                "NAMESPACE": ns,
                "NODE_NAME": node.name,
                "BMH_LABELS": labels,
                "BMH_ANNOTATIONS": {
                    f"{L.MAC_ANNOTATION_PREFIX}{i.name}": i.mac.lower() for i in node.interfaces
                },
                "BOOT_MODE": region.boot_mode,
                "BOOT_MAC": node.boot_mac.lower() or None,
                "BMC_ADDRESS": address,
                "BMC_CREDENTIALS_NAME": cred_name,
                "BMC_DISABLE_CERT_VERIFICATION": node.bmc.disable_certificate_verification,
                "ROOT_DEVICE_HINTS": root_device_hints(node),
                "AUTOMATED_CLEANING_MODE": cleaning_mode([node]),
            },
        )
        if bmc_creds is not None:
            cred = bmc_creds.get(node.bmc.credentials) if isinstance(bmc_creds, dict) else None
            if not cred or "username" not in cred or "password" not in cred:
                problems.append(
                    f"host {node.name}: vault_bmc_credentials[{node.bmc.credentials!r}] "
                    "needs username and password"
                )
            else:
                objs += templates.render(
                    "node/bmc-secret.yaml",
                    {
                        "NAMESPACE": ns,
                        "BMC_CREDENTIALS_NAME": cred_name,
                        "BMH_LABELS": labels,
                        "BMC_USERNAME": str(cred["username"]),
                        "BMC_PASSWORD": str(cred["password"]),
                    },
                )
        out.secrets.append(
            SecretRef(
                cred_name,
                ("username", "password"),
                f"BMC credentials of {node.name}",
                rendered=bmc_creds is not None,
            )
        )
    if problems:
        raise BuildError(problems)
    return out


def _class_objects(
    region: Region,
    cls: NodeClass,
    members: Sequence[Node],
    bundle: BundleRef,
    templates: TemplateSet,
    base: dict[str, Any],
    problems: list[str],
    version: str,
    node_secrets_name: str,
) -> list[dict[str, Any]]:
    cluster = base["CLUSTER_NAME"]
    md_name = f"{cluster}-{dns_name(cls.name)}"
    class_labels = {**base["REGION_LABELS"], L.NODE_CLASS: cls.name}
    layout = _class_layout(members, problems, cls.name)
    ethernets, meta_ips, networks = _network(cluster, layout, members)
    image = region.image
    assert image is not None
    t = region.policy.timeouts
    from_labels = [{"key": "rack", "object": "baremetalhost", "label": L.RACK}]
    if _class_gpu(cls, members):
        from_labels.append({"key": "gpu_count", "object": "baremetalhost", "label": L.GPU_COUNT})

    m3dt = templates.render(
        "class/metal3datatemplate.yaml",
        {
            **base,
            "M3DT_NAME": md_name,
            "CLASS_LABELS": class_labels,
            "META_FROM_LABELS": from_labels,
            "META_IP_ADDRESSES": meta_ips,
            "NETWORK_ETHERNETS": ethernets,
            "NETWORK_NETWORKS": networks,
        },
    )[0]
    m3dt["metadata"]["name"] = f"{md_name}-{spec_hash(m3dt)}"
    m3mt = templates.render(
        "class/metal3machinetemplate.yaml",
        {
            **base,
            "M3MT_NAME": md_name,
            "M3DT_NAME": m3dt["metadata"]["name"],
            "CLASS_LABELS": class_labels,
            "AUTOMATED_CLEANING_MODE": cleaning_mode(members),
            "IMAGE_URL": image.url,
            "IMAGE_CHECKSUM": image.checksum,
            "IMAGE_CHECKSUM_TYPE": image.checksum_type,
            "IMAGE_FORMAT": image.format,
            "HOST_SELECTOR": {L.REGION: region.name, L.NODE_CLASS: cls.name},
        },
    )[0]
    m3mt["metadata"]["name"] = f"{md_name}-{spec_hash(m3mt)}"
    has_gpu = bool(cls.gpu_model) or any(n.gpu for n in members)
    grid_file = {
        "path": "/etc/rollout/secrets/grid_client_token",
        "owner": "root:root",
        "permissions": "0600",
        "contentFrom": {"secret": {"name": node_secrets_name, "key": "grid_client_token"}},
    }
    kct = templates.render(
        "class/kubeadmconfigtemplate.yaml",
        {
            **base,
            "KCT_NAME": md_name,
            "CLASS_NAME": cls.name,
            "CLASS_LABELS": class_labels,
            "KUBELET_NODE_LABELS": _node_labels(cls, members),
            "BUNDLE_URL": bundle.url,
            "BUNDLE_SHA256": bundle.sha256,
            "NODE_SECRETS_NAME": node_secrets_name,
            "GRID_TOKEN_FILE": grid_file if has_gpu else None,
        },
    )[0]
    kct["metadata"]["name"] = f"{md_name}-{spec_hash(kct)}"
    selector = {L.CLUSTER_NAME: cluster, L.NODE_CLASS: cls.name}
    common = {**base, "MD_NAME": md_name, "MD_SELECTOR": selector, "CLASS_LABELS": class_labels}
    md = templates.render(
        "class/machinedeployment.yaml",
        {
            **common,
            "REPLICAS": len(members),
            "KUBERNETES_VERSION": version,
            "KCT_NAME": kct["metadata"]["name"],
            "M3MT_NAME": m3mt["metadata"]["name"],
            "NODE_DRAIN_TIMEOUT_SECONDS": t.drain,
        },
    )
    mhc = templates.render(
        "class/machinehealthcheck.yaml", {**common, "MHC_NODE_STARTUP_TIMEOUT_SECONDS": t.reprovision}
    )
    return [m3dt, m3mt, kct, *md, *mhc]
