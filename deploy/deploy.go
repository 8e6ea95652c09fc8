// Package deploy holds the deployment artifacts of slurm-ec2 (systemd units, the CloudFormation
// template, the dist Makefile fragment); its tests check that they parse and agree with the code.
package deploy
