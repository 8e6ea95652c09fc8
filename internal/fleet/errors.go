package fleet

import (
	"context"
	"errors"

	"github.com/aws/smithy-go"
)

// Class groups EC2 error codes by what slurm-ec2 does about them.
type Class int

const (
	ClassOther      Class = iota
	ClassCapacity         // no capacity now: nodes DOWN with the code, group cools down
	ClassThrottle         // retried by the SDK; if it still fails, nodes DOWN without a cool-down
	ClassNotFound         // the thing is gone already
	ClassPermission       // IAM or credentials: an admin must act
	ClassConfig           // the request is wrong: an admin must fix the configuration
)

// classes is the one table of EC2 error codes we act on (from "Error codes for the Amazon EC2 API",
// https://docs.aws.amazon.com/ec2/latest/devguide/errors-overview.html: its common client errors
// and the client errors of RunInstances and CreateFleet).
var classes = map[string]Class{
	"InsufficientInstanceCapacity":                ClassCapacity,
	"InsufficientHostCapacity":                    ClassCapacity,
	"InsufficientReservedInstanceCapacity":        ClassCapacity,
	"InsufficientCapacity":                        ClassCapacity,
	"InsufficientFreeAddressesInSubnet":           ClassCapacity,
	"SpotMaxPriceTooLow":                          ClassCapacity,
	"MaxSpotInstanceCountExceeded":                ClassCapacity,
	"InstanceLimitExceeded":                       ClassCapacity,
	"VcpuLimitExceeded":                           ClassCapacity,
	"UnfulfillableCapacity":                       ClassCapacity,
	"RequestLimitExceeded":                        ClassThrottle,
	"Throttling":                                  ClassThrottle,
	"ThrottlingException":                         ClassThrottle,
	"InvalidInstanceID.NotFound":                  ClassNotFound,
	"UnauthorizedOperation":                       ClassPermission,
	"AuthFailure":                                 ClassPermission,
	"InvalidClientTokenId":                        ClassPermission,
	"SignatureDoesNotMatch":                       ClassPermission,
	"InvalidLaunchTemplateName.NotFoundException": ClassConfig,
	"InvalidLaunchTemplateId.NotFound":            ClassConfig,
	"InvalidLaunchTemplateId.Malformed":           ClassConfig,
	"InvalidSubnetID.NotFound":                    ClassConfig,
	"InvalidParameterValue":                       ClassConfig,
	"InvalidParameterCombination":                 ClassConfig,
	"InvalidFleetConfiguration":                   ClassConfig,
	"MissingParameter":                            ClassConfig,
	// Retrying cannot fix these either: the image, key pair, security group or instance profile
	// the launch template names is gone or wrong, or the account may not launch at all.
	"InvalidLaunchTemplateName.MalformedException": ClassConfig,
	"InvalidAMIID.NotFound":                        ClassConfig,
	"InvalidAMIID.Malformed":                       ClassConfig,
	"InvalidAMIID.Unavailable":                     ClassConfig,
	"InvalidKeyPair.NotFound":                      ClassConfig,
	"InvalidGroup.NotFound":                        ClassConfig,
	"InvalidSecurityGroupID.NotFound":              ClassConfig,
	"InvalidParameter":                             ClassConfig,
	"Unsupported":                                  ClassConfig,
	"OptInRequired":                                ClassPermission,
	"PendingVerification":                          ClassPermission,
	"Blocked":                                      ClassPermission,
}

// Permanent reports whether retrying the same request cannot succeed until someone changes the
// configuration, the launch template or the account (permission and configuration errors).
// slurm-ec2 backs a node group off after such an error instead of calling CreateFleet again for
// every job (backoff.go in internal/burst).
func (c Class) Permanent() bool { return c == ClassPermission || c == ClassConfig }

// IsPermanent classifies an EC2 error code as Permanent.
func IsPermanent(code string) bool { return ClassOf(code).Permanent() }

// ClassOf classifies an EC2 error code.
func ClassOf(code string) Class { return classes[code] }

// ErrorCode returns the EC2 error code of err, or a short description when it is not an API error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "Timeout"
	case errors.Is(err, context.Canceled):
		return "Canceled"
	}
	return "RequestFailed"
}
