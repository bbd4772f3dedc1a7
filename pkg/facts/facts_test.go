package facts

import "testing"

func TestPackageManager(t *testing.T) {
	for _, tt := range []struct {
		pm       PackageManager
		deb, rpm bool
		err      string
	}{
		{Apt, true, false, ""},
		{DNF, false, true, ""},
		{YUM, false, true, ""},
		{"", false, false, `no supported package manager (found "")`},
		{"zypper", false, false, `no supported package manager (found "zypper")`},
	} {
		err := tt.pm.Check()
		if tt.pm.Deb() != tt.deb || tt.pm.RPM() != tt.rpm || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
			t.Errorf("%q: Deb %v, RPM %v, Check %v", tt.pm, tt.pm.Deb(), tt.pm.RPM(), err)
		}
	}
}
