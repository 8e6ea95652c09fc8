package fleet

import "testing"

func TestPermanentErrors(t *testing.T) {
	tests := map[string]bool{
		"InvalidLaunchTemplateName.NotFoundException": true,
		"InvalidFleetConfiguration":                   true,
		"UnauthorizedOperation":                       true,
		"InvalidAMIID.NotFound":                       true,
		"OptInRequired":                               true,
		"InsufficientInstanceCapacity":                false, // capacity: a cool-down, not a back-off
		"RequestLimitExceeded":                        false, // throttling: retried
		"InternalError":                               false, // EC2's fault: retried
		"RequestFailed":                               false, // no API error (network)
		"":                                            false,
	}
	for code, want := range tests {
		if got := IsPermanent(code); got != want {
			t.Errorf("IsPermanent(%q) = %v, want %v", code, got, want)
		}
	}
}
