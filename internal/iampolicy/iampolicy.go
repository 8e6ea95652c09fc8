// Package iampolicy builds least-privilege IAM policies for the slurm-ec2 head node and compute
// nodes from the node groups in use and the action lists of package fleet.
//
// Scoping, from the Service Authorization Reference for Amazon EC2:
//   - EC2 Describe* actions support no resource-level permissions: Resource "*", limited to the
//     regions in use with aws:RequestedRegion.
//   - RunInstances/CreateFleet authorize every resource of the launch: instance, volume,
//     network-interface, subnet, security-group, image, key-pair, launch-template, fleet, ... Subnets
//     and launch templates given by ID are named by ARN; a launch template given by name only can
//     not be (its ARN holds the ID), so it falls back to launch-template/* in its region.
//   - aws:RequestTag/slurm-ec2:cluster is required on the instance resource, so every launched
//     instance carries this cluster's tag.
//   - CreateTags is allowed at launch (ec2:CreateAction) and afterwards only on instances whose
//     aws:ResourceTag/slurm-ec2:cluster is this cluster, and never on the identity tag keys.
//   - TerminateInstances only on instances carrying this cluster's tag.
package iampolicy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// ClusterTagKey and NodeGroupTagKey are the identity tags set at launch (DESIGN.md contracts).
const (
	ClusterTagKey   = "slurm-ec2:cluster"
	NodeGroupTagKey = "slurm-ec2:node-group"
)

// PlaceholderComputeRoleARN stands in for the compute role when none is given; IAM rejects a
// policy that still contains it only at use, so the CLI warns.
const PlaceholderComputeRoleARN = "arn:aws:iam::ACCOUNT_ID:role/REPLACE-WITH-COMPUTE-NODE-ROLE"

// Input is what the policies depend on.
type Input struct {
	ClusterName string
	Partition   string // ARN partition; default "aws"
	AccountID   string // default "*"
	// ComputeRoleARN is the role passed to compute instances; default PlaceholderComputeRoleARN.
	ComputeRoleARN string
	Groups         []Group
}

// Group is the part of a node group that shapes the policy.
type Group struct {
	Region             string
	LaunchTemplateID   string
	LaunchTemplateName string
	SubnetIDs          []string // from SubnetIds and LaunchTemplateOverrides
	// Resources are resource suffixes the group's options name, e.g. "placement-group/hpc",
	// "capacity-reservation/*", "snapshot/snap-0123" (see OptionGrants).
	Resources []string
}

// Policy is an IAM policy document.
type Policy struct {
	Version   string
	Statement []Statement
}

// Statement is one IAM policy statement.
type Statement struct {
	Sid       string
	Effect    string
	Action    []string
	Resource  []string
	Condition map[string]map[string][]string `json:",omitempty"`
}

// Policies is the output of `slurm-ec2 iam-policy --node both`.
type Policies struct {
	HeadNode    *Policy `json:",omitempty"`
	ComputeNode *Policy `json:",omitempty"`
}

type arns struct{ partition, account string }

// ec2 is the ARN of an EC2 resource, written as the Service Authorization Reference writes
// each type (list_amazonec2.html, Resource types): images and snapshots, which may belong to
// any account, carry no account; every other type carries it.
func (a arns) ec2(region, resource string) string {
	account := a.account
	if typ, _, _ := strings.Cut(resource, "/"); typ == "image" || typ == "snapshot" {
		account = ""
	}
	return fmt.Sprintf("arn:%s:ec2:%s:%s:%s", a.partition, region, account, resource)
}

// Head builds the head node policy.
func Head(in Input) (*Policy, error) {
	a, regions, err := prepare(in)
	if err != nil {
		return nil, err
	}
	role := in.ComputeRoleARN
	if role == "" {
		role = PlaceholderComputeRoleARN
	}
	var describe, launchActions []string
	for _, act := range fleet.HeadNodeActions {
		switch {
		case strings.HasPrefix(act, "Describe"):
			describe = append(describe, "ec2:"+act)
		case act == "CreateFleet" || act == "RunInstances":
			launchActions = append(launchActions, "ec2:"+act)
		case act == "CreateTags" || act == "TerminateInstances" || act == "GetConsoleOutput":
		default:
			return nil, fmt.Errorf("fleet.HeadNodeActions lists %q, which the policy generator does not know how to scope: teach internal/iampolicy about it", act)
		}
	}
	inRegions := map[string]map[string][]string{"StringEquals": {"aws:RequestedRegion": regions}}
	each := func(resource string) []string {
		var out []string
		for _, r := range regions {
			out = append(out, a.ec2(r, resource))
		}
		return out
	}
	var subnets, templates []string
	subnetWildcard := map[string]bool{}
	for _, g := range in.Groups {
		if len(g.SubnetIDs) == 0 {
			subnetWildcard[g.Region] = true // the launch template's or the default subnet
		}
		for _, s := range g.SubnetIDs {
			subnets = append(subnets, a.ec2(g.Region, "subnet/"+s))
		}
		if g.LaunchTemplateID != "" {
			templates = append(templates, a.ec2(g.Region, "launch-template/"+g.LaunchTemplateID))
		} else {
			templates = append(templates, a.ec2(g.Region, "launch-template/*"))
		}
	}
	for r := range subnetWildcard {
		subnets = append(subnets, a.ec2(r, "subnet/*"))
	}
	var launchRes []string
	for _, r := range []string{"volume/*", "network-interface/*", "security-group/*", "key-pair/*", "snapshot/*", "image/*", "placement-group/*", "fleet/*", "spot-instances-request/*"} {
		launchRes = append(launchRes, each(r)...)
	}
	var optional []string
	for _, g := range in.Groups {
		for _, r := range g.Resources {
			optional = append(optional, a.ec2(g.Region, r))
		}
	}
	launchRes = append(launchRes, dedupe(optional)...)
	launchRes = append(launchRes, dedupe(subnets)...)
	launchRes = append(launchRes, dedupe(templates)...)

	p := &Policy{Version: "2012-10-17", Statement: []Statement{
		{
			Sid: "DescribeInRegionsInUse", Effect: "Allow", Action: describe, Resource: []string{"*"},
			Condition: inRegions,
		},
		{
			Sid: "LaunchOnlyInstancesTaggedForThisCluster", Effect: "Allow", Action: launchActions,
			Resource: each("instance/*"),
			Condition: map[string]map[string][]string{"StringEquals": {
				"aws:RequestTag/" + ClusterTagKey: {in.ClusterName},
			}},
		},
		{
			Sid: "LaunchWithTheseTemplatesSubnetsAndSupportingResources", Effect: "Allow", Action: launchActions,
			Resource: launchRes,
		},
		{
			Sid: "TagAtLaunch", Effect: "Allow", Action: []string{"ec2:CreateTags"},
			Resource: append(append(append(each("instance/*"), each("volume/*")...), each("network-interface/*")...), append(each("fleet/*"), each("spot-instances-request/*")...)...),
			Condition: map[string]map[string][]string{"StringEquals": {
				"ec2:CreateAction": {"CreateFleet", "RunInstances"},
			}},
		},
		{
			Sid: "TagThisClustersInstancesButNotTheirIdentity", Effect: "Allow", Action: []string{"ec2:CreateTags"},
			Resource: each("instance/*"),
			Condition: map[string]map[string][]string{
				"StringEquals":                 {"aws:ResourceTag/" + ClusterTagKey: {in.ClusterName}},
				"ForAllValues:StringNotEquals": {"aws:TagKeys": {ClusterTagKey, NodeGroupTagKey}},
			},
		},
		{
			Sid: "TerminateOnlyThisClustersInstances", Effect: "Allow", Action: []string{"ec2:TerminateInstances"},
			Resource: each("instance/*"),
			Condition: map[string]map[string][]string{"StringEquals": {
				"aws:ResourceTag/" + ClusterTagKey: {in.ClusterName},
			}},
		},
		{
			// GetConsoleOutput takes the instance resource and its tags as conditions (Service
			// Authorization Reference, "Actions, resources, and condition keys for Amazon EC2"):
			// the console of this cluster's instances only, for the log line of a failed boot.
			Sid: "ReadTheConsoleOfThisClustersInstances", Effect: "Allow", Action: []string{"ec2:GetConsoleOutput"},
			Resource: each("instance/*"),
			Condition: map[string]map[string][]string{"StringEquals": {
				"aws:ResourceTag/" + ClusterTagKey: {in.ClusterName},
			}},
		},
		{
			// `reconcile --all-regions` (the hourly sweep) looks for this cluster's instances in
			// regions no node group uses any more. Describe actions take no resource-level
			// permissions or resource conditions: Resource "*" (IAM User Guide, "Amazon EC2:
			// Allows starting or stopping EC2 instances a user has tagged"; EC2 "Actions,
			// resources, and condition keys").
			Sid: "SweepEveryRegionDescribe", Effect: "Allow", Action: []string{"ec2:DescribeInstances"},
			Resource: []string{"*"},
		},
		{
			// ... and terminates what it finds there, only instances carrying the cluster tag.
			Sid: "SweepEveryRegionTerminateOnlyThisClustersInstances", Effect: "Allow", Action: []string{"ec2:TerminateInstances"},
			Resource: []string{a.ec2("*", "instance/*")},
			Condition: map[string]map[string][]string{"StringEquals": {
				"aws:ResourceTag/" + ClusterTagKey: {in.ClusterName},
			}},
		},
		{
			Sid: "PassOnlyTheComputeRoleToEC2", Effect: "Allow", Action: []string{"iam:PassRole"},
			Resource: []string{role},
			Condition: map[string]map[string][]string{"StringEquals": {
				"iam:PassedToService": {"ec2.amazonaws.com"},
			}},
		},
		{
			Sid: "CreateTheEC2FleetServiceLinkedRoleOnce", Effect: "Allow", Action: []string{"iam:CreateServiceLinkedRole"},
			Resource: []string{fmt.Sprintf("arn:%s:iam::%s:role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet", a.partition, a.account)},
			Condition: map[string]map[string][]string{"StringEquals": {
				"iam:AWSServiceName": {"ec2fleet.amazonaws.com"},
			}},
		},
	}}
	return p, nil
}

// Compute builds the compute node policy: only what `slurm-ec2 nodename` may call.
func Compute(in Input) (*Policy, error) {
	_, regions, err := prepare(in)
	if err != nil {
		return nil, err
	}
	var acts []string
	for _, act := range fleet.ComputeNodeActions {
		if !strings.HasPrefix(act, "Describe") {
			return nil, fmt.Errorf("fleet.ComputeNodeActions lists %q, which the policy generator does not know how to scope: teach internal/iampolicy about it", act)
		}
		acts = append(acts, "ec2:"+act)
	}
	return &Policy{Version: "2012-10-17", Statement: []Statement{{
		Sid: "ReadOwnNameTagWhenMetadataTagsAreOff", Effect: "Allow", Action: acts, Resource: []string{"*"},
		Condition: map[string]map[string][]string{"StringEquals": {"aws:RequestedRegion": regions}},
	}}}, nil
}

// Build returns the policies selected by node: "head", "compute" or "both".
func Build(in Input, node string) (*Policies, error) {
	var out Policies
	var err error
	switch node {
	case "head", "both", "compute":
	default:
		return nil, fmt.Errorf("unknown node kind %q: want head, compute or both", node)
	}
	if node != "compute" {
		if out.HeadNode, err = Head(in); err != nil {
			return nil, err
		}
	}
	if node != "head" {
		if out.ComputeNode, err = Compute(in); err != nil {
			return nil, err
		}
	}
	return &out, nil
}

// Marshal renders the policies: a single policy document for head or compute, or an object
// {"HeadNode":...,"ComputeNode":...} for both. The output ends with a newline.
func Marshal(p *Policies, node string) ([]byte, error) {
	var v any = p
	switch node {
	case "head":
		v = p.HeadNode
	case "compute":
		v = p.ComputeNode
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the IAM policy: %w", err)
	}
	return append(b, '\n'), nil
}

func prepare(in Input) (arns, []string, error) {
	a := arns{partition: in.Partition, account: in.AccountID}
	if a.partition == "" {
		a.partition = "aws"
	}
	if a.account == "" {
		a.account = "*"
	}
	if in.ClusterName == "" {
		return a, nil, errors.New("no cluster name: set \"ClusterName\" in config.json (it is the slurm-ec2:cluster tag the policy is scoped to)")
	}
	var regions []string
	for i, g := range in.Groups {
		if g.Region == "" {
			return a, nil, fmt.Errorf("node group %d has no Region", i)
		}
		regions = append(regions, g.Region)
	}
	if len(regions) == 0 {
		return a, nil, errors.New("no node groups: the policy needs at least one region to scope to")
	}
	return a, dedupe(regions), nil
}

func dedupe(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return slices.Compact(out)
}
