"""Label and annotation keys rollout puts on Cluster API / Metal3 objects and Kubernetes Nodes.

Invariants and decisions:
- Node labels are the ones the Ansible method's kubelet role registers (playbooks/group_vars/all/
  node_params.yml `kubelet_node_labels`): `topology.rollout.io/rack`, `rollout.io/node-class`,
  `rollout.io/gpu-model`, `rollout.io/gpu-count`. The CAPI method sets the same keys through kubelet
  `--node-labels` (so a node is labelled identically whichever method configured it) and on the
  BareMetalHost; the Metal3Cluster lists both prefixes in `metal3.io/metal3-label-sync-prefixes`, so
  CAPM3 keeps BMH and Node in step afterwards.
- Labels used only to select hosts (region) live under `capi.rollout.io/`, which is NOT synced: Nodes
  carry no label the Ansible method would not give them.
- The rack is also CAPM3's failure-domain label (`infrastructure.cluster.x-k8s.io/failure-domain`) on
  the BMH. Node class values are inventory group names (`hc_t4`): valid label values as they are.
"""

from __future__ import annotations

LABEL_PREFIX = "rollout.io"
SYNC_PREFIXES = ("rollout.io", "topology.rollout.io")

REGION = "capi.rollout.io/region"  # host selection only; not synced to Nodes
RACK = "topology.rollout.io/rack"
NODE_CLASS = "rollout.io/node-class"
GPU_MODEL = "rollout.io/gpu-model"
GPU_COUNT = "rollout.io/gpu-count"
MAC_ANNOTATION_PREFIX = "capi.rollout.io/mac-"  # + interface name, e.g. capi.rollout.io/mac-eno1

CLUSTER_NAME = "cluster.x-k8s.io/cluster-name"
FAILURE_DOMAIN = "infrastructure.cluster.x-k8s.io/failure-domain"
METAL3_UUID = "metal3.io/uuid"
LABEL_SYNC_ANNOTATION = "metal3.io/metal3-label-sync-prefixes"
