"""Test doubles shipped with rollout so the lab and the test suites can start them.

Nothing in here is used on a real region: `kubeapi` is a stand-in for kube-apiserver (none is
installable on the project's machines) and `capi_sim` plays the Metal3/Cluster API controllers
against it. Production code never imports this package.
"""
