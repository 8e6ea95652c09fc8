#!/usr/bin/python3
"""Check ec2sim's instance health (scheduled events, status checks) with boto3.

Usage: boto3_health.py ENDPOINT_URL

Events and failed checks are set through ec2sim's admin API (POST /ec2sim/events and
/ec2sim/status); boto3's describe_instance_status must then parse what the EC2 API Reference
documents: instanceStatusSet items with eventsSet, instanceStatus/systemStatus summaries and their
reachability details with impairedSince, the event.* and *-status.* filters, MaxResults/NextToken
pagination and IncludeAllInstances. Prints one line per mismatch ("FAIL what: expected ..., got
...") and exits 1 if there was any.
"""

import datetime
import json
import sys
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

CLUSTER_KEY = "slurm-ec2:cluster"
failures = []


def check(cond, what, expected, got):
    if not cond:
        failures.append(f"FAIL {what}: expected {expected!r}, got {got!r}")


def admin(endpoint, path, body):
    req = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def statuses(ec2, **kwargs):
    out = []
    for page in ec2.get_paginator("describe_instance_status").paginate(**kwargs):
        out.extend(page["InstanceStatuses"])
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    endpoint = sys.argv[1]
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=60)
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1", config=cfg)
    r = ec2.create_fleet(
        Type="instant",
        LaunchTemplateConfigs=[{
            "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
            "Overrides": [{"InstanceType": "c5.xlarge", "SubnetId": "subnet-11111111"}],
        }],
        TargetCapacitySpecification={"TotalTargetCapacity": 12, "DefaultTargetCapacityType": "on-demand"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": CLUSTER_KEY, "Value": "fidelity-health"}]}],
    )
    ids = [i for g in r["Instances"] for i in g["InstanceIds"]]
    check(len(ids) == 12, "instances launched", 12, len(ids))
    retiring, impaired, healthy = ids[0], ids[1], ids[2]

    got = admin(endpoint, "/ec2sim/events", {"InstanceIds": [retiring], "Code": "instance-retirement", "NotBefore": "+72h"})
    event_ids = got.get("InstanceEventIds", [])
    check(len(event_ids) == 1 and event_ids[0].startswith("instance-event-"), "admin events answer", "one instance-event-... id", got)
    admin(endpoint, "/ec2sim/status", {"InstanceIds": [impaired], "InstanceStatus": "impaired", "SystemStatus": "ok"})

    # Every running instance, 5 a page.
    pages = list(ec2.get_paginator("describe_instance_status").paginate(IncludeAllInstances=True, PaginationConfig={"PageSize": 5}))
    check(len(pages) == 3, "pages of 5 for 12 instances", 3, len(pages))
    by_id = {s["InstanceId"]: s for p in pages for s in p["InstanceStatuses"]}
    check(set(by_id) == set(ids), "instances listed", sorted(ids), sorted(by_id))

    h = by_id.get(healthy, {})
    check(h.get("InstanceStatus", {}).get("Status") == "ok", "healthy instance status", "ok", h.get("InstanceStatus"))
    details = h.get("SystemStatus", {}).get("Details", [])
    check(details == [{"Name": "reachability", "Status": "passed"}], "healthy system details", [{"Name": "reachability", "Status": "passed"}], details)
    check("Events" not in h, "healthy instance events", "absent", h.get("Events"))
    check(h.get("InstanceState") == {"Code": 16, "Name": "running"}, "instance state", {"Code": 16, "Name": "running"}, h.get("InstanceState"))

    ev = by_id.get(retiring, {}).get("Events", [])
    check(len(ev) == 1, "events of the retiring instance", 1, len(ev))
    if ev:
        e = ev[0]
        check(e.get("Code") == "instance-retirement", "event code", "instance-retirement", e.get("Code"))
        check(e.get("InstanceEventId") == (event_ids or [None])[0], "event id", event_ids, e.get("InstanceEventId"))
        nb = e.get("NotBefore")
        ok = isinstance(nb, datetime.datetime) and nb.tzinfo is not None
        check(ok, "NotBefore parsed as an aware datetime", "datetime with tz", nb)
        if ok:
            delta = nb - datetime.datetime.now(datetime.timezone.utc)
            check(datetime.timedelta(hours=71) < delta < datetime.timedelta(hours=73), "NotBefore about +72h", "71h..73h", delta)
        check(bool(e.get("Description")), "event description", "non-empty", e.get("Description"))

    i = by_id.get(impaired, {})
    check(i.get("InstanceStatus", {}).get("Status") == "impaired", "impaired instance status", "impaired", i.get("InstanceStatus"))
    d = (i.get("InstanceStatus", {}).get("Details") or [{}])[0]
    check(d.get("Status") == "failed", "impaired detail status", "failed", d)
    check(isinstance(d.get("ImpairedSince"), datetime.datetime), "ImpairedSince parsed as a datetime", "datetime", d.get("ImpairedSince"))
    check(i.get("SystemStatus", {}).get("Status") == "ok", "impaired instance's system status", "ok", i.get("SystemStatus"))

    for what, filters, want in [
        ("event.code", [{"Name": "event.code", "Values": ["instance-retirement"]}], [retiring]),
        ("instance-status.status", [{"Name": "instance-status.status", "Values": ["impaired"]}], [impaired]),
        ("instance-status.reachability", [{"Name": "instance-status.reachability", "Values": ["failed"]}], [impaired]),
        ("system-status.status", [{"Name": "system-status.status", "Values": ["impaired"]}], []),
        ("instance-state-name", [{"Name": "instance-state-name", "Values": ["running"]}, {"Name": "event.code", "Values": ["*"]}], [retiring]),
    ]:
        got = sorted(s["InstanceId"] for s in statuses(ec2, IncludeAllInstances=True, Filters=filters))
        check(got == sorted(want), f"filter {what}", sorted(want), got)

    for what, kwargs, code in [
        ("MaxResults 4", {"MaxResults": 4}, "InvalidParameterValue"),
        ("MaxResults with InstanceIds", {"MaxResults": 5, "InstanceIds": [healthy]}, "InvalidParameterCombination"),
        ("unknown filter", {"Filters": [{"Name": "nope", "Values": ["x"]}]}, "InvalidParameterValue"),
    ]:
        try:
            ec2.describe_instance_status(**kwargs)
            check(False, what, code, "success")
        except ClientError as e:
            check(e.response["Error"]["Code"] == code, what, code, e.response["Error"]["Code"])

    # Terminated: only with IncludeAllInstances, not-applicable checks.
    ec2.terminate_instances(InstanceIds=[healthy])
    running = {s["InstanceId"] for s in statuses(ec2)}
    check(healthy not in running and len(running) == 11, "running-only listing after a termination", 11, len(running))
    t = statuses(ec2, InstanceIds=[healthy], IncludeAllInstances=True)
    check(len(t) == 1 and t[0]["InstanceStatus"]["Status"] == "not-applicable" and t[0]["InstanceState"]["Name"] == "terminated",
          "terminated instance with IncludeAllInstances", "not-applicable/terminated", t)

    ec2.terminate_instances(InstanceIds=ids)
    for f in failures:
        print(f)
    if not failures:
        print("ok   health")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
