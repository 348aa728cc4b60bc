"""Side effects, one module per outside system (ansible, redfish, ceph, ovn, kube, capi)."""
