package ec2sim

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/query"
)

// EC2 limits used below (API reference pages of each action).
const (
	MaxTerminateIDs      = 1000 // TerminateInstances InstanceId
	MaxCreateTagsIDs     = 1000 // CreateTags ResourceId: "Up to 1000 resource IDs"
	MaxInstanceStatusIDs = 100  // DescribeInstanceStatus: "Maximum 100 explicitly specified instance IDs"
	MaxTagsPerResource   = 50
	MaxTagKeyLen         = 128
	MaxTagValueLen       = 256
)

var (
	instanceIDRE = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)
	ltIDRE       = regexp.MustCompile(`^lt-([0-9a-f]{8}|[0-9a-f]{17})$`)
)

// maxResults reads MaxResults within [lo, hi]; 0 when absent.
func maxResults(p *query.Node, lo, hi int) (int, error) {
	n, ok, err := p.Int("MaxResults")
	if err != nil || !ok {
		return 0, err
	}
	if n < lo || n > hi {
		return 0, errorf("InvalidParameterValue", "Value ( %d ) for parameter maxResults is invalid. Expecting a value between %d and %d.", n, lo, hi)
	}
	return n, nil
}

func encodeToken(s string) string { return base64.RawURLEncoding.EncodeToString([]byte("v1:" + s)) }

func decodeToken(p *query.Node) (string, bool, error) {
	t := p.String("NextToken")
	if t == "" {
		return "", false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || !strings.HasPrefix(string(b), "v1:") {
		return "", false, errorf("InvalidPaginationToken", "The specified pagination token is not valid or is expired.")
	}
	return string(b[3:]), true, nil
}

// lookupInstances validates ids (Malformed) and finds them (NotFound, listing every missing id).
func (r *regionState) lookupInstances(ids []string) ([]*instance, error) {
	var out []*instance
	var missing []string
	seen := map[string]bool{}
	for _, id := range ids {
		if !instanceIDRE.MatchString(id) {
			return nil, errorf("InvalidInstanceID.Malformed", "Invalid id: \"%s\"", id)
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		in := r.byID[id]
		if in == nil {
			missing = append(missing, id)
			continue
		}
		out = append(out, in)
	}
	switch len(missing) {
	case 0:
		return out, nil
	case 1:
		return nil, errorf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", missing[0])
	}
	return nil, errorf("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
}

// pageStart is the index in r.order of the first instance with seq >= the token's seq.
func (r *regionState) pageStart(tok string) (int, error) {
	seq, err := strconv.ParseUint(tok, 10, 64)
	if err != nil {
		return 0, errorf("InvalidPaginationToken", "The specified pagination token is not valid or is expired.")
	}
	return sort.Search(len(r.order), func(i int) bool { return r.order[i].seq >= seq }), nil
}

// pageFrom is where a paginated listing of the region's instances resumes: the start of the
// NextToken's page, or 0 without a token.
func (r *regionState) pageFrom(p *query.Node) (int, error) {
	tok, ok, err := decodeToken(p)
	if err != nil || !ok {
		return 0, err
	}
	return r.pageStart(tok)
}

func (s *Sim) describeInstances(c *call) (query.Body, error) {
	r, p := c.region, c.p
	ids := p.Strings("InstanceId")
	limit, err := maxResults(p, 5, 1000)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(ids) > 0 {
		return nil, errorf("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	fs, err := parseFilters(p, instanceFilters...)
	if err != nil {
		return nil, err
	}
	var cands []*instance
	next := ""
	if len(ids) > 0 {
		if cands, err = r.lookupInstances(ids); err != nil {
			return nil, err
		}
	} else {
		start := 0
		if start, err = r.pageFrom(p); err != nil {
			return nil, err
		}
		for i := start; i < len(r.order); i++ {
			in := r.order[i]
			if in.removed || !matchInstance(fs, in, in.state(c.now, s.opts.ShutdownDelay)) {
				continue
			}
			if limit > 0 && len(cands) == limit {
				next = encodeToken(strconv.FormatUint(in.seq, 10))
				break
			}
			cands = append(cands, in)
		}
		fs = nil // already applied
	}
	resp := &describeInstancesResp{NextToken: next}
	var cur *xReservation
	for _, in := range cands {
		if fs != nil && !matchInstance(fs, in, in.state(c.now, s.opts.ShutdownDelay)) {
			continue
		}
		if cur == nil || cur.ReservationID != in.reservation {
			resp.Reservations = append(resp.Reservations, xReservation{ReservationID: in.reservation, OwnerID: s.opts.AccountID})
			cur = &resp.Reservations[len(resp.Reservations)-1]
		}
		cur.Instances = append(cur.Instances, s.xmlInstanceLocked(in, c.now, r))
		c.n++
	}
	return resp, nil
}

// parseTagSpecs returns the tags given for resourceType; others must be among allowedTypes.
func parseTagSpecs(p *query.Node, resourceType string, allowedTypes ...string) (map[string]string, error) {
	tags := map[string]string{}
	for _, ts := range p.List("TagSpecification") {
		rt := ts.String("ResourceType")
		ok := rt == resourceType
		for _, a := range allowedTypes {
			ok = ok || rt == a
		}
		if !ok {
			return nil, errorf("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt)
		}
		kv, err := parseTagList(ts, "Tag", true)
		if err != nil {
			return nil, err
		}
		if rt == resourceType {
			for _, t := range kv {
				tags[t.Key] = t.Value
			}
		}
	}
	if len(tags) > MaxTagsPerResource {
		return nil, errorf("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.")
	}
	return tags, nil
}

func parseTagList(p *query.Node, path string, needValue bool) ([]xTag, error) {
	var out []xTag
	for _, t := range p.List(path) {
		k := t.String("Key")
		if k == "" {
			return nil, query.ErrMissingParameter("Tag.Key")
		}
		if len(k) > MaxTagKeyLen {
			return nil, errorf("InvalidParameterValue", "Tag key exceeds the maximum length of %d characters", MaxTagKeyLen)
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, errorf("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
		}
		v := t.String("Value")
		if len(v) > MaxTagValueLen {
			return nil, errorf("InvalidParameterValue", "Tag value exceeds the maximum length of %d characters", MaxTagValueLen)
		}
		out = append(out, xTag{k, v})
	}
	return out, nil
}

func (s *Sim) runInstances(c *call) (query.Body, error) {
	r, p := c.region, c.p
	minC, okMin, err := p.Int("MinCount")
	if err != nil {
		return nil, err
	}
	maxC, okMax, err := p.Int("MaxCount")
	if err != nil {
		return nil, err
	}
	if !okMin {
		return nil, query.ErrMissingParameter("MinCount")
	}
	if !okMax {
		return nil, query.ErrMissingParameter("MaxCount")
	}
	if minC < 1 || maxC < minC {
		return nil, errorf("InvalidParameterValue", "MinCount (%d) must be at least 1 and no more than MaxCount (%d)", minC, maxC)
	}
	ls := launchSpec{region: r, lifecycle: "on-demand", clientToken: p.String("ClientToken")}
	if p.Has("LaunchTemplate") {
		t, ver, tv, err := r.resolveTemplate(p.String("LaunchTemplate.LaunchTemplateId"), p.String("LaunchTemplate.LaunchTemplateName"), p.String("LaunchTemplate.Version"))
		if err != nil {
			return nil, err
		}
		ls.tmpl, ls.tmplVersion, ls.version = t, ver, tv
	}
	ls.itype = firstNonEmpty(p.String("InstanceType"), ls.version.InstanceType, "m1.small")
	ls.image = firstNonEmpty(p.String("ImageId"), ls.version.ImageID)
	if ls.image == "" {
		return nil, query.ErrMissingParameter("ImageId")
	}
	if _, ok := s.types[ls.itype]; !ok {
		return nil, errorf("InvalidParameterValue", "Invalid value '%s' for InstanceType.", ls.itype)
	}
	if p.String("InstanceMarketOptions.MarketType") == "spot" {
		ls.lifecycle = "spot"
	}
	sn, err := r.pickSubnet(firstNonEmpty(p.String("SubnetId"), ls.version.SubnetID), p.String("Placement.AvailabilityZone"))
	if err != nil {
		return nil, err
	}
	ls.subnet = sn
	if ls.tags, err = parseTagSpecs(p, "instance", "volume", "network-interface"); err != nil {
		return nil, err
	}
	avail := s.availableLocked(ls.itype, ls.lifecycle, sn)
	if avail < minC {
		if sn.free() < minC {
			return nil, errorf("InsufficientFreeAddressesInSubnet", "There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", sn.spec.ID)
		}
		return nil, query.NewError("InsufficientInstanceCapacity", s.iceMessageLocked(r, ls.itype, ls.lifecycle, sn.spec.AvailabilityZone))
	}
	ls.reservation = s.hexID("r-", 17)
	ins := s.launchLocked(c.now, ls, min(avail, maxC))
	resp := &runInstancesResp{ReservationID: ls.reservation, OwnerID: s.opts.AccountID}
	for i, in := range ins {
		x := s.xmlInstanceLocked(in, c.now, r)
		x.AmiLaunchIndex = i
		resp.Instances = append(resp.Instances, x)
	}
	c.n = len(ins)
	return resp, nil
}

// iceMessageLocked is EC2's InsufficientInstanceCapacity wording, naming other zones of the
// region that still have capacity of the type.
func (s *Sim) iceMessageLocked(r *regionState, itype, lifecycle, az string) string {
	if lifecycle == "spot" {
		return "There is no Spot capacity available that matches your request."
	}
	var others []string
	for _, z := range r.spec.AvailabilityZones {
		if z.Name == az {
			continue
		}
		p := s.poolLocked(poolKey{itype, z.Name, lifecycle})
		if p.capacity-p.used > 0 {
			others = append(others, z.Name)
		}
	}
	msg := fmt.Sprintf("We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). Our system will be working on provisioning additional capacity.", itype, az)
	if len(others) > 0 {
		msg += fmt.Sprintf(" You can currently get %s capacity by not specifying an Availability Zone in your request or choosing %s.", itype, strings.Join(others, ", "))
	}
	return msg
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// pickSubnet resolves a subnet id, else the first subnet of the AZ, else the region's first.
func (r *regionState) pickSubnet(id, az string) (*subnet, error) {
	if id != "" {
		sn := r.subnets[id]
		if sn == nil {
			return nil, errorf("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		}
		if az != "" && sn.spec.AvailabilityZone != az {
			return nil, errorf("InvalidParameterValue", "Value (%s) for parameter availabilityZone is invalid. Subnet %s is in Availability Zone %s.", az, id, sn.spec.AvailabilityZone)
		}
		return sn, nil
	}
	for _, sid := range r.subnetIDs {
		if sn := r.subnets[sid]; az == "" || sn.spec.AvailabilityZone == az {
			return sn, nil
		}
	}
	if az != "" {
		if _, ok := r.azs[az]; !ok {
			return nil, errorf("InvalidParameterValue", "Invalid availability zone: [%s]", az)
		}
		return nil, errorf("MissingInput", "No subnets found for the default VPC in %s. Please specify a subnet.", az)
	}
	return nil, errorf("MissingInput", "No subnets found for the default VPC. Please specify a subnet.")
}

// resolveTemplate finds a launch template by id or name and one of its versions
// ("", "$Default", "$Latest" or a number).
func (r *regionState) resolveTemplate(id, name, version string) (*launchTemplate, string, TemplateVersion, error) {
	var t *launchTemplate
	switch {
	case id != "":
		if !ltIDRE.MatchString(id) {
			return nil, "", TemplateVersion{}, errorf("InvalidLaunchTemplateId.Malformed", "The specified ID for the launch template (%s) is not valid. Launch template IDs start with lt- and are followed by 17 hexadecimal characters.", id)
		}
		for _, lt := range r.templates {
			if lt.id == id {
				t = lt
			}
		}
		if t == nil {
			return nil, "", TemplateVersion{}, errorf("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
		}
	case name != "":
		for _, lt := range r.templates {
			if lt.name == name {
				t = lt
			}
		}
		if t == nil {
			return nil, "", TemplateVersion{}, errorf("InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name %s, does not exist.", name)
		}
	default:
		return nil, "", TemplateVersion{}, errorf("MissingParameter", "The request must contain the parameter LaunchTemplateId or LaunchTemplateName")
	}
	n := t.defaultVersion
	switch version {
	case "", "$Default":
	case "$Latest":
		n = len(t.versions)
	default:
		v, err := strconv.Atoi(version)
		if err != nil || v < 1 || v > len(t.versions) {
			return nil, "", TemplateVersion{}, errorf("InvalidLaunchTemplateId.VersionNotFound", "Could not find launch template version %s for launch template %s.", version, t.id)
		}
		n = v
	}
	return t, strconv.Itoa(n), t.versions[n-1], nil
}

func (s *Sim) terminateInstances(c *call) (query.Body, error) {
	ids := c.p.Strings("InstanceId")
	if len(ids) == 0 {
		return nil, query.ErrMissingParameter("InstanceId")
	}
	if len(ids) > MaxTerminateIDs {
		return nil, errorf("InvalidParameterValue", "The request contains %d instance IDs; TerminateInstances accepts at most %d.", len(ids), MaxTerminateIDs)
	}
	ins, err := c.region.lookupInstances(ids)
	if err != nil {
		return nil, err
	}
	resp := &terminateInstancesResp{}
	for _, in := range ins {
		prev := in.state(c.now, s.opts.ShutdownDelay)
		s.terminateLocked(in, c.now, ReasonUserShutdown)
		cur := in.state(c.now, s.opts.ShutdownDelay)
		resp.Instances = append(resp.Instances, xStateChange{InstanceID: in.id, CurrentState: xState{stateCodes[cur], cur}, PreviousState: xState{stateCodes[prev], prev}})
	}
	c.n = len(ins)
	return resp, nil
}

// tagTargets resolves CreateTags/DeleteTags resource ids; only instances carry tags here.
func (s *Sim) tagTargets(c *call) ([]*instance, error) {
	ids := c.p.Strings("ResourceId")
	if len(ids) == 0 {
		return nil, query.ErrMissingParameter("ResourceId")
	}
	if len(ids) > MaxCreateTagsIDs {
		return nil, errorf("InvalidParameterValue", "The request contains %d resource IDs; at most %d are allowed.", len(ids), MaxCreateTagsIDs)
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, "i-") {
			return nil, errorf("InvalidID", "The ID '%s' is not valid", id)
		}
	}
	return c.region.lookupInstances(ids)
}

func (s *Sim) createTags(c *call) (query.Body, error) {
	tags, err := parseTagList(c.p, "Tag", true)
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, query.ErrMissingParameter("Tag")
	}
	ins, err := s.tagTargets(c)
	if err != nil {
		return nil, err
	}
	for _, in := range ins {
		n := len(in.tags)
		for _, t := range tags {
			if _, ok := in.tags[t.Key]; !ok {
				n++
			}
		}
		if userTagCount(in.tags, n) > MaxTagsPerResource {
			return nil, errorf("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.")
		}
	}
	for _, in := range ins {
		for _, t := range tags {
			in.tags[t.Key] = t.Value
		}
	}
	c.n = len(ins)
	return &returnResp{Return: true}, nil
}

// userTagCount discounts the aws: tags EC2 adds itself, which do not count against the limit.
func userTagCount(tags map[string]string, n int) int {
	for k := range tags {
		if strings.HasPrefix(k, "aws:") {
			n--
		}
	}
	return n
}

func (s *Sim) deleteTags(c *call) (query.Body, error) {
	ins, err := s.tagTargets(c)
	if err != nil {
		return nil, err
	}
	tl := c.p.List("Tag")
	for _, in := range ins {
		if len(tl) == 0 { // no Tag: delete every user tag
			for k := range in.tags {
				if !strings.HasPrefix(k, "aws:") {
					delete(in.tags, k)
				}
			}
			continue
		}
		for _, t := range tl {
			k := t.String("Key")
			if strings.HasPrefix(k, "aws:") {
				return nil, errorf("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
			}
			if v, ok := in.tags[k]; ok && (!t.Has("Value") || t.String("Value") == v) {
				delete(in.tags, k)
			}
		}
	}
	c.n = len(ins)
	return &returnResp{Return: true}, nil
}

func (s *Sim) describeTags(c *call) (query.Body, error) {
	r, p := c.region, c.p
	limit, err := maxResults(p, 5, 1000)
	if err != nil {
		return nil, err
	}
	fs, err := parseFilters(p, "resource-id", "resource-type", "key", "value", "tag:")
	if err != nil {
		return nil, err
	}
	startSeq, startKey := uint64(0), ""
	if tok, ok, err := decodeToken(p); err != nil {
		return nil, err
	} else if ok {
		seqS, key, _ := strings.Cut(tok, "/")
		if startSeq, err = strconv.ParseUint(seqS, 10, 64); err != nil {
			return nil, errorf("InvalidPaginationToken", "The specified pagination token is not valid or is expired.")
		}
		startKey = key
	}
	start := sort.Search(len(r.order), func(i int) bool { return r.order[i].seq >= startSeq })
	resp := &describeTagsResp{}
outer:
	for i := start; i < len(r.order); i++ {
		in := r.order[i]
		if in.removed || !tagResourceMatch(fs, in) {
			continue
		}
		for _, k := range sortedKeys(in.tags) {
			if in.seq == startSeq && k < startKey {
				continue
			}
			v := in.tags[k]
			if !tagMatch(fs, k, v) {
				continue
			}
			if limit > 0 && len(resp.Tags) == limit {
				resp.NextToken = encodeToken(fmt.Sprintf("%d/%s", in.seq, k))
				break outer
			}
			resp.Tags = append(resp.Tags, xTagDescription{ResourceID: in.id, ResourceType: "instance", Key: k, Value: v})
		}
	}
	return resp, nil
}

func tagResourceMatch(fs []filter, in *instance) bool {
	for _, f := range fs {
		switch {
		case f.name == "resource-id" && !f.any(in.id):
			return false
		case f.name == "resource-type" && !f.any("instance"):
			return false
		case strings.HasPrefix(f.name, "tag:"):
			v, ok := in.tags[f.name[4:]]
			if !ok || !f.any(v) {
				return false
			}
		}
	}
	return true
}

func tagMatch(fs []filter, k, v string) bool {
	for _, f := range fs {
		if (f.name == "key" && !f.any(k)) || (f.name == "value" && !f.any(v)) {
			return false
		}
	}
	return true
}
