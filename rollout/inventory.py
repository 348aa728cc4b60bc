"""Load a region (`inventories/<region>/`) into the typed model, validating it statically.

The Ansible half (`hosts.yml`, `group_vars/`, `host_vars/`, vault) is loaded through ansible-core's
own InventoryManager and VariableManager, so rollout sees exactly the variables `ansible-playbook -i
inventories/<region>/hosts.yml` sees. `region.yml` beside it holds rollout's policy and is validated
against `rollout/schemas/region.schema.json`.

Invariants:
- No network access, no writes: loading is safe to run anywhere, any time.
- Validation reports *all* problems at once (`InventoryError.problems`), each located by file (and line
  where the YAML tells us), host and field. Nothing downstream runs on an invalid region.
- Secret values never enter the model: a variable is secret when its name starts with `vault_`, when it
  is an inline `!vault` value, or when its (untemplated) value refers to a secret variable. Those are
  left out of `node_vars()` and only reachable through `secret()`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from rollout.errors import ConfigError, InventoryError, Problem
from rollout.model import (
    BmcSpec,
    ClusterSettings,
    GpuSpec,
    ImageSpec,
    Interface,
    Method,
    Node,
    NodeClass,
    OsdDevice,
    OvnSpec,
    Policy,
    Region,
    Timeouts,
)
from rollout.yamlindex import YamlFile, read_yaml

CLASS_PARENT_GROUP = "hyperconverged"
DOMAIN_PARENT_GROUP = "racks"
GPU_MODELS = ("T4", "M10")
# Root device hints that select exactly one disk (model/vendor are substring matches; size and
# rotational select a class of disks). See metal3 docs, bmo/root_device_hints.md.
EXACT_ROOT_HINTS = ("deviceName", "hctl", "serialNumber", "wwn", "wwnWithExtension", "wwnVendorExtension")
STABLE_DEVICE_PREFIXES = ("/dev/disk/by-id/", "/dev/disk/by-path/")
BMC_SCHEMES = {
    "redfish": ("redfish", "redfish+http", "redfish+https"),
    "redfish-virtualmedia": ("redfish-virtualmedia", "redfish-virtualmedia+http", "redfish-virtualmedia+https"),
    "ipmi": ("ipmi",),
}
# Variables ansible-core adds itself; they are not part of a node's configuration.
_MAGIC_VARS = frozenset(
    {
        "ansible_config_file",
        "ansible_facts",
        "ansible_playbook_python",
        "ansible_version",
        "group_names",
        "groups",
        "inventory_dir",
        "inventory_file",
        "inventory_hostname",
        "inventory_hostname_short",
        "playbook_dir",
        "omit",
        "hostvars",
    }
)
_TEMPLATE_REF = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\b")


@dataclass
class RegionSource:
    """A loaded region: the typed model plus access to variables as Ansible sees them."""

    region: Region
    inventory_dir: Path
    hosts_file: Path
    vault_password_file: Path | None
    secret_var_names: frozenset[str]
    _node_vars: dict[str, dict[str, Any]] = field(repr=False)
    _secrets: dict[str, Any] = field(repr=False)

    def node_vars(self, node: str) -> dict[str, Any]:
        """Templated, non-secret variables of one host (a deep copy the caller may change)."""
        return json.loads(json.dumps(self._node_vars[node]))

    def secret(self, name: str) -> Any:
        """One secret value (e.g. `vault_bmc_credentials`); KeyError names the missing variable."""
        if name not in self._secrets:
            raise KeyError(f"secret variable `{name}` is not defined in the region's vault")
        return self._secrets[name]

    def secret_values(self) -> list[str]:
        """Every secret leaf value, for redaction and for tests that grep outputs for leaks."""
        return sorted({v for k, v in _keyed_leaves(self._secrets) if isinstance(v, str) and len(v) >= 6
                       and k not in _NOT_SECRET_KEYS})

    def bmc_credentials(self, node: Node) -> tuple[str, str]:
        creds = self.secret("vault_bmc_credentials")[node.bmc.credentials]
        return str(creds["username"]), str(creds["password"])


def list_regions(inventory_root: Path) -> list[str]:
    if not inventory_root.is_dir():
        return []
    return sorted(p.name for p in inventory_root.iterdir() if (p / "region.yml").is_file())


def load_region(inventory_root: Path, name: str, *, cache_dir: Path | None = None) -> RegionSource:
    """Load and validate `inventory_root/name`; raise InventoryError listing every problem.

    With `cache_dir`, a valid region is remembered by content fingerprint (rollout/inventory_cache.py)
    so the next command skips ansible-core's load; `rollout validate` never uses the cache."""
    region_dir = inventory_root / name
    if not (region_dir / "region.yml").is_file():
        known = ", ".join(list_regions(inventory_root)) or "none"
        raise ConfigError(
            f"No region `{name}` under {inventory_root} (no {region_dir / 'region.yml'})",
            hint=f"known regions: {known}; set --inventory-root or ROLLOUT_INVENTORY_ROOT",
        )
    if cache_dir is not None:
        from rollout.inventory_cache import load_cached

        return load_cached(cache_dir, region_dir, name, lambda: _Loader(region_dir, name).load())
    return _Loader(region_dir, name).load()


# --------------------------------------------------------------------------------------------------


@cache
def _schema(name: str) -> dict[str, Any]:
    text = resources.files("rollout.schemas").joinpath(name).read_text(encoding="utf-8")
    return dict(json.loads(text))


def _leaves(obj: Any) -> Iterator[Any]:
    return (value for _, value in _keyed_leaves(obj))


def _has_template(obj: Any) -> bool:
    return any(isinstance(leaf, str) and ("{{" in leaf or "{%" in leaf) for leaf in _leaves(obj))


_NOT_SECRET_KEYS = frozenset({"username", "user"})  # identities in vault next to their passwords


def _keyed_leaves(obj: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _keyed_leaves(v, str(k))
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _keyed_leaves(v, key)
    else:
        yield key, obj


def _plain(obj: Any) -> Any:
    """ansible-core 2.19 returns tagged str/dict subclasses; turn them into builtin types."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    return str(obj)


class _Loader:
    def __init__(self, region_dir: Path, name: str) -> None:
        self.dir = region_dir
        self.name = name
        self.problems: list[Problem] = []
        self.files: dict[Path, YamlFile] = {}

    # -- problem helpers ----------------------------------------------------------------------
    def problem(
        self,
        field: str,
        message: str,
        hint: str,
        *,
        host: str | None = None,
        file: Path | None = None,
        path: tuple[str, ...] = (),
    ) -> None:
        line = None
        if file is not None and file in self.files:
            line = self.files[file].line_of(path or tuple(field.split(".")))
        shown = str(file.relative_to(self.dir.parent.parent)) if file and self._under_root(file) else (
            str(file) if file else None
        )
        self.problems.append(Problem(field=field, message=message, hint=hint, file=shown, line=line, host=host))

    def _under_root(self, file: Path) -> bool:
        try:
            file.relative_to(self.dir.parent.parent)
            return True
        except ValueError:
            return False

    def host_problem(self, host: str, path: tuple[str, ...], message: str, hint: str) -> None:
        file = self._file_defining(host, path[0]) if path else self._host_file(host)
        self.problem(".".join(path), message, hint, host=host, file=file, path=path)

    # -- loading --------------------------------------------------------------------------------
    def load(self) -> RegionSource:
        region_yml = self.dir / "region.yml"
        hosts_file = self._hosts_file()
        for path in self._yaml_files():
            yf = read_yaml(path)
            self.files[path] = yf
            if yf.error:
                self.problems.append(
                    Problem(field="(file)", message=yf.error, hint="fix the YAML syntax",
                            file=str(path), line=yf.error_line)
                )
            for dup_path, line in yf.duplicates:
                self.problems.append(
                    Problem(field=".".join(dup_path), message="duplicate key (the last one would silently win)",
                            hint="remove or rename one of the duplicates", file=str(path), line=line)
                )
        if self.problems:
            raise InventoryError(self.name, self.problems)

        settings = self.files[region_yml].data or {}
        self._validate_region_yml(region_yml, settings)
        if self.problems:
            # Region settings are needed to interpret the inventory; stop before loading it.
            raise InventoryError(self.name, self.problems)
        if settings.get("name") != self.name:
            self.problem("name", f"region.yml says `{settings.get('name')}` but the directory is `{self.name}`",
                         f"set `name: {self.name}` or rename the directory", file=region_yml)

        vault_file = None
        if settings.get("vault_password_file"):
            vault_file = (self.dir / settings["vault_password_file"]).resolve()
            if not vault_file.is_file():
                self.problem("vault_password_file", f"vault password file {vault_file} does not exist",
                             "create it or point vault_password_file at the right file", file=region_yml)
                raise InventoryError(self.name, self.problems)

        raw_vars, node_classes_of, domains_of, all_groups = self._ansible_load(hosts_file, vault_file)
        secret_names = self._secret_names(raw_vars)
        node_vars, secrets = self._template(raw_vars, secret_names, vault_file)
        region = self._build(settings, node_vars, node_classes_of, domains_of, all_groups, secrets)
        if self.problems:
            raise InventoryError(self.name, self.problems)
        return RegionSource(
            region=region,
            inventory_dir=self.dir,
            hosts_file=hosts_file,
            vault_password_file=vault_file,
            secret_var_names=frozenset(secret_names),
            _node_vars=node_vars,
            _secrets=secrets,
        )

    def _hosts_file(self) -> Path:
        for cand in ("hosts.yml", "hosts.yaml"):
            if (self.dir / cand).is_file():
                return self.dir / cand
        raise InventoryError(self.name, [Problem(field="hosts.yml", message="no hosts.yml in the region directory",
                                                 hint="create hosts.yml (see docs/inventory.md)", file=str(self.dir))])

    def _yaml_files(self) -> Iterable[Path]:
        yield self.dir / "region.yml"
        yield self._hosts_file()
        for sub in ("group_vars", "host_vars"):
            base = self.dir / sub
            if base.is_dir():
                for p in sorted(base.rglob("*")):
                    if p.is_file() and p.suffix in (".yml", ".yaml", ""):
                        yield p

    def _validate_region_yml(self, path: Path, settings: Any) -> None:
        validator = jsonschema.Draft202012Validator(_schema("region.schema.json"))
        for err in sorted(validator.iter_errors(settings), key=lambda e: list(map(str, e.absolute_path))):
            loc = tuple(str(p) for p in err.absolute_path)
            field_name, message, hint = _explain_schema_error(err, loc)
            self.problem(field_name, message, hint, file=path, path=loc)

    def _ansible_load(
        self, hosts_file: Path, vault_file: Path | None
    ) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]], dict[str, list[str]], set[str]]:
        # Imported here: ansible-core is heavy and only needed once per load.
        from ansible.errors import AnsibleError
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.parsing.vault import VaultSecret
        from ansible.plugins.loader import init_plugin_loader
        from ansible.vars.manager import VariableManager

        _init_ansible_once(init_plugin_loader)
        loader = DataLoader()
        if vault_file is not None:
            loader.set_vault_secrets([("default", VaultSecret(vault_file.read_bytes().strip()))])
        self._ansible_loader = loader
        try:
            inventory = InventoryManager(loader=loader, sources=[str(hosts_file)])
            variables = VariableManager(loader=loader, inventory=inventory)
        except AnsibleError as exc:
            self.problem("(inventory)", f"ansible-core could not load the inventory: {exc.message}",
                         "fix the file named above", file=hosts_file)
            raise InventoryError(self.name, self.problems) from exc
        groups = inventory.groups
        all_groups = {str(g) for g in groups}
        class_parent = groups.get(CLASS_PARENT_GROUP)
        if class_parent is None:
            self.problem(CLASS_PARENT_GROUP, f"no group `{CLASS_PARENT_GROUP}` (its child groups are the node classes)",
                         f"add `{CLASS_PARENT_GROUP}: children: {{hc_std: {{hosts: ...}}}}` to hosts.yml",
                         file=hosts_file, path=("all", "children"))
            raise InventoryError(self.name, self.problems)
        node_classes_of: dict[str, list[str]] = {}
        # str(): ansible-core 2.19 hands out tagged str subclasses; the model holds plain str only.
        for child in class_parent.child_groups:
            for host in child.get_hosts():
                node_classes_of.setdefault(str(host.name), []).append(str(child.name))
        for host in class_parent.hosts:
            node_classes_of.setdefault(str(host.name), [])
        domains_of: dict[str, list[str]] = {}
        domain_parent = groups.get(DOMAIN_PARENT_GROUP)
        if domain_parent is not None:
            for child in domain_parent.child_groups:
                for host in child.get_hosts():
                    domains_of.setdefault(str(host.name), []).append(str(child.name))
        raw: dict[str, dict[str, Any]] = {}
        for name in sorted(node_classes_of):
            host = inventory.get_host(name)
            try:
                hv = variables.get_vars(host=host, include_hostvars=False)
            except AnsibleError as exc:
                self.problem("(vars)", f"ansible-core could not read the variables: {exc.message}",
                             "check the vault password and the YAML files", host=name, file=hosts_file)
                raise InventoryError(self.name, self.problems) from exc
            raw[name] = {k: v for k, v in hv.items() if k not in _MAGIC_VARS}
        return raw, node_classes_of, domains_of, all_groups

    def _secret_names(self, raw_vars: dict[str, dict[str, Any]]) -> set[str]:
        from ansible.parsing.vault import EncryptedString

        names: set[str] = set()
        for hv in raw_vars.values():
            for key, value in hv.items():
                if key.startswith("vault_") or isinstance(value, EncryptedString):
                    names.add(key)
        # Variables whose untemplated value refers to a secret are secret too (fixpoint).
        changed = True
        while changed:
            changed = False
            for hv in raw_vars.values():
                for key, value in hv.items():
                    if key in names:
                        continue
                    refs = {m for leaf in _leaves(value) if isinstance(leaf, str) and "{{" in leaf
                            for m in _TEMPLATE_REF.findall(leaf)}
                    if refs & names:
                        names.add(key)
                        changed = True
        return names

    def _template(
        self, raw_vars: dict[str, dict[str, Any]], secret_names: set[str], vault_file: Path | None
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        from ansible.errors import AnsibleError
        from ansible.template import Templar

        node_vars: dict[str, dict[str, Any]] = {}
        secrets: dict[str, Any] = {}
        for host, hv in raw_vars.items():
            templar = Templar(loader=self._ansible_loader, variables=hv)
            out: dict[str, Any] = {}
            for key, value in hv.items():
                if key in secret_names:
                    continue
                if not _has_template(value):
                    out[key] = _plain(value)  # most values are plain data: skip the template engine
                    continue
                try:
                    out[key] = _plain(templar.template(value))
                except AnsibleError as exc:
                    self.host_problem(host, (key,), f"cannot be templated: {exc.message}",
                                      "fix the Jinja2 expression or define the variable it uses")
            node_vars[host] = out
            for key in secret_names:
                if key in hv and key not in secrets:
                    try:
                        secrets[key] = _plain(templar.template(hv[key]))
                    except AnsibleError as exc:
                        self.problem(key, f"secret cannot be decrypted or templated: {exc.message}",
                                     "check the vault password file named in region.yml", host=host)
        return node_vars, secrets

    # -- files that define a host's variable --------------------------------------------------
    def _host_file(self, host: str) -> Path:
        for cand in (self.dir / "host_vars" / f"{host}.yml", self.dir / "host_vars" / f"{host}.yaml"):
            if cand.is_file():
                return cand
        return self._hosts_file()

    def _file_defining(self, host: str, key: str) -> Path:
        candidates: list[Path] = []
        hv_dir = self.dir / "host_vars"
        candidates += [hv_dir / f"{host}.yml", hv_dir / f"{host}.yaml"]
        if (hv_dir / host).is_dir():
            candidates += sorted((hv_dir / host).rglob("*.y*ml"))
        gv_dir = self.dir / "group_vars"
        if gv_dir.is_dir():
            candidates += sorted(p for p in gv_dir.rglob("*.y*ml") if p.parent.name != "all" and p.stem != "all")
            candidates += sorted(gv_dir.glob("all*.y*ml")) + sorted((gv_dir / "all").rglob("*.y*ml"))
        for cand in candidates:
            yf = self.files.get(cand)
            if yf is not None and isinstance(yf.data, dict) and key in yf.data:
                return cand
        return self._host_file(host)

    # -- building the model ---------------------------------------------------------------------
    def _build(
        self,
        settings: dict[str, Any],
        node_vars: dict[str, dict[str, Any]],
        node_classes_of: dict[str, list[str]],
        domains_of: dict[str, list[str]],
        all_groups: set[str],
        secrets: dict[str, Any],
    ) -> Region:
        region_yml = self.dir / "region.yml"
        declared = {name: (spec or {}) for name, spec in settings["node_classes"].items()}
        node_schema = jsonschema.Draft202012Validator(_schema("node.schema.json"))
        nodes: list[Node] = []
        bmc_defaults = settings.get("bmc_defaults") or {}
        for host in sorted(node_vars):
            hv = node_vars[host]
            schema_errors = sorted(node_schema.iter_errors(hv), key=lambda e: list(map(str, e.absolute_path)))
            for err in schema_errors:
                loc = tuple(str(p) for p in err.absolute_path)
                field_name, message, hint = _explain_schema_error(err, loc)
                self.host_problem(host, tuple(field_name.split(".")), message, hint)
            classes = node_classes_of.get(host, [])
            if not classes:
                self.host_problem(host, ("node_class",), "node is in no node class group",
                                  f"put it under one child group of `{CLASS_PARENT_GROUP}` in hosts.yml")
            elif len(classes) > 1:
                self.host_problem(host, ("node_class",),
                                  f"node is in {len(classes)} node classes: {', '.join(sorted(classes))}",
                                  "keep it in exactly one node class group")
            for cls in classes:
                if cls not in declared:
                    self.problem("node_classes", f"unknown node class `{cls}` (host {host} is in it)",
                                 f"declare `{cls}` under node_classes in region.yml or move the host",
                                 host=host, file=region_yml)
            self._check_failure_domain(host, hv, domains_of.get(host, []))
            if schema_errors:
                continue  # the node's own fields are malformed; building it would only add noise
            nodes.append(self._node(host, hv, classes[0] if classes else "", bmc_defaults, declared))
        if self.problems:
            # Cross-node checks on half-parsed nodes would only add noise.
            raise InventoryError(self.name, self.problems)
        self._check_unique(nodes, node_vars)
        self._check_secrets(nodes, secrets)
        policy = self._policy(settings, nodes, region_yml)
        clusters = settings.get("clusters") or {}
        mgmt = clusters.get("management") or {}
        wl = clusters.get("workload") or {}
        image = settings.get("image")
        ceph = settings.get("ceph") or {}
        if ceph.get("admin_host") and ceph["admin_host"] not in node_vars and ceph["admin_host"] not in all_groups:
            self.problem("ceph.admin_host", f"`{ceph['admin_host']}` is not a host of this inventory",
                         "name a node (or an inventory host) that has the Ceph admin keyring", file=region_yml)
        return Region(
            name=self.name,
            method=Method(settings["method"]),
            failure_domain_level=settings["failure_domain"],
            policy=policy,
            node_classes=tuple(
                NodeClass(name=n, description=str(s.get("description", "")), gpu_model=s.get("gpu_model"))
                for n, s in sorted(declared.items())
            ),
            nodes=tuple(nodes),
            clusters=ClusterSettings(
                management_kubeconfig=mgmt.get("kubeconfig"),
                management_namespace=mgmt.get("namespace", "metal3"),
                workload_name=wl.get("name"),
                workload_kubeconfig=wl.get("kubeconfig"),
                control_plane_endpoint=wl.get("control_plane_endpoint"),
                kubernetes_version=wl.get("kubernetes_version"),
            ),
            image=ImageSpec(url=image["url"], checksum=image["checksum"],
                            checksum_type=image.get("checksum_type", "sha256"),
                            format=image.get("format", "qcow2")) if image else None,
            bundle_base_url=(settings.get("bundle") or {}).get("base_url"),
            boot_mode=bmc_defaults.get("boot_mode", "UEFI"),
            ceph_admin_host=ceph.get("admin_host"),
            ceph_admin_container=ceph.get("admin_container"),
            description=str(settings.get("description", "")),
            inventory_dir=str(self.dir),
            offline=bool(settings.get("offline", False)),
        )

    def _check_failure_domain(self, host: str, hv: dict[str, Any], rack_groups: list[str]) -> None:
        rack = hv.get("rack")
        if not rack:
            self.host_problem(host, ("rack",), "node has no failure domain (`rack` is not set)",
                              f"set `rack:` in host_vars/{host}.yml or the rack's group_vars")
            return
        if len(rack_groups) > 1:
            self.host_problem(host, ("rack",), f"node is in {len(rack_groups)} rack groups: {', '.join(rack_groups)}",
                              "keep it in exactly one child group of `racks`")
        for group in rack_groups:
            if group not in (str(rack), f"rack_{rack}"):
                self.host_problem(host, ("rack",), f"`rack: {rack}` but the node is in group `{group}`",
                                  f"move it to group `rack_{rack}` or fix `rack`")

    def _node(
        self, host: str, hv: dict[str, Any], node_class: str, bmc_defaults: dict[str, Any],
        declared: dict[str, dict[str, Any]],
    ) -> Node:
        bmc = hv.get("bmc") if isinstance(hv.get("bmc"), dict) else {}
        driver = str(bmc.get("driver", ""))
        address = str(bmc.get("address", ""))
        scheme = address.split("://", 1)[0] if "://" in address else ""
        if driver in BMC_SCHEMES and address and scheme not in BMC_SCHEMES[driver]:
            allowed = " or ".join(f"{s}://" for s in BMC_SCHEMES[driver])
            self.host_problem(host, ("bmc", "address"),
                              f"address scheme `{scheme or '(none)'}://` does not match driver `{driver}`",
                              f"use {allowed} (see docs/inventory.md, BMC address formats)")
        hints = hv.get("root_device_hints") if isinstance(hv.get("root_device_hints"), dict) else {}
        osds_raw = hv.get("ceph_osd_devices") if isinstance(hv.get("ceph_osd_devices"), list) else []
        osds: list[OsdDevice] = []
        file_backend = hv.get("ceph_osd_backend") == "file"
        for i, dev in enumerate(osds_raw):
            if not isinstance(dev, dict) or not isinstance(dev.get("path"), str):
                continue
            path = dev["path"]
            if file_backend:
                # Lab/Molecule only: bluestore on a file in a directory of the node's data volume.
                if not path.startswith("/") or path.startswith("/dev/"):
                    self.host_problem(host, ("ceph_osd_devices", str(i), "path"),
                                      f"`{path}` is not a data directory (ceph_osd_backend is `file`)",
                                      "use an absolute directory on the data volume, e.g. /var/lib/rollout-data/osd-0")
            elif not path.startswith(STABLE_DEVICE_PREFIXES):
                self.host_problem(host, ("ceph_osd_devices", str(i), "path"),
                                  f"OSD device `{path}` is not a stable name (/dev/sdX can change across boots)",
                                  "use the /dev/disk/by-id/... or /dev/disk/by-path/... name of the disk")
            if _same_disk(path, hints):
                self.host_problem(host, ("ceph_osd_devices", str(i), "path"),
                                  f"OSD device `{path}` is the disk the root device hints select: re-imaging "
                                  "would overwrite this OSD (data loss)",
                                  "fix root_device_hints to name the OS disk, or remove the device from the OSDs")
            osds.append(OsdDevice(path=path, allow_zap=bool(dev.get("allow_zap", False))))
        if osds and not any(k in hints for k in EXACT_ROOT_HINTS):
            self.host_problem(host, ("root_device_hints",),
                              "OSD host without exact root device hints: the OS image could land on an OSD disk",
                              f"set one of {', '.join(EXACT_ROOT_HINTS)} for the OS disk")
        hint_dev = hints.get("deviceName")
        if isinstance(hint_dev, str) and not hint_dev.startswith(("/dev/disk/by-path/",)) and re.match(
            r"^/dev/(sd[a-z]+|vd[a-z]+|nvme\d+n\d+)$", hint_dev
        ) and osds:
            self.host_problem(host, ("root_device_hints", "deviceName"),
                              f"root hint deviceName `{hint_dev}` is unstable on an OSD host",
                              "use serialNumber, wwn or a /dev/disk/by-path/ name")
        gpu_raw = hv.get("gpu") if isinstance(hv.get("gpu"), dict) else None
        gpu = None
        expected_model = declared.get(node_class, {}).get("gpu_model")
        if gpu_raw:
            model = str(gpu_raw.get("model", ""))
            if model not in GPU_MODELS:
                self.host_problem(host, ("gpu", "model"), f"unknown GPU model `{model}`",
                                  f"use one of {', '.join(GPU_MODELS)}")
            elif expected_model and model != expected_model:
                self.host_problem(host, ("gpu", "model"),
                                  f"GPU model `{model}` but node class `{node_class}` has `{expected_model}`",
                                  "fix the GPU model or move the node to the right class")
            gpu = GpuSpec(model=model, count=int(gpu_raw.get("count", 0) or 0),
                          vgpu_profile=str(gpu_raw.get("vgpu_profile", "")), mode=str(gpu_raw.get("mode", "")))
        elif expected_model:
            self.host_problem(host, ("gpu",), f"node class `{node_class}` expects a {expected_model} GPU, "
                              "but the node has no `gpu`", f"add `gpu: {{model: {expected_model}, ...}}`")
        ovn_raw = hv.get("ovn") if isinstance(hv.get("ovn"), dict) else {}
        ovn = None
        if ovn_raw:
            if ovn_raw.get("encap_ip") and not _is_ip(str(ovn_raw["encap_ip"])):
                self.host_problem(host, ("ovn", "encap_ip"), f"`{ovn_raw['encap_ip']}` is not an IP address",
                                  "use the node's tunnel-network address")
            ovn = OvnSpec(encap_ip=str(ovn_raw.get("encap_ip", "")), system_id=str(ovn_raw.get("system_id", "")),
                          bridge_mappings=tuple(ovn_raw.get("bridge_mappings") or ()),
                          gateway=bool(ovn_raw.get("gateway", False)))
        interfaces: list[Interface] = []
        for i, itf in enumerate(hv.get("interfaces") or []):
            if not isinstance(itf, dict):
                continue
            for j, addr in enumerate(itf.get("addresses") or []):
                if not _is_cidr(str(addr)):
                    self.host_problem(host, ("interfaces", str(i), "addresses", str(j)),
                                      f"`{addr}` is not an address with prefix length", "write it as 10.0.0.5/24")
            interfaces.append(Interface(name=str(itf.get("name", "")), mac=str(itf.get("mac", "")).lower(),
                                        role=str(itf.get("role", "")),
                                        addresses=tuple(str(a) for a in itf.get("addresses") or ()),
                                        gateway=itf.get("gateway"), mtu=int(itf.get("mtu", 1500))))
        return Node(
            name=host,
            address=str(hv.get("ansible_host", "")),
            failure_domain=str(hv.get("rack", "")),
            node_class=node_class,
            bmc=BmcSpec(driver=driver, address=address, credentials=str(bmc.get("credentials", "")),
                        disable_certificate_verification=bool(
                            bmc.get("disable_certificate_verification",
                                    bmc_defaults.get("disable_certificate_verification", False))),
                        ca_file=bmc.get("ca_file", bmc_defaults.get("ca_file"))),
            boot_mac=str(hv.get("boot_mac", "")).lower(),
            root_device_hints=tuple(sorted((str(k), str(v)) for k, v in hints.items())),
            osd_devices=tuple(osds),
            gpu=gpu,
            ovn=ovn,
            interfaces=tuple(interfaces),
            method=Method(hv["rollout_method"]) if hv.get("rollout_method") in ("ansible", "capi") else None,
        )

    def _check_unique(self, nodes: list[Node], node_vars: dict[str, dict[str, Any]]) -> None:
        def dup(kind: str, path: tuple[str, ...], values: list[tuple[str, str]], hint: str) -> None:
            seen: dict[str, str] = {}
            for host, value in values:
                if not value:
                    continue
                key = value.lower()
                if key in seen:
                    self.host_problem(host, path, f"duplicate {kind} `{value}` (also on {seen[key]})", hint)
                else:
                    seen[key] = host

        dup("hostname", ("inventory_hostname",), [(n.name, n.name) for n in nodes],
            "host names must be unique ignoring case (they become DNS and Kubernetes node names)")
        macs = [(n.name, n.boot_mac) for n in nodes]
        dup("boot MAC", ("boot_mac",), macs, "each node's PXE NIC has its own MAC; copy it from the hardware")
        nic_macs: list[tuple[str, str]] = []
        for n in nodes:
            own = {n.boot_mac}
            for itf in n.interfaces:
                if itf.mac not in own:
                    nic_macs.append((n.name, itf.mac))
                    own.add(itf.mac)
        dup("interface MAC", ("interfaces",), [(h, m) for h, m in nic_macs], "each NIC has its own MAC")
        dup("address", ("ansible_host",), [(n.name, n.address) for n in nodes], "each node needs its own address")
        ips: list[tuple[str, str]] = []
        for n in nodes:
            for itf in n.interfaces:
                ips += [(n.name, a.split("/")[0]) for a in itf.addresses]
        dup("interface IP", ("interfaces",), ips, "assign each IP to one node only")
        dup("OVN encap IP", ("ovn", "encap_ip"), [(n.name, n.ovn.encap_ip if n.ovn else "") for n in nodes],
            "each chassis needs its own tunnel endpoint")
        dup("OVN system-id", ("ovn", "system_id"), [(n.name, n.ovn.system_id if n.ovn else "") for n in nodes],
            "two chassis with one system-id break east-west traffic; generate a uuid per node")
        dup("BMC address", ("bmc", "address"), [(n.name, n.bmc.address) for n in nodes],
            "each node has its own BMC")

    def _check_secrets(self, nodes: list[Node], secrets: dict[str, Any]) -> None:
        creds = secrets.get("vault_bmc_credentials")
        for n in nodes:
            entry = creds.get(n.bmc.credentials) if isinstance(creds, dict) else None
            if not isinstance(entry, dict) or not entry.get("username") or not entry.get("password"):
                self.host_problem(n.name, ("bmc", "credentials"),
                                  f"vault secret missing: vault_bmc_credentials[`{n.bmc.credentials}`] "
                                  "with username and password",
                                  "add it with `ansible-vault edit group_vars/all/vault.yml`")
            if n.gpu and n.gpu.mode == "guest" and not secrets.get("vault_grid_client_token"):
                self.host_problem(n.name, ("gpu", "mode"),
                                  "vault secret missing: vault_grid_client_token (GRID guests need a license token)",
                                  "add the NLS client configuration token to the vault")

    def _policy(self, settings: dict[str, Any], nodes: list[Node], region_yml: Path) -> Policy:
        raw = settings["policy"]
        floors = {str(k): int(v) for k, v in (raw.get("gpu_capacity_floor") or {}).items()}
        for model, floor in sorted(floors.items()):
            have = sum(1 for n in nodes if n.gpu_model == model)
            if floor > have:
                self.problem(f"policy.gpu_capacity_floor.{model}",
                             f"floor {floor} but the region has only {have} {model} node(s): nothing could ever run",
                             f"set it to at most {max(have - 1, 0)}", file=region_yml,
                             path=("policy", "gpu_capacity_floor", model))
            elif have and floor == have:
                self.problem(f"policy.gpu_capacity_floor.{model}",
                             f"floor {floor} equals the {have} {model} node(s): no {model} node could ever be "
                             "taken down", f"set it to at most {have - 1}", file=region_yml,
                             path=("policy", "gpu_capacity_floor", model))
        if raw["max_unavailable"] > max(len(nodes), 1):
            self.problem("policy.max_unavailable",
                         f"{raw['max_unavailable']} is more than the region's {len(nodes)} nodes",
                         f"set it between 1 and {len(nodes)}", file=region_yml, path=("policy", "max_unavailable"))
        return Policy(
            max_unavailable=int(raw["max_unavailable"]),
            max_failure_domains_down=int(raw["max_failure_domains_down"]),
            max_failures=int(raw["max_failures"]),
            provisioning_concurrency=int(raw["provisioning_concurrency"]),
            gpu_capacity_floor=tuple(sorted(floors.items())),
            timeouts=Timeouts(**(raw.get("timeouts") or {})),
        )


_ANSIBLE_READY: list[bool] = []


def _init_ansible_once(init: Any) -> None:
    # ansible-core's collection finder may only be configured once per process.
    if not _ANSIBLE_READY:
        init()
        _ANSIBLE_READY.append(True)


def _explain_schema_error(err: jsonschema.ValidationError, loc: tuple[str, ...]) -> tuple[str, str, str]:
    """Turn a jsonschema error into (field, what is wrong, how to fix)."""
    where = ".".join(loc)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        name = ".".join((*loc, extra[0])) if extra else where
        allowed = ", ".join(sorted(err.schema.get("properties", {})))
        return name, f"unknown field `{extra[0] if extra else '?'}`", f"allowed fields here: {allowed}"
    if err.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", err.message)
        name = ".".join((*loc, missing[0])) if missing else where
        return name, f"missing required field `{missing[0] if missing else '?'}`", "add it (see docs/inventory.md)"
    if err.validator == "type":
        want = err.validator_value
        return where, f"wrong type: got {type(err.instance).__name__} `{err.instance!r}`, expected {want}", \
            f"write a value of type {want}"
    if err.validator == "enum":
        return where, f"`{err.instance}` is not one of {err.validator_value}", "use one of the listed values"
    if err.validator in ("minimum", "maximum", "const", "minLength", "minProperties"):
        return where, f"value out of range: {err.message}", "see docs/inventory.md for the allowed range"
    if err.validator == "pattern":
        return where, f"`{err.instance}` does not have the expected format ({err.validator_value})", \
            "see docs/inventory.md for the format"
    if err.validator == "propertyNames":
        return where, f"invalid key: {err.message}", "see docs/inventory.md for allowed keys"
    return where or "(root)", err.message, "see docs/inventory.md"


def _same_disk(osd_path: str, hints: dict[str, Any]) -> bool:
    """True when an OSD device name provably designates the disk the root hints select."""
    name = hints.get("deviceName")
    if isinstance(name, str) and os.path.normpath(name) == os.path.normpath(osd_path):
        return True
    base = osd_path.rsplit("/", 1)[-1].lower()
    for key in ("wwn", "wwnWithExtension"):
        value = hints.get(key)
        if isinstance(value, str) and value and base in (f"wwn-{value.lower()}", f"wwn-0x{value.lower()}"):
            return True
    serial = hints.get("serialNumber")
    return bool(isinstance(serial, str) and serial and base.endswith(f"_{serial.lower()}"))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _is_cidr(text: str) -> bool:
    if "/" not in text:
        return False
    try:
        ipaddress.ip_interface(text)
        return True
    except ValueError:
        return False
