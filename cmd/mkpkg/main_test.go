package main

import (
	"strings"
	"testing"
	"time"
)

func TestPackageInfo(t *testing.T) {
	tests := map[string]struct {
		o                 Options
		wantErr, wantVers string
	}{
		"deb release":         {o: Options{Format: "deb", Arch: "amd64", Version: "v1.2.3"}, wantVers: "1.2.3"},
		"rpm drops the dash":  {o: Options{Format: "rpm", Arch: "arm64", Version: "0.0~abc-dirty"}, wantVers: "0.0~abc.dirty"},
		"deb keeps the dash":  {o: Options{Format: "deb", Arch: "arm64", Version: "0.0~abc-dirty"}, wantVers: "0.0~abc-dirty"},
		"unknown format":      {o: Options{Format: "apk", Arch: "amd64", Version: "1"}, wantErr: "use deb or rpm"},
		"unknown arch":        {o: Options{Format: "deb", Arch: "386", Version: "1"}, wantErr: "use amd64 or arm64"},
		"version not a digit": {o: Options{Format: "rpm", Arch: "amd64", Version: "dev"}, wantErr: "must start with a digit"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.o.Binary, tc.o.Root, tc.o.MTime = "bin", ".", time.Unix(0, 0)
			info, err := packageInfo(tc.o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Version != tc.wantVers {
				t.Errorf("version %q, want %q", info.Version, tc.wantVers)
			}
			var links, conf int
			for _, c := range info.Contents {
				if c.Type == "symlink" {
					links++
				}
				if c.Type == "config|noreplace" {
					conf++
				}
				if c.FileInfo.Owner != "root" || c.FileInfo.Mode&0o022 != 0 && c.Type != "symlink" {
					t.Errorf("%s: owner %s mode %v: must be root's and not group- or world-writable", c.Destination, c.FileInfo.Owner, c.FileInfo.Mode)
				}
			}
			if links != len(SlurmPrograms) || conf != 2 {
				t.Errorf("%d links and %d config files, want %d and 2", links, conf, len(SlurmPrograms))
			}
		})
	}
}
