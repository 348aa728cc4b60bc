"""rollout.backends.kube against the API emulator, with the official client."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import pytest
from kubernetes import client as kc

from rollout.backends.kube import ApplyConflict, KubeBackend, LeaseHeld, LeaseLock, Retry, WaitTimeout
from rollout.errors import PermanentError, SafetyRefused, TransientError
from rollout.model.region import Timeouts
from rollout.testing.kubeapi import RunningEmulator

pytestmark = pytest.mark.integration

BMH_API = "metal3.io/v1alpha1"


@pytest.fixture()
def backend(api: kc.ApiClient) -> KubeBackend:
    return KubeBackend(api, retry=Retry(attempts=3, base_delay=0.0), sleep=lambda _s: None)


@pytest.fixture()
def ns(backend: KubeBackend) -> str:
    name = f"rk-{uuid.uuid4().hex[:8]}"
    backend.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def bmh(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": BMH_API,
        "kind": "BareMetalHost",
        "metadata": {"name": name, "namespace": ns, "labels": {"rollout.io/rack": "r1"}},
        "spec": {
            "online": True,
            "automatedCleaningMode": "disabled",
            "bmc": {"address": "redfish://127.0.0.1/redfish/v1/Systems/1", "credentialsName": f"{name}-bmc"},
            **spec,
        },
    }


def test_apply_creates_then_updates_with_field_manager_rollout(backend: KubeBackend, ns: str) -> None:
    created = backend.apply(bmh("a1", ns))
    assert created["metadata"]["uid"]
    assert [m["manager"] for m in created["metadata"]["managedFields"]] == ["rollout"]
    same = backend.apply(bmh("a1", ns))
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]  # idempotent
    changed = backend.apply(bmh("a1", ns, rootDeviceHints={"serialNumber": "S1"}))
    assert changed["spec"]["rootDeviceHints"] == {"serialNumber": "S1"}
    assert int(changed["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    # resourceVersion in a rendered manifest is ignored rather than turned into a precondition
    stale = bmh("a1", ns)
    stale["metadata"]["resourceVersion"] = "1"
    assert backend.apply(stale)["metadata"]["name"] == "a1"


def test_apply_rejects_unknown_and_invalid_fields(backend: KubeBackend, ns: str) -> None:
    with pytest.raises(PermanentError, match="400") as err:
        backend.apply(bmh("a2", ns, notAField=True))  # fieldValidation=Strict: no silent pruning
    assert "notAField" in err.value.message
    with pytest.raises(PermanentError, match="422") as err:
        backend.apply(bmh("a3", ns, automatedCleaningMode="sometimes"))
    assert "automatedCleaningMode" in err.value.message
    assert backend.get(BMH_API, "BareMetalHost", "a2", ns) is None


def test_apply_conflict_is_reported_not_forced(backend: KubeBackend, api: kc.ApiClient, ns: str) -> None:
    backend.apply(bmh("a4", ns))
    operator = KubeBackend(api, field_manager="night-shift-operator")
    operator.dyn.resources.get(api_version=BMH_API, kind="BareMetalHost").patch(
        name="a4",
        namespace=ns,
        body={"spec": {"online": False}},
        content_type="application/merge-patch+json",
        field_manager="night-shift-operator",
    )
    with pytest.raises(ApplyConflict) as err:
        backend.apply(bmh("a4", ns))
    assert "night-shift-operator" in err.value.message and ".spec.online" in err.value.message
    assert err.value.causes
    assert backend.apply(bmh("a4", ns), force=True)["spec"]["online"] is True


def test_transient_errors_are_retried(emu: RunningEmulator, backend: KubeBackend, ns: str) -> None:
    emu.add_fault("PATCH", "baremetalhosts", 503, times=2, name="a5")
    assert backend.apply(bmh("a5", ns))["metadata"]["name"] == "a5"
    emu.add_fault("PATCH", "baremetalhosts", 503, times=5, name="a6")
    with pytest.raises(TransientError, match="3 attempts"):
        backend.apply(bmh("a6", ns))


def test_secret_from_memory(backend: KubeBackend, api: kc.ApiClient, ns: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    backend.ensure_secret(
        "n1-bmc", ns, {"username": "admin", "password": "s3cr3t-Value"}, labels={"rollout.io/region": "lab"}
    )
    secret = kc.CoreV1Api(api).read_namespaced_secret("n1-bmc", ns)
    assert secret.data == {"username": "YWRtaW4=", "password": "czNjcjN0LVZhbHVl"}
    assert secret.metadata.labels == {"rollout.io/region": "lab"}
    backend.ensure_secret("n1-bmc", ns, {"username": "admin", "password": "rotated"})
    assert kc.CoreV1Api(api).read_namespaced_secret("n1-bmc", ns).data["password"] == "cm90YXRlZA=="
    assert "s3cr3t-Value" not in caplog.text and "rotated" not in caplog.text
    assert "n1-bmc" in caplog.text


def test_secret_failure_message_has_no_value(emu: RunningEmulator, backend: KubeBackend, ns: str) -> None:
    emu.add_fault("PATCH", "secrets", 403, times=1, name="leaky")
    with pytest.raises(PermanentError) as err:
        backend.ensure_secret("leaky", ns, {"token": "grid-TOKEN-123"})
    assert "grid-TOKEN-123" not in str(err.value) and "token" in err.value.message


def test_annotations_delete_and_get(backend: KubeBackend, ns: str) -> None:
    backend.apply(bmh("a7", ns))
    backend.patch_annotations(BMH_API, "BareMetalHost", "a7", ns, {"keep": "1", "baremetalhost.metal3.io/detached": ""})
    got = backend.patch_annotations(BMH_API, "BareMetalHost", "a7", ns, {"baremetalhost.metal3.io/detached": None})
    assert got["metadata"]["annotations"] == {"keep": "1"}
    obj = backend.get(BMH_API, "BareMetalHost", "a7", ns)
    assert obj is not None
    with pytest.raises(PermanentError, match="uid precondition"):
        backend.delete(BMH_API, "BareMetalHost", "a7", ns, uid="not-its-uid")
    assert backend.delete(BMH_API, "BareMetalHost", "a7", ns, uid=obj["metadata"]["uid"]) is True
    assert backend.delete(BMH_API, "BareMetalHost", "a7", ns) is False
    assert backend.get(BMH_API, "BareMetalHost", "a7", ns) is None


def _pod(name: str, node: str, daemonset: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if daemonset:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ovn", "uid": "u"}]
    return {"metadata": meta, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}}


def test_cordon_drain_uncordon_delete_node(
    emu: RunningEmulator, backend: KubeBackend, api: kc.ApiClient, ns: str
) -> None:
    core = kc.CoreV1Api(api)
    node = f"rk-n-{uuid.uuid4().hex[:5]}"
    core.create_node({"metadata": {"name": node}})
    core.create_namespaced_pod(ns, _pod("web-1", node))
    core.create_namespaced_pod(ns, _pod("web-2", node))
    core.create_namespaced_pod(ns, _pod("ovn-agent", node, daemonset=True))
    core.create_namespaced_pod(ns, _pod("elsewhere", "other-node"))
    emu.add_fault("POST", "pods", 429, times=1, name="web-2", subresource="eviction")  # a PDB says "not yet"
    evicted = backend.drain(node, poll=0.0)
    assert evicted == 2
    assert core.read_node(node).spec.unschedulable is True
    left = sorted(p.metadata.name for p in core.list_namespaced_pod(ns).items)
    assert left == ["elsewhere", "ovn-agent"]
    backend.uncordon(node)
    assert not core.read_node(node).spec.unschedulable
    assert backend.delete_node(node) is True
    assert backend.delete_node(node) is False


def test_drain_times_out_with_the_named_timeout(emu: RunningEmulator, api: kc.ApiClient, ns: str) -> None:
    clock = [0.0]

    def sleep(s: float) -> None:
        clock[0] += max(s, 1.0)

    backend = KubeBackend(api, timeouts=Timeouts(drain=30), sleep=sleep, monotonic=lambda: clock[0])
    core = kc.CoreV1Api(api)
    node = f"rk-n-{uuid.uuid4().hex[:5]}"
    core.create_node({"metadata": {"name": node}})
    core.create_namespaced_pod(ns, _pod("stuck", node))
    emu.add_fault("POST", "pods", 429, times=1000, name="stuck", subresource="eviction")
    with pytest.raises(WaitTimeout, match=r"30 s \(policy.timeouts.drain\)"):
        backend.drain(node)
    emu.call(lambda e: e.faults.clear())


def test_wait_returns_value_or_times_out(backend: KubeBackend) -> None:
    clock = [0.0]
    waiter = KubeBackend(
        backend.api,
        timeouts=Timeouts(reprovision=10),
        sleep=lambda s: clock.__setitem__(0, clock[0] + s),
        monotonic=lambda: clock[0],
    )
    values = iter([None, None, "provisioned"])
    assert waiter.wait("BMH n1 provisioned", "reprovision", lambda: next(values), interval=1) == "provisioned"
    with pytest.raises(WaitTimeout) as err:
        waiter.wait("BMH n2 provisioned", "reprovision", lambda: None, interval=4, last_seen=lambda: "provisioning")
    assert "policy.timeouts.reprovision" in err.value.message and "last seen: provisioning" in err.value.message


class FakeNow:
    def __init__(self) -> None:
        self.t = dt.datetime(2026, 11, 29, 18, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.t


def test_lease_lock_lifecycle(api: kc.ApiClient, ns: str) -> None:
    now = FakeNow()
    a = LeaseLock(api, "rollout-region-lab", ns, "alice@host1:100", duration_seconds=60, now=now)
    b = LeaseLock(api, "rollout-region-lab", ns, "bob@host2:200", duration_seconds=60, now=now)
    a.acquire()
    assert a.holder_now() == "alice@host1:100"
    with pytest.raises(LeaseHeld) as err:
        b.acquire()
    assert isinstance(err.value, SafetyRefused)
    assert "alice@host1:100" in err.value.message and "expires in 60 s" in err.value.message
    now.t += dt.timedelta(seconds=45)
    a.acquire()  # re-acquire by the holder renews
    now.t += dt.timedelta(seconds=45)
    with pytest.raises(LeaseHeld):
        b.acquire()  # renewed 45 s ago: still live
    with pytest.raises(LeaseHeld):
        b.renew()  # only the holder may renew
    a.release()
    assert a.holder_now() is None
    b.acquire()
    assert b.holder_now() == "bob@host2:200"
    a.release()  # not the holder: no-op
    assert b.holder_now() == "bob@host2:200"
    lease = kc.CoordinationV1Api(api).read_namespaced_lease("rollout-region-lab", ns)
    assert lease.spec.lease_transitions == 1


def test_expired_lease_is_taken_over_by_one_contender_only(api: kc.ApiClient, ns: str) -> None:
    now = FakeNow()
    crashed = LeaseLock(api, "rollout-region-x", ns, "crashed-run", duration_seconds=30, now=now)
    crashed.acquire()
    now.t += dt.timedelta(seconds=31)
    one = LeaseLock(api, "rollout-region-x", ns, "contender-1", now=now)
    two = LeaseLock(api, "rollout-region-x", ns, "contender-2", now=now)
    stale_view = two._read()  # contender 2 read the expired Lease before contender 1 took it
    one.acquire()
    with pytest.raises(LeaseHeld) as err:
        two._replace(stale_view, two._spec(1))  # its resourceVersion-guarded update must lose
    assert "contender-1" in err.value.message
    assert one.holder_now() == "contender-1"
    with LeaseLock(api, "rollout-region-y", ns, "ctx", now=now) as held:
        assert held.holder_now() == "ctx"
    assert LeaseLock(api, "rollout-region-y", ns, "other", now=now).holder_now() is None
