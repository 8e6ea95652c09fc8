package fleet

import (
	"reflect"
	"slices"
	"testing"
)

// TestEveryCallIsListed: the IAM policy and the CloudFormation head role are built from
// HeadNodeActions, so an EC2 call the code can make but the list lacks is a call AWS denies in
// production while every test against ec2sim passes.
func TestEveryCallIsListed(t *testing.T) {
	for _, iface := range []reflect.Type{reflect.TypeFor[EC2API](), reflect.TypeFor[ConsoleAPI]()} {
		for m := range iface.Methods() {
			if !slices.Contains(HeadNodeActions, m.Name) {
				t.Errorf("%s.%s is called through %s but not in HeadNodeActions: the head node's IAM policy would not allow it", iface.Name(), m.Name, iface.Name())
			}
		}
	}
	for _, act := range TaggedActions {
		if !slices.Contains(HeadNodeActions, act) {
			t.Errorf("TaggedActions lists %s, which HeadNodeActions lacks", act)
		}
	}
}
