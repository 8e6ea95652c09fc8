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

// classes is the one table of EC2 error codes we act on (from "Error codes for the Amazon EC2 API").
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
}

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
