package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// The template is JSON, not YAML: CloudFormation accepts both, and JSON parses with the standard
// library, so this test checks the very file admins deploy without a YAML dependency.
const templatePath = "cloudformation/head-node.json"

type template struct {
	Parameters map[string]struct {
		Type           string
		Default        any
		AllowedPattern string
	}
	Conditions map[string]any
	Resources  map[string]struct {
		Type       string
		Properties map[string]any
	}
	Outputs map[string]any
}

func loadTemplate(t *testing.T) (template, []byte) {
	t.Helper()
	raw, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := json.Unmarshal(raw, &tpl); err != nil {
		t.Fatalf("%s is not valid JSON: %v", templatePath, err)
	}
	return tpl, raw
}

var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// walk calls fn for every intrinsic function object {"Fn::X"|"Ref": arg} in v, with the local
// variable names in scope (the map argument of Fn::Sub).
func walk(v any, fn func(name string, arg any)) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") || k == "Condition" {
					fn(k, arg)
				}
			}
		}
		for _, c := range x {
			walk(c, fn)
		}
	case []any:
		for _, c := range x {
			walk(c, fn)
		}
	}
}

func TestTemplateReferences(t *testing.T) {
	tpl, raw := loadTemplate(t)
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	known := func(name string) bool {
		if strings.HasPrefix(name, "AWS::") {
			return slices.Contains([]string{"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::StackId", "AWS::NoValue", "AWS::URLSuffix"}, name)
		}
		_, p := tpl.Parameters[name]
		_, r := tpl.Resources[name]
		return p || r
	}
	refs := 0
	for _, section := range []string{"Resources", "Outputs", "Conditions"} {
		walk(doc[section], func(fn string, arg any) {
			refs++
			switch fn {
			case "Ref":
				if s, _ := arg.(string); !known(s) {
					t.Errorf("Ref %v names no parameter or resource", arg)
				}
			case "Fn::GetAtt":
				a, _ := arg.([]any)
				if len(a) != 2 {
					t.Errorf("Fn::GetAtt %v: want [Resource, Attribute]", arg)
					return
				}
				if _, ok := tpl.Resources[a[0].(string)]; !ok {
					t.Errorf("Fn::GetAtt names unknown resource %v", a[0])
				}
			case "Fn::If":
				a, _ := arg.([]any)
				if _, ok := tpl.Conditions[a[0].(string)]; len(a) != 3 || !ok {
					t.Errorf("Fn::If %v: unknown condition or wrong arity", arg)
				}
			case "Fn::Sub":
				str, locals := "", map[string]any{}
				switch a := arg.(type) {
				case string:
					str = a
				case []any:
					str, _ = a[0].(string)
					locals, _ = a[1].(map[string]any)
				}
				for _, m := range subVar.FindAllStringSubmatch(str, -1) {
					name, _, _ := strings.Cut(m[1], ".") // Resource.Attribute
					if _, ok := locals[m[1]]; ok {
						continue
					}
					if !known(name) {
						t.Errorf("Fn::Sub ${%s} names no parameter, resource or local", m[1])
					}
					if p, ok := tpl.Parameters[name]; ok && strings.HasPrefix(p.Type, "CommaDelimitedList") {
						t.Errorf("Fn::Sub ${%s}: a list parameter cannot be substituted; Fn::Join it into a local", name)
					}
				}
			}
		})
	}
	if refs < 20 {
		t.Fatalf("only %d intrinsic functions found: the walker is broken", refs)
	}
	for name, r := range tpl.Resources {
		if !strings.HasPrefix(r.Type, "AWS::") {
			t.Errorf("resource %s has type %q", name, r.Type)
		}
	}
}

func TestTemplateSecurity(t *testing.T) {
	tpl, raw := loadTemplate(t)
	ssh := tpl.Parameters["AllowedSSHCidr"]
	if ssh.Default != nil {
		t.Errorf("AllowedSSHCidr has a default (%v): admins must choose it", ssh.Default)
	}
	re := regexp.MustCompile(ssh.AllowedPattern)
	for cidr, ok := range map[string]bool{
		"203.0.113.10/32": true, "10.20.0.0/16": true, "192.168.1.0/24": true,
		// broader than /16, or not an address: refused
		"0.0.0.0/0": false, "0.0.0.0/1": false, "10.0.0.0/8": false, "172.16.0.0/12": false, "10.0.0.0/15": false,
		"1.2.3.4": false, "256.1.1.1/32": false, "10.0.0.0/33": false,
	} {
		if re.MatchString(cidr) != ok {
			t.Errorf("AllowedSSHCidr pattern on %s = %v, want %v", cidr, !ok, ok)
		}
	}
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	walkMaps(doc["Resources"], func(m map[string]any) {
		if c, _ := m["CidrIp"].(string); c == "0.0.0.0/0" {
			t.Errorf("ingress open to the world: %v", m)
		}
		if c, _ := m["CidrIpv6"].(string); c == "::/0" {
			t.Errorf("ingress open to the world: %v", m)
		}
	})

	lt := tpl.Resources["ComputeLaunchTemplate"]
	if lt.Type != "AWS::EC2::LaunchTemplate" {
		t.Fatalf("ComputeLaunchTemplate is %q", lt.Type)
	}
	md, _ := lt.Properties["LaunchTemplateData"].(map[string]any)["MetadataOptions"].(map[string]any)
	if md["HttpTokens"] != "required" || md["InstanceMetadataTags"] != "enabled" {
		t.Errorf("compute MetadataOptions = %v, want HttpTokens required + InstanceMetadataTags enabled", md)
	}

	// The munge key is made at boot from /dev/urandom, never shipped in the template.
	text := string(raw)
	if !strings.Contains(text, "/dev/urandom of=/etc/munge/munge.key") {
		t.Error("head node user data does not generate the munge key from /dev/urandom")
	}
	if m := regexp.MustCompile(`[A-Za-z0-9+/]{64,}={0,2}`).FindString(text); m != "" {
		t.Errorf("template holds a long base64/hex blob (a literal key?): %.20s...", m)
	}
	if strings.Contains(text, "--value \"$(") || strings.Contains(text, "SecureString --overwrite --value \"") {
		t.Error("the munge key must reach put-parameter through file://, not the command line")
	}
}

func walkMaps(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x)
		for _, c := range x {
			walkMaps(c, fn)
		}
	case []any:
		for _, c := range x {
			walkMaps(c, fn)
		}
	}
}

// TestTemplateHeadPolicy checks the head role against the action list the code calls.
func TestTemplateHeadPolicy(t *testing.T) {
	tpl, _ := loadTemplate(t)
	pols, _ := tpl.Resources["HeadNodeRole"].Properties["Policies"].([]any)
	if len(pols) != 1 {
		t.Fatalf("HeadNodeRole has %d inline policies, want 1", len(pols))
	}
	stmts := pols[0].(map[string]any)["PolicyDocument"].(map[string]any)["Statement"].([]any)
	var ec2Acts []string
	for _, s := range stmts {
		st := s.(map[string]any)
		for _, a := range st["Action"].([]any) {
			act := a.(string)
			if strings.HasPrefix(act, "ec2:") {
				ec2Acts = append(ec2Acts, strings.TrimPrefix(act, "ec2:"))
			}
			tagged := slices.Contains(fleet.TaggedActions, strings.TrimPrefix(act, "ec2:"))
			if tagged && (act != "ec2:CreateTags" || !strings.Contains(jsonString(st["Condition"]), "ec2:CreateAction")) {
				if !strings.Contains(jsonString(st["Condition"]), `"aws:ResourceTag/slurm-ec2:cluster":{"Ref":"ClusterName"}`) {
					t.Errorf("%s allowed without the cluster tag condition: %v", act, st["Condition"])
				}
			}
			if act == "iam:PassRole" && !strings.Contains(jsonString(st), `"Fn::GetAtt":["ComputeNodeRole","Arn"]`) {
				t.Errorf("PassRole not limited to the compute role: %v", st)
			}
		}
	}
	sort.Strings(ec2Acts)
	ec2Acts = slices.Compact(ec2Acts)
	want := slices.Clone(fleet.HeadNodeActions)
	sort.Strings(want)
	if !slices.Equal(ec2Acts, want) {
		t.Errorf("head role EC2 actions %v, want fleet.HeadNodeActions %v", ec2Acts, want)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestUserDataIsValidBash renders both user data scripts with sample parameter values and asks
// bash to parse them (bash -n: no execution).
func TestUserDataIsValidBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	tpl, _ := loadTemplate(t)
	sample := map[string]string{"ClusterName": "hpc1", "AWS::Region": "us-east-1", "SlurmEc2ReleaseURL": "https://example.com/x.deb",
		"SlurmEc2ReleaseSHA256": "0123", "ComputeLaunchTemplate": "lt-0abc", "SubnetA": "subnet-1", "SubnetB": "subnet-2",
		"ComputeNodeCPUs": "2", "MaxComputeNodes": "10", "Types": "c5.large,c5a.large"}
	render := func(ud any) string { return renderUserData(t, ud, sample) }
	scripts := map[string]string{
		"head":    render(tpl.Resources["HeadNode"].Properties["UserData"]),
		"compute": render(tpl.Resources["ComputeLaunchTemplate"].Properties["LaunchTemplateData"].(map[string]any)["UserData"]),
	}
	for name, s := range scripts {
		f := filepath.Join(t.TempDir(), name+".sh")
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bash, "-n", f).CombinedOutput(); err != nil {
			t.Errorf("%s user data does not parse: %v\n%s", name, err, out)
		}
		if !strings.HasPrefix(s, "#!/bin/bash\n") || !strings.Contains(s, "set -euo pipefail") {
			t.Errorf("%s user data must start with #!/bin/bash and set -euo pipefail", name)
		}
	}
	if !strings.Contains(scripts["compute"], "/usr/share/slurm-ec2/slurmd.service.d/slurm-ec2.conf") {
		t.Error("compute user data does not install the slurmd drop-in the .deb ships")
	}
	for _, timer := range []string{"slurm-ec2-reconcile.timer", "slurm-ec2-sweep.timer"} {
		if !strings.Contains(scripts["head"], "systemctl enable --now "+timer) {
			t.Errorf("head user data does not enable %s", timer)
		}
	}
}

// userData renders a user data script as the template writes it, ${...} references left as is.
func userData(t *testing.T, ud any) string { return renderUserData(t, ud, nil) }

// renderUserData joins a user data script's Fn::Join parts, replacing each ${Name} in its
// Fn::Sub parts with sample[Name] (none when sample is nil; a missing sample value is an error).
func renderUserData(t *testing.T, ud any, sample map[string]string) string {
	t.Helper()
	join := ud.(map[string]any)["Fn::Base64"].(map[string]any)["Fn::Join"].([]any)
	var out []string
	for _, l := range join[1].([]any) {
		switch x := l.(type) {
		case string:
			out = append(out, x)
		case map[string]any:
			s := x["Fn::Sub"]
			if a, ok := s.([]any); ok {
				s = a[0]
			}
			if sample == nil {
				out = append(out, s.(string))
				continue
			}
			out = append(out, subVar.ReplaceAllStringFunc(s.(string), func(m string) string {
				v, ok := sample[m[2:len(m)-1]]
				if !ok {
					t.Errorf("no sample value for %s", m)
				}
				return v
			}))
		}
	}
	return strings.Join(out, join[0].(string))
}

// statements returns the inline policy statements of a role.
func statements(t *testing.T, tpl template, role string) []map[string]any {
	t.Helper()
	pols, _ := tpl.Resources[role].Properties["Policies"].([]any)
	var out []map[string]any
	for _, p := range pols {
		for _, s := range p.(map[string]any)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			out = append(out, s.(map[string]any))
		}
	}
	return out
}

func actions(st map[string]any) []string {
	switch a := st["Action"].(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

// before reports whether, in script, the first line containing a comes before the first one
// containing b (and both are there).
func before(script, a, b string) bool {
	i, j := strings.Index(script, a), strings.Index(script, b)
	return i >= 0 && j >= 0 && i < j
}

// TestTemplateTrustBoundaries asserts the fixes of issue 15 on the template: instance metadata
// for root (and SlurmUser on the head node) only, the munge key readable once at boot, the
// head-address parameter out of every instance role's reach, the release checksum required.
func TestTemplateTrustBoundaries(t *testing.T) {
	tpl, _ := loadTemplate(t)
	head := userData(t, tpl.Resources["HeadNode"].Properties["UserData"])
	compute := userData(t, tpl.Resources["ComputeLaunchTemplate"].Properties["LaunchTemplateData"].(map[string]any)["UserData"])

	t.Run("metadata only for root and SlurmUser", func(t *testing.T) {
		for name, s := range map[string]string{"head": head, "compute": compute} {
			for _, want := range []string{
				"iptables -w -I OUTPUT 1 -d 169.254.169.254/32 -j SLURM_EC2_IMDS",
				"-m owner --uid-owner 0 -j RETURN",
				"iptables -w -A SLURM_EC2_IMDS -j REJECT",
				"systemctl enable slurm-ec2-imds-guard.service", // again at every boot
			} {
				if !strings.Contains(s, want) {
					t.Errorf("%s user data lacks %q", name, want)
				}
			}
			// The filter is up before anything fetches credentials (the aws CLI, or slurm-ec2).
			if !before(s, "\n/usr/local/sbin/slurm-ec2-imds-guard", "aws ssm") {
				t.Errorf("%s user data uses the role before the metadata filter is set", name)
			}
		}
		if !strings.Contains(head, "ExecStart=/usr/local/sbin/slurm-ec2-imds-guard slurm") || !strings.Contains(head, "\n/usr/local/sbin/slurm-ec2-imds-guard slurm") {
			t.Error("head node: SlurmUser (slurm-ec2 runs as it) must keep metadata access")
		}
		if strings.Contains(compute, "imds-guard slurm") {
			t.Error("compute node: only root (slurmd, slurm-ec2 nodename) needs metadata")
		}
		for name, md := range map[string]any{
			"head":    tpl.Resources["HeadNode"].Properties["MetadataOptions"],
			"compute": tpl.Resources["ComputeLaunchTemplate"].Properties["LaunchTemplateData"].(map[string]any)["MetadataOptions"],
		} {
			m := md.(map[string]any)
			if m["HttpTokens"] != "required" || m["HttpPutResponseHopLimit"] != float64(1) || m["HttpProtocolIpv6"] != "disabled" {
				t.Errorf("%s MetadataOptions = %v: want IMDSv2, hop limit 1 (no containers), no IPv6 endpoint (the filter covers IPv4)", name, m)
			}
		}
	})

	t.Run("munge key read once, then the compute role is dropped", func(t *testing.T) {
		if !before(compute, "munge-key", "aws ec2 disassociate-iam-instance-profile") ||
			!before(compute, "head-address", "aws ec2 disassociate-iam-instance-profile") ||
			!before(compute, "aws ec2 disassociate-iam-instance-profile", "systemctl restart slurmd") {
			t.Error("compute user data must read the munge key and head-address, then drop its role, then start slurmd (jobs)")
		}
		var dropped bool
		for _, st := range statements(t, tpl, "ComputeNodeRole") {
			for _, a := range actions(st) {
				if a == "ec2:DisassociateIamInstanceProfile" {
					dropped = true
					if !strings.Contains(jsonString(st["Condition"]), `"aws:ResourceTag/slurm-ec2:cluster":{"Ref":"ClusterName"}`) {
						t.Errorf("DisassociateIamInstanceProfile not limited to this cluster's instances: %v", st)
					}
				}
				if a == "ssm:GetParameter" {
					res := jsonString(st["Resource"])
					if strings.Contains(res, "/*") || !strings.Contains(res, "munge-key") || !strings.Contains(res, "head-address") {
						t.Errorf("compute GetParameter must name the two parameters, not a path: %s", res)
					}
				}
				if strings.HasPrefix(a, "ssm:Put") || strings.HasPrefix(a, "ssm:Delete") {
					t.Errorf("compute role may change parameters: %v", st)
				}
			}
		}
		if !dropped {
			t.Error("compute role cannot drop itself (ec2:DisassociateIamInstanceProfile)")
		}
	})

	t.Run("head-address written by CloudFormation only", func(t *testing.T) {
		p, ok := tpl.Resources["HeadAddressParameter"]
		if !ok || p.Type != "AWS::SSM::Parameter" || jsonString(p.Properties["Value"]) != `{"Fn::GetAtt":["HeadNode","PrivateIp"]}` {
			t.Fatalf("HeadAddressParameter = %+v, want an AWS::SSM::Parameter holding HeadNode.PrivateIp", p)
		}
		if strings.Contains(head, "--name \"$PARAM_PREFIX/head-address\"") {
			t.Error("head user data writes head-address itself")
		}
		for _, role := range []string{"HeadNodeRole", "ComputeNodeRole"} {
			for _, st := range statements(t, tpl, role) {
				for _, a := range actions(st) {
					if !strings.HasPrefix(a, "ssm:") || a == "ssm:GetParameter" {
						continue
					}
					res := jsonString(st["Resource"])
					if st["Effect"] == "Allow" && (strings.Contains(res, "head-address") || strings.Contains(res, "/*")) {
						t.Errorf("%s may %s %s", role, a, res)
					}
				}
			}
		}
		// The munge key: created once by the head node, never overwritten (ssm:Overwrite).
		var deny bool
		for _, st := range statements(t, tpl, "HeadNodeRole") {
			if st["Effect"] == "Deny" && slices.Contains(actions(st), "ssm:PutParameter") &&
				jsonString(st["Condition"]) == `{"StringEquals":{"ssm:Overwrite":"true"}}` && strings.Contains(jsonString(st["Resource"]), "munge-key") {
				deny = true
			}
			if slices.Contains(actions(st), "ssm:GetParameter") {
				t.Errorf("head role reads parameters it has no use for: %v", st)
			}
		}
		if !deny || strings.Contains(head, "munge-key\" --type SecureString --overwrite") {
			t.Error("the head role may overwrite the munge key: deny ssm:PutParameter with ssm:Overwrite=true and drop --overwrite")
		}
	})

	t.Run("ARNs as the Service Authorization Reference writes them", func(t *testing.T) {
		// Snapshots and images may belong to any account: their ARNs carry none
		// (list_amazonec2.html, Resource types), so an account there never matches.
		_, raw := loadTemplate(t)
		if m := regexp.MustCompile(`:\$\{AWS::AccountId\}:(snapshot|image)/`).Find(raw); m != nil {
			t.Errorf("template puts an account in a %s ARN", m)
		}
		if !strings.Contains(string(raw), `arn:${AWS::Partition}:ec2:${AWS::Region}::snapshot/*`) {
			t.Error("launch statement lacks the snapshot resource")
		}
	})

	t.Run("release checksum required", func(t *testing.T) {
		p := tpl.Parameters["SlurmEc2ReleaseSHA256"]
		if p.Default != nil {
			t.Errorf("SlurmEc2ReleaseSHA256 has a default %v", p.Default)
		}
		re := regexp.MustCompile(p.AllowedPattern)
		if re.MatchString("") || !re.MatchString(strings.Repeat("ab", 32)) || re.MatchString(strings.Repeat("AB", 32)) {
			t.Errorf("SlurmEc2ReleaseSHA256 pattern %q must require 64 lowercase hex digits", p.AllowedPattern)
		}
		for name, s := range map[string]string{"head": head, "compute": compute} {
			if !strings.Contains(s, "  echo \"$RELEASE_SHA256  /tmp/slurm-ec2.deb\" | sha256sum -c -\n") || strings.Contains(s, `[ -n "$RELEASE_SHA256" ]`) {
				t.Errorf("%s user data does not check the .deb unconditionally", name)
			}
			if !before(s, "sha256sum -c", "apt-get install -y /tmp/slurm-ec2.deb") {
				t.Errorf("%s user data installs the .deb before checking it", name)
			}
		}
	})
}
