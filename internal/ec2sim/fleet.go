package ec2sim

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/query"
)

// EC2 Fleet quotas (EC2 user guide, "EC2 Fleet quotas").
const (
	MaxFleetTargetCapacity = 10000 // target capacity per EC2 Fleet
	MaxFleetPools          = 300   // launch specifications (template config x override) per fleet
)

// fleetOption is one launch template config x override: one instance pool.
type fleetOption struct {
	cfg, ovr     int
	tmpl         *launchTemplate
	tmplVersion  string
	version      TemplateVersion
	specEcho     xFleetLTSpec
	ovrEcho      xFleetOverrides
	itype        string
	subnet       *subnet
	weight       float64
	priority     float64 // +Inf when not given
	maxPrice     float64 // 0 when not given
	odPrice      float64
	spotPrice    float64
	avail        int
	launched     int
	errCode, msg string
}

func (s *Sim) createFleet(c *call) (query.Body, error) {
	r, p := c.region, c.p
	if t := p.String("Type"); t != "instant" {
		if t == "" {
			t = "maintain" // EC2's default
		}
		return nil, errorf("UnsupportedOperation", "ec2sim supports CreateFleet only with Type=instant, not %q.", t)
	}
	cfgs := p.List("LaunchTemplateConfigs")
	if len(cfgs) == 0 {
		return nil, query.ErrMissingParameter("LaunchTemplateConfigs")
	}
	total, ok, err := p.Int("TargetCapacitySpecification.TotalTargetCapacity")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, query.ErrMissingParameter("TargetCapacitySpecification.TotalTargetCapacity")
	}
	if total < 1 || total > MaxFleetTargetCapacity {
		return nil, errorf("InvalidTargetCapacitySpecification", "TotalTargetCapacity %d is out of range: an instant fleet needs between 1 and %d units.", total, MaxFleetTargetCapacity)
	}
	odT, _, err := p.Int("TargetCapacitySpecification.OnDemandTargetCapacity")
	if err != nil {
		return nil, err
	}
	spT, _, err := p.Int("TargetCapacitySpecification.SpotTargetCapacity")
	if err != nil {
		return nil, err
	}
	if odT < 0 || spT < 0 || odT+spT > total {
		return nil, errorf("InvalidTargetCapacitySpecification", "OnDemandTargetCapacity (%d) plus SpotTargetCapacity (%d) must not exceed TotalTargetCapacity (%d).", odT, spT, total)
	}
	switch def := p.String("TargetCapacitySpecification.DefaultTargetCapacityType"); def {
	case "spot":
		spT = total - odT
	case "on-demand":
		odT = total - spT
	case "":
		if odT+spT != total {
			return nil, query.ErrMissingParameter("TargetCapacitySpecification.DefaultTargetCapacityType")
		}
	default:
		return nil, errorf("InvalidParameterValue", "Value (%s) for parameter DefaultTargetCapacityType is invalid. Valid values: on-demand, spot.", def)
	}

	// Build the pools.
	var opts []*fleetOption
	type poolID struct{ itype, az string }
	seen := map[poolID]bool{}
	for i, cn := range cfgs {
		spec := cn.Get("LaunchTemplateSpecification")
		t, ver, tv, err := r.resolveTemplate(spec.String("LaunchTemplateId"), spec.String("LaunchTemplateName"), spec.String("Version"))
		if err != nil {
			return nil, err
		}
		echo := xFleetLTSpec{LaunchTemplateID: t.id, Version: firstNonEmpty(spec.String("Version"), ver)}
		if spec.String("LaunchTemplateId") == "" {
			echo.LaunchTemplateName = t.name
		}
		ovrs := cn.List("Overrides")
		if len(ovrs) == 0 {
			ovrs = []*query.Node{{}}
		}
		for j, on := range ovrs {
			o := &fleetOption{cfg: i, ovr: j, tmpl: t, tmplVersion: ver, version: tv, specEcho: echo, weight: 1, priority: math.Inf(1)}
			o.itype = firstNonEmpty(on.String("InstanceType"), tv.InstanceType)
			if o.itype == "" {
				return nil, errorf("InvalidFleetConfig", "Launch template %s has no instance type and override %d gives none.", t.id, j+1)
			}
			it, ok := s.types[o.itype]
			if !ok {
				return nil, errorf("InvalidFleetConfig", "Invalid: Parameter: InstanceTypes. Unsupported instance type %s.", o.itype)
			}
			o.odPrice, o.spotPrice = it.OnDemandPrice, it.SpotPrice
			if o.subnet, err = r.pickSubnet(firstNonEmpty(on.String("SubnetId"), tv.SubnetID), on.String("AvailabilityZone")); err != nil {
				return nil, err
			}
			if w, ok, err := on.Float("WeightedCapacity"); err != nil {
				return nil, err
			} else if ok {
				if w <= 0 {
					return nil, errorf("InvalidParameterValue", "WeightedCapacity must be greater than 0.")
				}
				o.weight = w
				o.ovrEcho.WeightedCapacity = &w
			}
			if pr, ok, err := on.Float("Priority"); err != nil {
				return nil, err
			} else if ok {
				o.priority = pr
				o.ovrEcho.Priority = &pr
			}
			if mp, ok, err := on.Float("MaxPrice"); err != nil {
				return nil, err
			} else if ok {
				o.maxPrice = mp
				o.ovrEcho.MaxPrice = on.String("MaxPrice")
			}
			o.ovrEcho.InstanceType = o.itype
			o.ovrEcho.SubnetID = on.String("SubnetId")
			o.ovrEcho.AvailabilityZone = on.String("AvailabilityZone")
			if o.ovrEcho.SubnetID == "" && o.ovrEcho.AvailabilityZone == "" {
				o.ovrEcho.SubnetID = o.subnet.spec.ID
			}
			id := poolID{o.itype, o.subnet.spec.AvailabilityZone}
			if seen[id] {
				return nil, errorf("InvalidFleetConfig", "The fleet configuration contains duplicate instance pools.")
			}
			seen[id] = true
			opts = append(opts, o)
		}
	}
	if len(opts) > MaxFleetPools {
		return nil, errorf("InvalidFleetConfig", "The fleet configuration contains %d launch specifications; at most %d are allowed.", len(opts), MaxFleetPools)
	}
	instTags, err := parseTagSpecs(p, "instance", "fleet", "volume", "network-interface")
	if err != nil {
		return nil, err
	}

	type segment struct {
		lifecycle, prefix string
		target            int
	}
	segs := []segment{{"on-demand", "OnDemandOptions", odT}, {"spot", "SpotOptions", spT}}
	plans := make([]map[*fleetOption]int, len(segs))
	var errs []xFleetError
	for si, sg := range segs {
		if sg.target == 0 {
			continue
		}
		plan, serrs, err := s.planSegment(p.Get(sg.prefix), sg.lifecycle, sg.target, opts)
		if err != nil {
			return nil, err
		}
		plans[si] = plan
		for _, o := range serrs {
			errs = append(errs, xFleetError{LTAndOverrides: xLTAndOverrides{o.specEcho, o.ovrEcho}, Lifecycle: sg.lifecycle, ErrorCode: o.errCode, ErrorMessage: o.msg})
		}
	}

	fleetID := "fleet-" + s.uuid()
	instTags["aws:ec2:fleet-id"] = fleetID
	resp := &createFleetResp{FleetID: fleetID, Errors: errs}
	for si, sg := range segs {
		for _, o := range opts { // in request order, as deterministic output
			n := plans[si][o]
			if n == 0 {
				continue
			}
			ls := launchSpec{region: r, itype: o.itype, image: o.version.ImageID, subnet: o.subnet, lifecycle: sg.lifecycle,
				tmpl: o.tmpl, tmplVersion: o.tmplVersion, version: o.version, tags: instTags,
				clientToken: p.String("ClientToken"), reservation: s.hexID("r-", 17)}
			ins := s.launchLocked(c.now, ls, n)
			fi := xFleetInstance{LTAndOverrides: xLTAndOverrides{o.specEcho, o.ovrEcho}, Lifecycle: sg.lifecycle, InstanceType: o.itype}
			for _, in := range ins {
				fi.InstanceIDs = append(fi.InstanceIDs, in.id)
			}
			c.n += len(ins)
			resp.Instances = append(resp.Instances, fi)
		}
	}
	return resp, nil
}

// planSegment decides how many instances of each pool one purchasing option launches, and
// which pools failed. It changes nothing.
func (s *Sim) planSegment(o *query.Node, lifecycle string, target int, all []*fleetOption) (map[*fleetOption]int, []*fleetOption, error) {
	strategy := o.String("AllocationStrategy")
	if strategy == "" {
		strategy = "lowest-price" // EC2's default for both purchasing options
	}
	valid := map[string][]string{
		"on-demand": {"lowest-price", "prioritized"},
		"spot":      {"lowest-price", "diversified", "capacity-optimized", "capacity-optimized-prioritized", "price-capacity-optimized"},
	}
	if !slices.Contains(valid[lifecycle], strategy) {
		return nil, nil, errorf("InvalidParameterValue", "Value (%s) for parameter AllocationStrategy is invalid for %s capacity.", strategy, lifecycle)
	}
	singleType, err := o.Bool("SingleInstanceType")
	if err != nil {
		return nil, nil, err
	}
	singleAZ, err := o.Bool("SingleAvailabilityZone")
	if err != nil {
		return nil, nil, err
	}
	minT, hasMin, err := o.Int("MinTargetCapacity")
	if err != nil {
		return nil, nil, err
	}
	if hasMin {
		if !singleType && !singleAZ {
			return nil, nil, errorf("InvalidParameterValue", "MinTargetCapacity requires SingleInstanceType or SingleAvailabilityZone.")
		}
		if minT < 0 || minT > target {
			return nil, nil, errorf("InvalidParameterValue", "MinTargetCapacity (%d) must be between 0 and the %s target capacity (%d).", minT, lifecycle, target)
		}
	}

	opts := make([]*fleetOption, 0, len(all))
	for _, f := range all {
		c := *f
		c.launched, c.errCode, c.msg = 0, "", ""
		c.avail = s.availableLocked(c.itype, lifecycle, c.subnet)
		opts = append(opts, &c)
	}
	price := func(f *fleetOption) float64 {
		if lifecycle == "spot" {
			return f.spotPrice / f.weight
		}
		return f.odPrice / f.weight
	}
	byPriority := func(a, b *fleetOption) int { return cmp.Compare(a.priority, b.priority) }
	byPrice := func(a, b *fleetOption) int { return cmp.Compare(price(a), price(b)) }
	byCapacity := func(a, b *fleetOption) int { return cmp.Compare(b.avail, a.avail) }
	switch strategy {
	case "lowest-price", "diversified":
		slices.SortStableFunc(opts, byPrice)
	case "prioritized":
		slices.SortStableFunc(opts, func(a, b *fleetOption) int { return cmp.Or(byPriority(a, b), byPrice(a, b)) })
	case "capacity-optimized":
		slices.SortStableFunc(opts, byCapacity)
	case "capacity-optimized-prioritized":
		slices.SortStableFunc(opts, func(a, b *fleetOption) int { return cmp.Or(byPriority(a, b), byCapacity(a, b)) })
	case "price-capacity-optimized":
		slices.SortStableFunc(opts, func(a, b *fleetOption) int {
			return cmp.Or(cmp.Compare(boolInt(a.avail == 0), boolInt(b.avail == 0)), byPrice(a, b))
		})
	}
	for _, f := range opts {
		if lifecycle == "spot" && f.maxPrice > 0 && f.maxPrice < f.spotPrice {
			f.avail = -1 // marks "price too low"
		}
	}
	if singleType || singleAZ {
		opts = chooseGroup(opts, singleType, singleAZ, target)
	}

	remaining := float64(target)
	if strategy == "diversified" {
		for progress := true; remaining > 0 && progress; {
			progress = false
			for _, f := range opts {
				if remaining <= 0 {
					break
				}
				if f.launched < f.avail {
					f.launched++
					remaining -= f.weight
					progress = true
				}
			}
		}
		for _, f := range opts {
			if remaining > 0 && f.launched >= max(f.avail, 0) {
				s.failOption(f, lifecycle)
			}
		}
	} else {
		for _, f := range opts {
			if remaining <= 0 {
				break
			}
			need := int(math.Ceil(remaining / f.weight))
			take := min(need, max(f.avail, 0))
			f.launched = take
			remaining -= float64(take) * f.weight
			if take < need {
				s.failOption(f, lifecycle)
			}
		}
	}
	fulfilled := float64(target) - max(remaining, 0)
	plan := map[*fleetOption]int{}
	var failed []*fleetOption
	for _, f := range opts {
		if f.errCode != "" {
			failed = append(failed, f)
		}
	}
	if hasMin && fulfilled < float64(minT) {
		return plan, failed, nil // all or nothing: launch none
	}
	orig := map[[2]int]*fleetOption{}
	for _, f := range all {
		orig[[2]int{f.cfg, f.ovr}] = f
	}
	for _, f := range opts {
		if f.launched > 0 {
			plan[orig[[2]int{f.cfg, f.ovr}]] = f.launched
		}
	}
	return plan, failed, nil
}

func (s *Sim) failOption(f *fleetOption, lifecycle string) {
	if f.errCode != "" {
		return
	}
	switch {
	case f.avail < 0:
		f.errCode, f.msg = "SpotMaxPriceTooLow", "Your Spot request price of "+strconv.FormatFloat(f.maxPrice, 'f', -1, 64)+" is lower than the minimum required Spot request fulfillment price of "+strconv.FormatFloat(f.spotPrice, 'f', -1, 64)+"."
	case f.subnet.free() <= f.launched:
		f.errCode, f.msg = "InsufficientFreeAddressesInSubnet", "There are not enough free addresses in subnet '"+f.subnet.spec.ID+"' to satisfy the requested number of instances."
	default:
		f.errCode = "InsufficientInstanceCapacity"
		f.msg = s.iceMessageLocked(s.regionOf(f.subnet), f.itype, lifecycle, f.subnet.spec.AvailabilityZone)
	}
}

func (s *Sim) regionOf(sn *subnet) *regionState {
	for _, r := range s.regions {
		if r.subnets[sn.spec.ID] == sn {
			return r
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// chooseGroup keeps the options of one instance type and/or one AZ: the first group, in
// strategy order, that can fulfil the whole target, else the group with the most capacity.
func chooseGroup(opts []*fleetOption, byType, byAZ bool, target int) []*fleetOption {
	key := func(f *fleetOption) string {
		k := ""
		if byType {
			k += f.itype
		}
		if byAZ {
			k += "|" + f.subnet.spec.AvailabilityZone
		}
		return k
	}
	var order []string
	groups := map[string][]*fleetOption{}
	units := map[string]float64{}
	for _, f := range opts {
		k := key(f)
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], f)
		units[k] += float64(max(f.avail, 0)) * f.weight
	}
	best := order[0]
	for _, k := range order {
		if units[k] >= float64(target) {
			return groups[k]
		}
		if units[k] > units[best] {
			best = k
		}
	}
	return groups[best]
}
