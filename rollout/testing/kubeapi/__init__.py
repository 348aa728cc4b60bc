"""A Kubernetes API emulator on loopback: a STAND-IN for kube-apiserver, for tests and the lab.

No kube-apiserver (nor envtest/kwok/k3s) can be installed on the project's machines, so the CAPI
backend and observers are tested with the real `kubernetes` client against this emulator. It is a
thin layer over `kmock.KubernetesEmulator` (kmock gives the aiohttp server, request parsing and
recording, discovery documents and error rendering); this package owns the object store and the
semantics rollout relies on.

What it does (each one is covered by tests/integration/test_kubeapi_emulator.py):
- Resources: CRDs registered from the upstream CRD files themselves (group, every served version,
  plural, kind, listKind, scope, status subresource) from `crd_dir` / $ROLLOUT_CRD_DIR, plus core
  namespaces, nodes (+status), pods (+status, +eviction), secrets, configmaps, events and
  coordination.k8s.io/v1 leases. Discovery prefers the CRD's storage version.
- Metadata: uid, resourceVersion (one global counter), creationTimestamp, generation (bumped when
  anything but metadata/status changes), generateName, managedFields (simplified, see below).
- Create 201 (409 AlreadyExists), get/replace/patch/delete 404 when missing, 404 when the namespace
  of a namespaced object does not exist (NamespaceLifecycle), 409 Conflict on a stale
  metadata.resourceVersion (PUT, PATCH, apply) or failed delete preconditions; 422 for a custom
  resource PUT without resourceVersion.
- PUT replace, JSON merge patch, strategic merge patch (treated as a JSON merge patch: lists are
  replaced, no patchMergeKey), RFC 6902 JSON patch; `/status` subresource (main endpoint ignores
  status changes, `/status` ignores everything else) for resources that declare it.
- Server-side apply (application/apply-patch+yaml): create-if-missing, update, fieldManager
  required, per-manager field ownership with 409 conflicts on fields owned by another manager
  whose value would change, `force=true` takes ownership, fields a manager stops applying are
  removed unless another manager owns them. Ownership is tracked on leaf paths; lists are atomic.
- Custom resources are pruned (unknown fields dropped, Warning header) and defaulted from the
  schema, then validated: 422 Invalid with causes for schema violations, 400 BadRequest for unknown
  fields with fieldValidation=Strict; metadata.name must be a DNS-1123 subdomain (422).
- Secrets: stringData is folded into base64 data, as the API server does.
- List with kind/apiVersion/resourceVersion; labelSelector (=, ==, !=, in, notin, exists, !key)
  and fieldSelector (metadata.name, metadata.namespace, and any dotted path with =, ==, !=).
- Watch: ADDED/MODIFIED/DELETED with resourceVersion; from a resourceVersion it replays the event
  log (410 Gone when it is older than the retained window); timeoutSeconds honoured.
- Finalizers: delete sets deletionTimestamp; the object goes away (DELETED) when the last finalizer
  is removed.
- Fault injection: `add_fault(...)` answers the next N matching requests with an error status
  before touching state (e.g. 500 on a patch, 429 on an eviction).

What it does NOT do (a real API server would): authentication/authorization, admission webhooks
(e.g. the BMO/CAPI validating and defaulting webhooks), CEL rules (x-kubernetes-validations),
version conversion (an object is returned in the apiVersion it was last written with), SSA merge of
listType=map/set lists and granular ownership inside lists, strategic-merge list semantics,
pagination (limit/continue), garbage collection by ownerReferences, namespace cascade deletion,
watch BOOKMARKs, and re-evaluating selectors on watch events (an object that stops matching is not
sent as DELETED). Pod eviction does not check PodDisruptionBudgets (inject a 429 fault instead).

Threading: the server runs in its own asyncio loop thread (`start_emulator`); state is only mutated
inside that loop under one lock, so every request is atomic, like an etcd transaction.

Modules, each with one job (a module imports only those listed before it):
- `resources`: resource types, core and from CRD files (`crd_dir`, `load_crds`).
- `errors`: the Status errors (404, 409, 422, ...) in kube-apiserver's wording.
- `schema`: admission: name check, Secret stringData, prune/default/validate custom resources (422).
- `selectors`: label and field selector parsing and matching.
- `fields`: field paths and merges (SSA ownership, JSON merge patch), pure functions.
- `store`: objects, uid/resourceVersion/generation, the event log, every write (404/409, patches, SSA).
- `server`: `KubeApiEmulator`: registry and discovery, routing, subresources, watch, fault injection.
- `running`: `start_emulator`/`RunningEmulator`: the server in a background thread for synchronous callers.
- `__main__`: `python -m rollout.testing.kubeapi` for the lab.
This package re-exports the names tests and the simulator import; the rest live in their module.
"""

from rollout.testing.kubeapi.resources import crd_dir, load_crds
from rollout.testing.kubeapi.running import RunningEmulator, start_emulator
from rollout.testing.kubeapi.schema import schema_causes
from rollout.testing.kubeapi.selectors import Requirement, match_labels, parse_label_selector

__all__ = [
    "Requirement",
    "RunningEmulator",
    "crd_dir",
    "load_crds",
    "match_labels",
    "parse_label_selector",
    "schema_causes",
    "start_emulator",
]
