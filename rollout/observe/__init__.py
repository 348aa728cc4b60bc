"""Read-only collectors of observed state (kube, CAPI/Metal3, Ceph, OVN, BMC, recorded files).

Collectors never change anything; parsers are pure functions over recorded JSON so they are tested
without the systems they read.
"""
