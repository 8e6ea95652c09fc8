#!/usr/bin/python3
"""Drive ec2sim with boto3 (a client nobody on this project wrote) and check the answers.

Usage: boto3_fidelity.py ENDPOINT_URL [throttle]

With "throttle", the server must run with EC2's documented token buckets (ec2sim -throttle aws)
and only the throttling scenario runs.

Credentials and region come from the environment (the Go test sets them). Every scenario runs
even if an earlier one failed, so one run reports every mismatch; the script prints one line per
mismatch ("FAIL scenario: what: expected ..., got ...") and exits 1 if there was any.
"""

import ipaddress
import math
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

TEMPLATE = "template-name"
SUBNET_AZ = {"subnet-11111111": "us-east-1a", "subnet-22222222": "us-east-1b"}
CLUSTER_KEY = "slurm-ec2:cluster"
CLUSTER = "fidelity-boto3"
UNKNOWN_ID = "i-0123456789abcdef0"

failures = []


class Mismatch(Exception):
    pass


def check(cond, what, expected, got):
    if not cond:
        raise Mismatch(f"{what}: expected {expected!r}, got {got!r}")


def soft(scenario, what, cond, expected, got):
    """Record a mismatch without stopping the scenario."""
    if not cond:
        failures.append(f"FAIL {scenario}: {what}: expected {expected!r}, got {got!r}")


def expect_error(call, code, status, **kwargs):
    """Call and require a ClientError with the given code and HTTP status; return it."""
    try:
        out = call(**kwargs)
    except ClientError as e:
        got_code = e.response.get("Error", {}).get("Code")
        got_status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        check(got_code == code, f"error code of {call.__name__}", code, got_code)
        check(got_status == status, f"HTTP status of {code}", status, got_status)
        rid = e.response.get("ResponseMetadata", {}).get("RequestId")
        check(bool(rid), f"RequestId on {code}", "non-empty", rid)
        msg = e.response.get("Error", {}).get("Message")
        check(bool(msg), f"message on {code}", "non-empty", msg)
        return e
    out.pop("ResponseMetadata", None)
    raise Mismatch(f"{call.__name__}: expected error {code}, got success {out!r}")


def fleet_request(ec2, n, template=TEMPLATE, dry_run=False):
    return ec2.create_fleet(
        DryRun=dry_run,
        Type="instant",
        LaunchTemplateConfigs=[{
            "LaunchTemplateSpecification": {"LaunchTemplateName": template, "Version": "$Latest"},
            "Overrides": [
                {"InstanceType": "c5.xlarge", "SubnetId": "subnet-11111111"},
                {"InstanceType": "c5.xlarge", "SubnetId": "subnet-22222222"},
            ],
        }],
        TargetCapacitySpecification={"TotalTargetCapacity": n, "DefaultTargetCapacityType": "on-demand"},
        OnDemandOptions={"AllocationStrategy": "lowest-price"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": CLUSTER_KEY, "Value": CLUSTER}]}],
    )


def launch(ec2, n):
    r = fleet_request(ec2, n)
    check(str(r.get("FleetId", "")).startswith("fleet-"), "CreateFleet FleetId", "fleet-...", r.get("FleetId"))
    check(not r.get("Errors"), "CreateFleet Errors", [], r.get("Errors"))
    ids = []
    for group in r.get("Instances", []):
        check(group.get("InstanceType") == "c5.xlarge", "fleet instance type", "c5.xlarge", group.get("InstanceType"))
        check(group.get("Lifecycle") == "on-demand", "fleet lifecycle", "on-demand", group.get("Lifecycle"))
        subnet = group.get("LaunchTemplateAndOverrides", {}).get("Overrides", {}).get("SubnetId")
        check(subnet in SUBNET_AZ, "fleet override subnet", list(SUBNET_AZ), subnet)
        ids.extend(group.get("InstanceIds", []))
    check(len(ids) == n and len(set(ids)) == n, "distinct instance ids from CreateFleet", n, ids)
    for i in ids:
        check(i.startswith("i-") and len(i) == 19, "instance id shape", "i- + 17 hex", i)
    return ids


def instances(resp):
    return [i for r in resp.get("Reservations", []) for i in r.get("Instances", [])]


def tags(inst):
    return {t["Key"]: t["Value"] for t in inst.get("Tags", [])}


def scenario_fleet_tag_filter(ec2, state):
    name = "fleet+tags+filters"
    ids = launch(ec2, 4)
    state["ids"] = list(ids)
    got = instances(ec2.describe_instances(InstanceIds=ids))
    check(sorted(i["InstanceId"] for i in got) == sorted(ids), "DescribeInstances by id", sorted(ids),
          sorted(i["InstanceId"] for i in got))
    for inst in got:
        iid = inst["InstanceId"]
        soft(name, f"{iid} state", inst["State"]["Name"] in ("pending", "running"), "pending|running", inst["State"])
        soft(name, f"{iid} type", inst.get("InstanceType") == "c5.xlarge", "c5.xlarge", inst.get("InstanceType"))
        subnet = inst.get("SubnetId")
        soft(name, f"{iid} subnet", subnet in SUBNET_AZ, list(SUBNET_AZ), subnet)
        az = inst.get("Placement", {}).get("AvailabilityZone")
        soft(name, f"{iid} AZ matches subnet", az == SUBNET_AZ.get(subnet), SUBNET_AZ.get(subnet), az)
        ip = inst.get("PrivateIpAddress", "")
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            soft(name, f"{iid} PrivateIpAddress", False, "an IPv4 address", ip)
        soft(name, f"{iid} launch tag", tags(inst).get(CLUSTER_KEY) == CLUSTER, CLUSTER, tags(inst))
        soft(name, f"{iid} LaunchTime", inst.get("LaunchTime") is not None, "a timestamp", inst.get("LaunchTime"))
    ips = [i.get("PrivateIpAddress") for i in got]
    soft(name, "private IPs distinct", len(set(ips)) == len(ips), "distinct", ips)

    for n, iid in enumerate(ids):
        ec2.create_tags(Resources=[iid], Tags=[{"Key": "Name", "Value": f"fid-node-{n}"}])
    one = instances(ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["fid-node-2"]}]))
    check([i["InstanceId"] for i in one] == [ids[2]], "filter tag:Name=fid-node-2", [ids[2]],
          [i["InstanceId"] for i in one])
    check(tags(one[0]).get("Name") == "fid-node-2", "Name tag after CreateTags", "fid-node-2", tags(one[0]))
    both = instances(ec2.describe_instances(Filters=[
        {"Name": f"tag:{CLUSTER_KEY}", "Values": [CLUSTER]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]},
    ]))
    check(sorted(i["InstanceId"] for i in both) == sorted(ids), "filter cluster tag AND state", sorted(ids),
          sorted(i["InstanceId"] for i in both))
    wild = instances(ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["fid-node-*"]}]))
    soft(name, "filter with * wildcard", len(wild) == 4, 4, [i["InstanceId"] for i in wild])
    multi = instances(ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["fid-node-0", "fid-node-3"]}]))
    soft(name, "filter with two values (OR)", sorted(i["InstanceId"] for i in multi) == sorted([ids[0], ids[3]]),
         sorted([ids[0], ids[3]]), sorted(i["InstanceId"] for i in multi))
    key = instances(ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": ["Name"]},
                                                    {"Name": f"tag:{CLUSTER_KEY}", "Values": [CLUSTER]}]))
    soft(name, "filter tag-key", len(key) == 4, 4, [i["InstanceId"] for i in key])
    none = instances(ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["no-such-node"]}]))
    soft(name, "filter matching nothing", none == [], [], none)


def scenario_paginate(ec2, state):
    state["ids"] += launch(ec2, 8)
    want = sorted(state["ids"])
    pages = list(ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": f"tag:{CLUSTER_KEY}", "Values": [CLUSTER]}],
        PaginationConfig={"PageSize": 5}))
    seen = []
    for p in pages:
        page = instances(p)
        check(len(page) <= 5, "instances per page with MaxResults=5", "<= 5", len(page))
        seen += [i["InstanceId"] for i in page]
    check(len(pages) >= 3, "pages for 12 instances at MaxResults=5", ">= 3", len(pages))
    check(sorted(seen) == want, "paginated DescribeInstances sees all", want, sorted(seen))
    check(not pages[-1].get("NextToken"), "NextToken on the last page", None, pages[-1].get("NextToken"))


def scenario_dry_run(ec2, state):
    iid = state["ids"][0]
    expect_error(ec2.terminate_instances, "DryRunOperation", 412, InstanceIds=[iid], DryRun=True)
    expect_error(ec2.create_tags, "DryRunOperation", 412, Resources=[iid], Tags=[{"Key": "k", "Value": "v"}],
                 DryRun=True)
    expect_error(ec2.describe_instances, "DryRunOperation", 412, DryRun=True)
    before = len(instances(ec2.describe_instances(Filters=[{"Name": f"tag:{CLUSTER_KEY}", "Values": [CLUSTER]}])))
    expect_error(lambda **kw: fleet_request(ec2, 2, dry_run=True), "DryRunOperation", 412)
    after = len(instances(ec2.describe_instances(Filters=[{"Name": f"tag:{CLUSTER_KEY}", "Values": [CLUSTER]}])))
    check(before == after, "instances after a dry-run CreateFleet", before, after)
    inst = instances(ec2.describe_instances(InstanceIds=[iid]))[0]
    check(inst["State"]["Name"] in ("pending", "running"), "state after dry-run terminate", "pending|running",
          inst["State"]["Name"])
    check("k" not in tags(inst), "tags after dry-run CreateTags", "no k", tags(inst))


def scenario_terminate(ec2, state):
    ids = state["ids"]
    r = ec2.terminate_instances(InstanceIds=ids)
    got = {t["InstanceId"]: t for t in r.get("TerminatingInstances", [])}
    check(sorted(got) == sorted(ids), "TerminatingInstances ids", sorted(ids), sorted(got))
    for iid, t in got.items():
        check(t["CurrentState"]["Name"] in ("shutting-down", "terminated"), f"{iid} CurrentState",
              "shutting-down|terminated", t["CurrentState"])
        check(t["PreviousState"]["Name"] in ("pending", "running"), f"{iid} PreviousState", "pending|running",
              t["PreviousState"])
        code = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48}
        for k in ("CurrentState", "PreviousState"):
            st = t[k]
            check(st.get("Code", -1) & 0xFF == code.get(st["Name"]), f"{iid} {k} code", code.get(st["Name"]),
                  st.get("Code"))
    after = instances(ec2.describe_instances(InstanceIds=ids))
    for inst in after:
        check(inst["State"]["Name"] in ("shutting-down", "terminated"), "state after terminate",
              "shutting-down|terminated", inst["State"])
    live = instances(ec2.describe_instances(Filters=[
        {"Name": f"tag:{CLUSTER_KEY}", "Values": [CLUSTER]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]}]))
    check(live == [], "pending|running instances after terminate", [], [i["InstanceId"] for i in live])
    # Terminating again is allowed and idempotent.
    again = ec2.terminate_instances(InstanceIds=ids[:1])
    check(len(again.get("TerminatingInstances", [])) == 1, "second TerminateInstances", 1, again)


def scenario_errors(ec2, state):
    expect_error(ec2.describe_instances, "InvalidInstanceID.NotFound", 400, InstanceIds=[UNKNOWN_ID])
    expect_error(ec2.describe_instances, "InvalidInstanceID.Malformed", 400, InstanceIds=["bogus"])
    expect_error(ec2.terminate_instances, "InvalidInstanceID.NotFound", 400, InstanceIds=[UNKNOWN_ID])
    expect_error(ec2.create_tags, "InvalidInstanceID.NotFound", 400, Resources=[UNKNOWN_ID],
                 Tags=[{"Key": "k", "Value": "v"}])
    expect_error(ec2.create_tags, "InvalidID", 400, Resources=["bogus"], Tags=[{"Key": "k", "Value": "v"}])
    # DescribeInstances' documented constraints: MaxResults in 5..1000, not with InstanceIds.
    expect_error(ec2.describe_instances, "InvalidParameterValue", 400, MaxResults=3)
    expect_error(ec2.describe_instances, "InvalidParameterCombination", 400, MaxResults=5, InstanceIds=[UNKNOWN_ID])
    expect_error(ec2.describe_instances, "InvalidParameterValue", 400, Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    expect_error(ec2.terminate_instances, "MissingParameter", 400, InstanceIds=[])
    expect_error(ec2.describe_launch_templates, "InvalidLaunchTemplateName.NotFoundException", 400,
                 LaunchTemplateNames=["no-such-template"])
    expect_error(lambda **kw: fleet_request(ec2, 1, template="no-such-template"),
                 "InvalidLaunchTemplateName.NotFoundException", 400)
    lt = ec2.describe_launch_templates(LaunchTemplateNames=[TEMPLATE])["LaunchTemplates"]
    check([t["LaunchTemplateName"] for t in lt] == [TEMPLATE], "DescribeLaunchTemplates", [TEMPLATE],
          [t["LaunchTemplateName"] for t in lt])
    check(str(lt[0].get("LaunchTemplateId", "")).startswith("lt-"), "LaunchTemplateId", "lt-...",
          lt[0].get("LaunchTemplateId"))


def scenario_regions(endpoint, cfg):
    east = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1", config=cfg)
    west = boto3.client("ec2", endpoint_url=endpoint, region_name="us-west-2", config=cfg)
    e = sorted(s["SubnetId"] for s in east.describe_subnets(SubnetIds=list(SUBNET_AZ))["Subnets"])
    check(e == sorted(SUBNET_AZ), "us-east-1 subnets", sorted(SUBNET_AZ), e)
    w = [s["SubnetId"] for s in west.describe_subnets()["Subnets"]]
    check(not set(w) & set(SUBNET_AZ), "us-west-2 must not see us-east-1 subnets", "disjoint", w)


def burst(call, n, **kwargs):
    """Make n calls from 8 threads (fast even on a loaded machine); return (passed, errors, seconds)."""
    def one(_):
        try:
            call(**kwargs)
            return None
        except ClientError as e:
            return e
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(n)))
    errors = [e for e in results if e is not None]
    return n - len(errors), errors, time.monotonic() - start


def check_throttled(what, passed, errors, capacity, refill, elapsed):
    """Tokens are only taken by calls that pass, so the first `capacity` calls always pass, and
    no more than the refill since the start can pass after them."""
    most = capacity + math.ceil(elapsed * refill) + 1
    codes = sorted({e.response.get("Error", {}).get("Code") for e in errors})
    statuses = sorted({e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") for e in errors})
    print(f"     {what}: {passed} passed, {len(errors)} refused {codes} (HTTP {statuses}) in {elapsed:.2f}s")
    check(errors, f"{what}: a burst beyond the bucket", "RequestLimitExceeded", "every call passed")
    check(codes == ["RequestLimitExceeded"], f"{what}: error codes", ["RequestLimitExceeded"], codes)
    check(statuses == [503], f"{what}: HTTP status of RequestLimitExceeded", [503], statuses)
    check(capacity <= passed <= most, f"{what}: calls passed", f"{capacity}..{most}", passed)


def scenario_throttle(ec2, state):
    iid = launch(ec2, 1)[0]
    # CreateTags has its own bucket: 100 tokens, 10/s.
    passed, errors, elapsed = burst(ec2.create_tags, 300, Resources=[iid], Tags=[{"Key": "seq", "Value": "x"}])
    check_throttled("CreateTags", passed, errors, 100, 10, elapsed)
    # Unfiltered, unpaginated DescribeInstances: 50 tokens, 10/s; filtered calls use another bucket.
    passed, errors, elapsed = burst(ec2.describe_instances, 200)
    check_throttled("unfiltered DescribeInstances", passed, errors, 50, 10, elapsed)
    ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [iid]}])
    # A non-mutating action: 100 tokens, 20/s. Throttled calls change nothing.
    before = len(instances(ec2.describe_instances(Filters=[{"Name": f"tag:{CLUSTER_KEY}", "Values": [CLUSTER]}])))
    passed, errors, elapsed = burst(ec2.describe_launch_templates, 300, LaunchTemplateNames=[TEMPLATE])
    check_throttled("DescribeLaunchTemplates", passed, errors, 100, 20, elapsed)
    after = len(instances(ec2.describe_instances(Filters=[{"Name": f"tag:{CLUSTER_KEY}", "Values": [CLUSTER]}])))
    check(before == after, "instances after throttled calls", before, after)


# What AWS documents for these types (Amazon EC2 Instance Types guide, specification tables;
# DescribeInstanceTypes reports memory in MiB and GPUs in GpuInfo).
INSTANCE_TYPES = {
    "p4d.24xlarge": dict(vcpus=96, cores=48, threads=2, mib=1179648, arch="x86_64", efa=True,
                         gpu=("A100", "NVIDIA", 8, 40960)),
    "g5.xlarge": dict(vcpus=4, cores=2, threads=2, mib=16384, arch="x86_64", efa=False,
                      gpu=("A10G", "NVIDIA", 1, 24576)),
    "c7g.xlarge": dict(vcpus=4, cores=4, threads=1, mib=8192, arch="arm64", efa=False, gpu=None),
}


def scenario_instance_types(ec2, state):
    got = {t["InstanceType"]: t for t in
           ec2.describe_instance_types(InstanceTypes=sorted(INSTANCE_TYPES))["InstanceTypes"]}
    check(sorted(got) == sorted(INSTANCE_TYPES), "DescribeInstanceTypes by name", sorted(INSTANCE_TYPES), sorted(got))
    for name, want in INSTANCE_TYPES.items():
        t = got[name]
        v = t.get("VCpuInfo", {})
        soft("instance-types", f"{name} VCpuInfo", (v.get("DefaultVCpus"), v.get("DefaultCores"), v.get("DefaultThreadsPerCore"))
             == (want["vcpus"], want["cores"], want["threads"]), (want["vcpus"], want["cores"], want["threads"]), v)
        soft("instance-types", f"{name} MemoryInfo.SizeInMiB", t.get("MemoryInfo", {}).get("SizeInMiB") == want["mib"],
             want["mib"], t.get("MemoryInfo"))
        archs = t.get("ProcessorInfo", {}).get("SupportedArchitectures")
        soft("instance-types", f"{name} SupportedArchitectures", archs == [want["arch"]], [want["arch"]], archs)
        efa = t.get("NetworkInfo", {}).get("EfaSupported")
        soft("instance-types", f"{name} EfaSupported", efa == want["efa"], want["efa"], efa)
        soft("instance-types", f"{name} CurrentGeneration", t.get("CurrentGeneration") is True, True, t.get("CurrentGeneration"))
        gpus = t.get("GpuInfo", {}).get("Gpus", [])
        if want["gpu"] is None:
            soft("instance-types", f"{name} GpuInfo", "GpuInfo" not in t, "absent", t.get("GpuInfo"))
        else:
            g = gpus[0] if gpus else {}
            seen = (g.get("Name"), g.get("Manufacturer"), g.get("Count"), g.get("MemoryInfo", {}).get("SizeInMiB"))
            soft("instance-types", f"{name} GPU", len(gpus) == 1 and seen == want["gpu"], want["gpu"], gpus)
    # Pagination: pages of 5 see exactly what one unpaginated call sees.
    whole = ec2.describe_instance_types()
    check(not whole.get("NextToken"), "NextToken when all fit", None, whole.get("NextToken"))
    names = [t["InstanceType"] for t in whole["InstanceTypes"]]
    pages = list(ec2.get_paginator("describe_instance_types").paginate(PaginationConfig={"PageSize": 5}))
    paged = [t["InstanceType"] for p in pages for t in p["InstanceTypes"]]
    check(paged == names, "paginated DescribeInstanceTypes", names, paged)
    check(len(pages) == math.ceil(len(names) / 5), "pages at MaxResults=5", math.ceil(len(names) / 5), len(pages))
    check(all(len(p["InstanceTypes"]) <= 5 for p in pages), "page sizes at MaxResults=5", "<= 5",
          [len(p["InstanceTypes"]) for p in pages])
    # Filters: values OR-ed, filters AND-ed, * wildcards.
    arm = ec2.describe_instance_types(Filters=[
        {"Name": "processor-info.supported-architecture", "Values": ["arm64"]},
        {"Name": "instance-type", "Values": ["c7g.*", "hpc*"]}])["InstanceTypes"]
    check(sorted(t["InstanceType"] for t in arm) == ["c7g.16xlarge", "c7g.xlarge", "hpc7g.16xlarge"],
          "filters arm64 AND (c7g.* OR hpc*)", ["c7g.16xlarge", "c7g.xlarge", "hpc7g.16xlarge"],
          sorted(t["InstanceType"] for t in arm))
    old = ec2.describe_instance_types(Filters=[{"Name": "current-generation", "Values": ["false"]}])["InstanceTypes"]
    check(all(t["CurrentGeneration"] is False for t in old) and old, "current-generation=false", "previous-generation types",
          [t["InstanceType"] for t in old])
    # Errors as EC2 returns them (HTTP 400).
    e = expect_error(ec2.describe_instance_types, "InvalidInstanceType", 400, InstanceTypes=["c5.xlarge", "c5.huge"])
    msg = e.response["Error"]["Message"]
    check("c5.huge" in msg and "c5.xlarge" not in msg, "InvalidInstanceType names the unknown type only", "c5.huge", msg)
    expect_error(ec2.describe_instance_types, "InvalidParameterValue", 400, MaxResults=101)
    expect_error(ec2.describe_instance_types, "InvalidParameterValue", 400,
                 Filters=[{"Name": "no-such-filter", "Values": ["x"]}])


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] != "throttle"):
        print(__doc__, file=sys.stderr)
        return 2
    endpoint = sys.argv[1]
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=60)
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1", config=cfg)
    state = {"ids": []}
    scenarios = [
        ("fleet+tags+filters", lambda: scenario_fleet_tag_filter(ec2, state)),
        ("paginate", lambda: scenario_paginate(ec2, state)),
        ("dry-run", lambda: scenario_dry_run(ec2, state)),
        ("terminate", lambda: scenario_terminate(ec2, state)),
        ("errors", lambda: scenario_errors(ec2, state)),
        ("regions", lambda: scenario_regions(endpoint, cfg)),
        ("instance-types", lambda: scenario_instance_types(ec2, state)),
    ]
    if len(sys.argv) == 3:
        scenarios = [("throttle", lambda: scenario_throttle(ec2, state))]
    for name, run in scenarios:
        try:
            run()
            print(f"ok   {name}")
        except Mismatch as e:
            failures.append(f"FAIL {name}: {e}")
        except ClientError as e:
            err = e.response.get("Error", {})
            failures.append(f"FAIL {name}: unexpected {err.get('Code')}: {err.get('Message')} ({e.operation_name})")
        except Exception:  # a wire format boto3 could not parse, a dead server, ...
            failures.append(f"FAIL {name}: {traceback.format_exc()}")
    for f in failures:
        print(f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
