"""Ceph JSON parsers and CephAdmin decisions, fed with the shapes Ceph 16 (pacific) prints.

Shapes: reference roles-gpu-ceph-ovn-kubeadm.md section 3.3 and test-components.md section 6 (a
1-mon/3-OSD pacific cluster in podman: `ok-to-stop 0` rc 0, `ok-to-stop 0 1` rc 16 + JSON,
`set-group noout osd.0` shows `exists,noout,up` in `osd dump`).
"""

from __future__ import annotations

import json

import pytest

from rollout.backends.ceph import (
    CephAdmin,
    CephParseError,
    CommandResult,
    is_active_clean,
    observation_from,
    parse_health,
    parse_ok_to_stop,
    parse_osd_dump,
    parse_osd_stat,
    parse_osd_tree,
    parse_pg_summary,
)
from rollout.errors import PermanentError, SafetyRefused, TransientError

PG_STAT_CLEAN = {
    "pg_ready": True,
    "pg_summary": {
        "num_pg_by_state": [
            {"name": "active+clean", "num": 16},
            {"name": "active+clean+scrubbing+deep", "num": 1},
        ],
        "num_pgs": 17,
        "num_bytes": 590368,
        "total_bytes": 6442450944,
        "total_avail_bytes": 6380945408,
        "total_used_bytes": 61505536,
        "total_used_raw_bytes": 61505536,
        "raw_bytes_used": 61505536,
        "raw_bytes_avail": 6380945408,
        "raw_bytes": 6442450944,
    },
}
PG_STAT_DEGRADED = {
    "pg_ready": True,
    "pg_summary": {
        "num_pg_by_state": [
            {"name": "active+undersized+degraded", "num": 5},
            {"name": "active+clean", "num": 11},
            {"name": "active+clean+remapped", "num": 1},
        ],
        "num_pgs": 17,
    },
}
STATUS_WARN_BUT_CLEAN = {
    "fsid": "2f3c8a52-6c1e-4f0b-9a4e-3c52a1f0b001",
    "health": {
        "status": "HEALTH_WARN",
        "checks": {
            "OSD_FLAGS": {
                "severity": "HEALTH_WARN",
                "summary": {
                    "message": "1 OSDs or CRUSH {nodes, device-classes} have {NOUP,NODOWN,NOIN,NOOUT} flags set",
                    "count": 1,
                },
                "muted": False,
            },
            "MON_CLOCK_SKEW": {
                "severity": "HEALTH_WARN",
                "summary": {"message": "clock skew", "count": 1},
                "muted": True,
            },
        },
        "mutes": [{"code": "MON_CLOCK_SKEW", "sticky": False, "summary": "clock skew", "count": 1}],
    },
    "osdmap": {
        "epoch": 31,
        "num_osds": 3,
        "num_up_osds": 3,
        "osd_up_since": 1764439000,
        "num_in_osds": 3,
        "osd_in_since": 1764438990,
        "num_remapped_pgs": 0,
    },
    "pgmap": {
        "pgs_by_state": [{"state_name": "active+clean", "count": 17}],
        "num_pools": 2,
        "num_objects": 3,
        "data_bytes": 590368,
        "bytes_used": 61505536,
        "bytes_avail": 6380945408,
        "bytes_total": 6442450944,
        "num_pgs": 17,
    },
}
PGS_BRIEF = {
    "pg_ready": True,
    "pg_stats": [
        {
            "pgid": "2.f",
            "state": "active+clean",
            "up": [2, 0, 1],
            "up_primary": 2,
            "acting": [2, 0, 1],
            "acting_primary": 2,
        },
        {
            "pgid": "2.e",
            "state": "peering",
            "up": [0, 1, 2],
            "up_primary": 0,
            "acting": [0, 1, 2],
            "acting_primary": 0,
        },
        {
            "pgid": "1.0",
            "state": "active+clean",
            "up": [1],
            "up_primary": 1,
            "acting": [1],
            "acting_primary": 1,
        },
    ],
}
OK_TO_STOP_YES = {
    "ok_to_stop": True,
    "osds": [0],
    "num_ok_pgs": 16,
    "num_not_ok_pgs": 0,
    "ok_become_degraded": ["2.0", "2.1", "2.2"],
}
OK_TO_STOP_NO = {
    "ok_to_stop": False,
    "osds": [0, 1],
    "num_ok_pgs": 4,
    "num_not_ok_pgs": 12,
    "bad_become_inactive": ["2.0", "2.3", "2.4"],
    "ok_become_degraded": ["2.1"],
}
OSD_TREE = {
    "nodes": [
        {"id": -1, "name": "default", "type": "root", "type_id": 11, "children": [-5, -2]},
        {"id": -2, "name": "rack_r1", "type": "rack", "type_id": 3, "pool_weights": {}, "children": [-4, -3]},
        {
            "id": -3,
            "name": "lab-r1-n01",
            "type": "host",
            "type_id": 1,
            "pool_weights": {},
            "children": [1, 0],
        },
        {
            "id": 0,
            "device_class": "hdd",
            "name": "osd.0",
            "type": "osd",
            "type_id": 0,
            "crush_weight": 0.0019,
            "depth": 3,
            "pool_weights": {},
            "exists": 1,
            "status": "up",
            "reweight": 1,
            "primary_affinity": 1,
        },
        {
            "id": 1,
            "device_class": "hdd",
            "name": "osd.1",
            "type": "osd",
            "type_id": 0,
            "crush_weight": 0.0019,
            "depth": 3,
            "pool_weights": {},
            "exists": 1,
            "status": "down",
            "reweight": 1,
            "primary_affinity": 1,
        },
        {"id": -4, "name": "lab-r1-n02", "type": "host", "type_id": 1, "pool_weights": {}, "children": [2]},
        {
            "id": 2,
            "device_class": "ssd",
            "name": "osd.2",
            "type": "osd",
            "type_id": 0,
            "crush_weight": 0.0019,
            "depth": 3,
            "pool_weights": {},
            "exists": 1,
            "status": "up",
            "reweight": 1,
            "primary_affinity": 1,
        },
        {"id": -5, "name": "rack_r2", "type": "rack", "type_id": 3, "pool_weights": {}, "children": [-6]},
        {"id": -6, "name": "lab-r2-n01", "type": "host", "type_id": 1, "pool_weights": {}, "children": [3]},
        {
            "id": 3,
            "device_class": "hdd",
            "name": "osd.3",
            "type": "osd",
            "type_id": 0,
            "crush_weight": 0.0019,
            "depth": 3,
            "pool_weights": {},
            "exists": 1,
            "status": "up",
            "reweight": 1,
            "primary_affinity": 1,
        },
    ],
    "stray": [
        {
            "id": 4,
            "name": "osd.4",
            "type": "osd",
            "type_id": 0,
            "crush_weight": 0,
            "depth": 0,
            "exists": 1,
            "status": "down",
            "reweight": 0,
            "primary_affinity": 1,
        }
    ],
}


def _osd(i, up=1, state=("exists", "up")):
    return {
        "osd": i,
        "uuid": f"0000000{i}-aaaa-bbbb-cccc-000000000000",
        "up": up,
        "in": 1,
        "weight": 1,
        "primary_affinity": 1,
        "last_clean_begin": 0,
        "last_clean_end": 0,
        "up_from": 8,
        "up_thru": 20,
        "down_at": 0,
        "lost_at": 0,
        "public_addrs": {"addrvec": []},
        "state": list(state),
    }


OSD_DUMP = {
    "epoch": 40,
    "fsid": "2f3c8a52-6c1e-4f0b-9a4e-3c52a1f0b001",
    "flags": "sortbitwise,recovery_deletes,purged_snapdirs,pglog_hardlimit",
    "flags_num": 5799936,
    "flags_set": ["pglog_hardlimit", "purged_snapdirs", "recovery_deletes", "sortbitwise"],
    "crush_node_flags": {"lab-r1-n01": ["noout"]},
    "device_class_flags": {},
    "pools": [],
    "osds": [_osd(0, state=("exists", "noout", "up")), _osd(1, up=0, state=("exists",)), _osd(2)],
}


@pytest.mark.parametrize(
    ("state", "clean"),
    [
        ("active+clean", True),
        ("active+clean+scrubbing+deep", True),
        ("active+clean+snaptrim", True),
        ("active+clean+remapped", False),
        ("active+undersized+degraded", False),
        ("active+clean+inconsistent", False),
        ("clean", False),
        ("peering", False),
        ("stale+active+clean", False),
        ("active+clean+laggy", False),
    ],
)
def test_active_clean_by_state(state, clean):
    assert is_active_clean(state) is clean


def test_pg_stat_clean_and_degraded():
    s = parse_pg_summary(PG_STAT_CLEAN)
    assert (s.total, s.active_clean, s.all_active_clean) == (17, 17, True)
    d = parse_pg_summary(PG_STAT_DEGRADED)
    assert (d.total, d.active_clean, d.all_active_clean) == (17, 11, False)
    assert "5 active+undersized+degraded" in d.describe() and "11/17" in d.describe()


def test_status_shape_decides_on_pgs_not_health():
    s = parse_pg_summary(STATUS_WARN_BUT_CLEAN)
    assert s.all_active_clean  # HEALTH_WARN, yet every PG is active+clean
    h = parse_health(STATUS_WARN_BUT_CLEAN)
    assert h.status == "HEALTH_WARN"
    assert set(h.checks) == {"OSD_FLAGS"}  # muted check left out


def test_pgs_brief_dict_and_list_shapes():
    s = parse_pg_summary(PGS_BRIEF)
    assert (s.total, s.active_clean, s.all_active_clean) == (3, 2, False)
    assert parse_pg_summary(PGS_BRIEF["pg_stats"]) == s


def test_zero_pgs_is_not_clean():
    s = parse_pg_summary({"pg_ready": False, "pg_summary": {"num_pg_by_state": [], "num_pgs": 0}})
    assert not s.all_active_clean


def test_pg_total_mismatch_is_not_clean():
    # num_pgs counts PGs the mgr has not reported a state for yet
    s = parse_pg_summary({"pg_summary": {"num_pg_by_state": [{"name": "active+clean", "num": 10}], "num_pgs": 12}})
    assert not s.all_active_clean


def test_unknown_pg_shape_raises():
    with pytest.raises(CephParseError):
        parse_pg_summary({"foo": 1})


def test_ok_to_stop_yes_no_and_errors():
    yes = parse_ok_to_stop(0, json.dumps(OK_TO_STOP_YES))
    assert yes.ok and yes.osds == (0,) and yes.num_ok_pgs == 16
    no = parse_ok_to_stop(
        16,
        json.dumps(OK_TO_STOP_NO),
        "Error EBUSY: unsafe to stop osd(s) at this time (12 PGs are or would become offline)",
    )
    assert not no.ok and no.num_not_ok_pgs == 12 and len(no.bad_become_inactive) == 3
    assert "NOT ok to stop" in no.describe() and "3 PGs would become inactive" in no.describe()
    # rc 0 with ok_to_stop false: the stricter answer wins
    assert not parse_ok_to_stop(0, json.dumps(OK_TO_STOP_NO)).ok
    # EBUSY with JSON saying true (should not happen): still not ok
    assert not parse_ok_to_stop(16, json.dumps(OK_TO_STOP_YES)).ok
    with pytest.raises(TransientError):
        parse_ok_to_stop(11, "", "Error EAGAIN: 3 pgs have unknown state; cannot draw any conclusions")
    with pytest.raises(PermanentError):
        parse_ok_to_stop(2, "", "Error ENOENT: osd.99 does not exist")
    with pytest.raises(CephParseError):
        parse_ok_to_stop(0, "")
    assert not parse_ok_to_stop(16, "", "Error EBUSY").ok


def test_osd_tree_hosts_racks_and_stray():
    t = parse_osd_tree(OSD_TREE)
    assert t.osds_under("lab-r1-n01") == (0, 1)
    assert t.osds_under("rack_r1") == (0, 1, 2)
    assert t.osds_under("default") == (0, 1, 2, 3)
    assert t.osds_under("no-such-host") == ()
    assert t.host_of(2) == "lab-r1-n02" and t.host_of(4) is None
    assert t.down == (1, 4)
    with pytest.raises(CephParseError):
        parse_osd_tree({"stray": []})


def test_osd_dump_flags_and_noout_groups():
    d = parse_osd_dump(OSD_DUMP)
    assert "noout" not in d.flags and "sortbitwise" in d.flags
    assert d.noout_groups == ("lab-r1-n01", "osd.0")
    assert d.down == (1,)
    legacy = dict(OSD_DUMP)
    del legacy["flags_set"]
    legacy["flags"] = "noout,sortbitwise"
    assert "noout" in parse_osd_dump(legacy).flags


def test_osd_dump_pools_and_headroom():
    # Fields as in pacific's `osd dump -f json` pool entries (the rest of an entry is ignored).
    doc = dict(OSD_DUMP, pools=[{"pool": 1, "pool_name": ".mgr", "size": 3, "min_size": 2, "crush_rule": 1},
                                {"pool": 2, "pool_name": "rbd", "size": 3, "min_size": 3, "crush_rule": 1}])
    d = parse_osd_dump(doc)
    assert [p.name for p in d.pools] == [".mgr", "rbd"]
    assert [p.describe() for p in d.pools_without_headroom] == ["pool rbd (size 3, min_size 3)"]
    assert parse_osd_dump(OSD_DUMP).pools_without_headroom == ()


def test_osd_stat_both_shapes():
    assert parse_osd_stat(STATUS_WARN_BUT_CLEAN["osdmap"]).all_up
    assert parse_osd_stat({"osdmap": {"num_osds": 3, "num_up_osds": 2, "num_in_osds": 3}}).all_up is False
    with pytest.raises(CephParseError):
        parse_osd_stat({"epoch": 1})


def test_observation_from_parsers():
    obs = observation_from(
        parse_pg_summary(PG_STAT_DEGRADED), parse_osd_dump(OSD_DUMP), parse_health(STATUS_WARN_BUT_CLEAN)
    )
    assert (obs.pgs_total, obs.pgs_active_clean, obs.osds_down) == (17, 11, (1,))
    assert obs.noout_groups == ("lab-r1-n01", "osd.0") and not obs.all_active_clean


class ScriptedRunner:
    """Answers `ceph` commands from a script: a list of (args-prefix, CommandResult) consumed in order."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []

    def __call__(self, args, *, timeout):
        self.calls.append(tuple(args))
        for i, (prefix, res) in enumerate(self.script):
            if tuple(args[: len(prefix)]) == prefix:
                del self.script[i]
                return res
        raise AssertionError(f"unexpected ceph command {args}")


def ok(doc):
    return CommandResult(0, json.dumps(doc))


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def test_admin_noout_and_ok_to_stop_commands():
    r = ScriptedRunner(
        [
            (("osd", "tree"), ok(OSD_TREE)),
            (("osd", "ok-to-stop"), CommandResult(16, json.dumps(OK_TO_STOP_NO), "Error EBUSY")),
            (("osd", "set-group"), CommandResult(0, "")),
            (("osd", "unset-group"), CommandResult(0, "")),
        ]
    )
    admin = CephAdmin(r)
    ids = admin.osds_of_host("lab-r1-n01")
    with pytest.raises(SafetyRefused, match="lab-r1-n01"):
        admin.require_ok_to_stop("lab-r1-n01", ids)
    admin.set_noout("lab-r1-n01")
    admin.unset_noout("lab-r1-n01")
    assert r.calls == [
        ("osd", "tree", "-f", "json"),
        ("osd", "ok-to-stop", "0", "1", "-f", "json"),
        ("osd", "set-group", "noout", "lab-r1-n01"),
        ("osd", "unset-group", "noout", "lab-r1-n01"),
    ]


def test_admin_plain_command_failure_is_reported():
    admin = CephAdmin(ScriptedRunner([(("osd", "set-group"), CommandResult(22, "", "Error EINVAL: bad"))]))
    with pytest.raises(PermanentError, match="rc 22"):
        admin.set_noout("x")


def test_unset_noout_on_a_name_ceph_does_not_know_is_a_no_op_but_other_errors_raise():
    # Pacific's answer for a host bucket that does not exist (e.g. the OSDs were never created).
    unknown = CommandResult(22, "", 'Error EINVAL: unable to parse osd id or crush node or device class: "r3-n01". ')
    CephAdmin(ScriptedRunner([(("osd", "unset-group"), unknown)])).unset_noout("r3-n01")
    admin = CephAdmin(ScriptedRunner([(("osd", "unset-group"), CommandResult(1, "", "Error EPERM: no"))]))
    with pytest.raises(PermanentError, match="rc 1"):
        admin.unset_noout("r3-n01")


def test_wait_until_osds_up_and_clean():
    clock = FakeClock()
    up_dump = {**OSD_DUMP, "osds": [_osd(0), _osd(1)]}
    down_dump = {**OSD_DUMP, "osds": [_osd(0), _osd(1, up=0, state=("exists",))]}
    r = ScriptedRunner(
        [
            (("osd", "dump"), ok(down_dump)),
            (("pg", "stat"), ok(PG_STAT_DEGRADED)),
            (("osd", "dump"), ok(up_dump)),
            (("pg", "stat"), ok(PG_STAT_DEGRADED)),
            (("osd", "dump"), ok(up_dump)),
            (("pg", "stat"), ok(PG_STAT_CLEAN)),
        ]
    )
    admin = CephAdmin(r, sleep=clock.sleep, clock=clock)
    pgs = admin.wait_osds_up_and_clean([0, 1], timeout=600, poll_interval=10)
    assert pgs.all_active_clean and clock.t == 20 and not r.script


def test_wait_times_out_with_the_numbers():
    clock = FakeClock()
    script = []
    for _ in range(4):
        script += [(("osd", "dump"), ok(OSD_DUMP)), (("pg", "stat"), ok(PG_STAT_DEGRADED))]
    admin = CephAdmin(ScriptedRunner(script), sleep=clock.sleep, clock=clock)
    with pytest.raises(TransientError) as exc:
        admin.wait_osds_up_and_clean([0, 1], timeout=30, poll_interval=10)
    assert "OSDs not up: [1]" in exc.value.message and "11/17" in exc.value.message


# --------------------------------------------------------------------------------------------------
# Verbatim output of a real Ceph 16.2 (Debian bookworm) cluster: localhost/rollout-ceph, 1 mon, 1 mgr,
# 3 file-backed OSDs on host bucket rb-ceph1, pool `rep` size 3 (16 PGs) + `.mgr` (1 PG, size 1).
# Captured 2026-11-29 with `podman exec ... ceph <cmd> -f json`; osd dump trimmed to the keys we read.
# --------------------------------------------------------------------------------------------------
REAL_PG_STAT_CLEAN = (
    '{"pg_ready":true,"pg_summary":{"num_pg_by_state":[{"name":"active+clean","num":17}],"num_pgs":17,"nu'
    'm_bytes":0,"total_bytes":3221225472,"total_avail_bytes":2307907584,"total_used_bytes":913317888,"tot'
    'al_used_raw_bytes":913317888}\n}'
)
# right after `ceph osd down 0`: peering, and 'wait' (pacific's laggy/wait states)
REAL_PG_STAT_PEERING = (
    '{"pg_ready":true,"pg_summary":{"num_pg_by_state":[{"name":"peering","num":8},{"name":"active+undersi'
    'zed+wait","num":8},{"name":"active+clean","num":1}],"num_pgs":17,"num_bytes":0,"total_bytes":3221225'
    '472,"total_avail_bytes":2307710976,"total_used_bytes":913514496,"total_used_raw_bytes":913514496}\n}'
)
# osd.0 killed (noout set on rb-ceph1): undersized, HEALTH_WARN with OSD_DOWN + OSD_FLAGS
REAL_STATUS_OSD_DOWN = (
    '{"fsid":"03ba3929-bd43-464a-83e4-cd1a5eff208f","health":{"status":"HEALTH_WARN","checks":{"OSD_DOWN"'
    ':{"severity":"HEALTH_WARN","summary":{"message":"1 osds down","count":1},"muted":false},"OSD_FLAGS":'
    '{"severity":"HEALTH_WARN","summary":{"message":"1 OSDs or CRUSH {nodes, device-classes} have {NOUP,N'
    'ODOWN,NOIN,NOOUT} flags set","count":1},"muted":false}},"mutes":[]},"election_epoch":3,"quorum":[0],'
    '"quorum_names":["rb-ceph1"],"quorum_age":170,"monmap":{"epoch":1,"min_mon_release_name":"pacific","n'
    'um_mons":1},"osdmap":{"epoch":37,"num_osds":3,"num_up_osds":2,"osd_up_since":1795977329,"num_in_osds'
    '":3,"osd_in_since":1795977234,"num_remapped_pgs":0},"pgmap":{"pgs_by_state":[{"state_name":"active+u'
    'ndersized","count":16},{"state_name":"active+clean","count":1}],"num_pgs":17,"num_pools":2,"num_obje'
    'cts":0,"data_bytes":0,"bytes_used":913596416,"bytes_avail":2307629056,"bytes_total":3221225472},"fsm'
    'ap":{"epoch":1,"by_rank":[],"up:standby":0},"mgrmap":{"available":true,"num_standbys":0,"modules":["'
    'iostat","nfs","restful"],"services":{}},"servicemap":{"epoch":5,"modified":"2026-11-29T18:35:11.0370'
    '83+0000","services":{}},"progress_events":{}}'
)
REAL_OSD_TREE_OSD_DOWN = (
    '{"nodes":[{"id":-1,"name":"default","type":"root","type_id":11,"children":[-2]},{"id":-2,"name":"rb-'
    'ceph1","type":"host","type_id":1,"pool_weights":{},"children":[2,1,0]},{"id":0,"device_class":"hdd",'
    '"name":"osd.0","type":"osd","type_id":0,"crush_weight":0.0009918212890625,"depth":2,"pool_weights":{'
    '},"exists":1,"status":"down","reweight":1,"primary_affinity":1},{"id":1,"device_class":"hdd","name":'
    '"osd.1","type":"osd","type_id":0,"crush_weight":0.0009918212890625,"depth":2,"pool_weights":{},"exis'
    'ts":1,"status":"up","reweight":1,"primary_affinity":1},{"id":2,"device_class":"hdd","name":"osd.2","'
    'type":"osd","type_id":0,"crush_weight":0.0009918212890625,"depth":2,"pool_weights":{},"exists":1,"st'
    'atus":"up","reweight":1,"primary_affinity":1}],"stray":[]}'
)
# `ceph osd ok-to-stop 0` -> rc 0; `ceph osd ok-to-stop 0 1` -> rc 16 with this on stdout and
# 'Error EBUSY: unsafe to stop osd(s) at this time (17 PGs are or would become offline)' on stderr
REAL_OK_TO_STOP_0 = (
    '{"ok_to_stop":true,"osds":[0],"num_ok_pgs":16,"num_not_ok_pgs":0,"ok_become_degraded":["2.0","2.1","'
    '2.2","2.3","2.4","2.5","2.6","2.7","2.8","2.9","2.a","2.b","2.c","2.d","2.e","2.f"]}'
)
REAL_OK_TO_STOP_0_1 = (
    '{"ok_to_stop":false,"osds":[0,1],"num_ok_pgs":0,"num_not_ok_pgs":17,"bad_become_inactive":["1.0","2.'
    '0","2.1","2.2","2.3","2.4","2.5","2.6","2.7","2.8","2.9","2.a","2.b","2.c","2.d","2.e","2.f"]}'
)
# after `ceph osd set-group noout rb-ceph1` and `ceph osd set-group noout osd.1`
REAL_OSD_DUMP_NOOUT = (
    '{"epoch":27,"fsid":"03ba3929-bd43-464a-83e4-cd1a5eff208f","flags":"sortbitwise,recovery_deletes,purg'
    'ed_snapdirs,pglog_hardlimit","flags_num":5799936,"flags_set":["pglog_hardlimit","purged_snapdirs","r'
    'ecovery_deletes","sortbitwise"],"crush_node_flags":{"rb-ceph1":["noout"]},"device_class_flags":{},"o'
    'sds":[{"osd":0,"uuid":"5c7456a8-8533-4b31-8480-12b035c0804d","up":1,"in":1,"weight":1,"primary_affin'
    'ity":1,"up_from":7,"up_thru":24,"down_at":0,"state":["exists","up"]},{"osd":1,"uuid":"84f52a2e-91d6-'
    '4864-b52c-86572f50edb9","up":1,"in":1,"weight":1,"primary_affinity":1,"up_from":13,"up_thru":24,"dow'
    'n_at":0,"state":["exists","noout","up"]},{"osd":2,"uuid":"fa7067d5-0ed3-455a-b783-2752fcd4932d","up"'
    ':1,"in":1,"weight":1,"primary_affinity":1,"up_from":19,"up_thru":24,"down_at":0,"state":["exists","u'
    'p"]}]}'
)
REAL_HEALTH_NOOUT = (
    '{"status":"HEALTH_WARN","checks":{"OSD_FLAGS":{"severity":"HEALTH_WARN","summary":{"message":"2 OSDs'
    ' or CRUSH {nodes, device-classes} have {NOUP,NODOWN,NOIN,NOOUT} flags set","count":2},"detail":[{"me'
    'ssage":"osd.1 has flags noout"},{"message":"host rb-ceph1 has flags noout"}],"muted":false}},"mutes"'
    ":[]}"
)


def test_real_clean_cluster():
    s = parse_pg_summary(json.loads(REAL_PG_STAT_CLEAN))
    assert (s.total, s.active_clean, s.all_active_clean) == (17, 17, True)


def test_real_peering_and_wait_are_not_clean():
    s = parse_pg_summary(json.loads(REAL_PG_STAT_PEERING))
    assert (s.total, s.active_clean, s.all_active_clean) == (17, 1, False)
    assert dict(s.not_clean) == {"peering": 8, "active+undersized+wait": 8}


def test_real_osd_down_status():
    doc = json.loads(REAL_STATUS_OSD_DOWN)
    s = parse_pg_summary(doc)
    assert (s.active_clean, s.total) == (1, 17)
    h = parse_health(doc)
    assert h.status == "HEALTH_WARN" and set(h.checks) == {"OSD_DOWN", "OSD_FLAGS"}
    assert parse_osd_stat(doc["osdmap"]).num_up_osds == 2
    tree = parse_osd_tree(json.loads(REAL_OSD_TREE_OSD_DOWN))
    assert tree.osds_under("rb-ceph1") == (0, 1, 2) and tree.down == (0,)


def test_real_ok_to_stop():
    yes = parse_ok_to_stop(0, REAL_OK_TO_STOP_0)
    assert yes.ok and yes.osds == (0,) and yes.num_ok_pgs == 16 and len(yes.ok_become_degraded) == 16
    no = parse_ok_to_stop(16, REAL_OK_TO_STOP_0_1, "Error EBUSY: unsafe to stop osd(s) at this time")
    assert not no.ok and no.num_not_ok_pgs == 17 and "1.0" in no.bad_become_inactive


def test_real_noout_groups():
    d = parse_osd_dump(json.loads(REAL_OSD_DUMP_NOOUT))
    assert d.noout_groups == ("osd.1", "rb-ceph1") and "noout" not in d.flags
    assert set(parse_health(json.loads(REAL_HEALTH_NOOUT)).checks) == {"OSD_FLAGS"}
