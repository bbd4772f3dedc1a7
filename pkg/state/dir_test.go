package state

import "testing"

func TestDefaultDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name    string
		cluster string
		env     map[string]string
		home    string
		want    string
		wantErr bool
	}{
		{"xdg", "prod", map[string]string{"XDG_STATE_HOME": "/srv/state"}, "/home/a", "/srv/state/installer/prod", false},
		{"relative xdg ignored", "prod", map[string]string{"XDG_STATE_HOME": "rel"}, "/home/a", "/home/a/.local/state/installer/prod", false},
		{"home", "prod", nil, "/home/a", "/home/a/.local/state/installer/prod", false},
		{"no home", "prod", nil, "", "", true},
		{"no name", "", nil, "/home/a", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DefaultDir(tt.cluster, env(tt.env), tt.home)
			if (err != nil) != tt.wantErr || string(got) != tt.want {
				t.Fatalf("DefaultDir = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestDirLayout pins the state directory's layout: operators, scripts and older installers read it.
func TestDirLayout(t *testing.T) {
	d := Dir("/srv/state/prod")
	for _, tt := range []struct{ got, want string }{
		{d.String(), "/srv/state/prod"},
		{d.PKI(), "/srv/state/prod/pki"},
		{d.Secrets(), "/srv/state/prod/secrets"},
		{d.Secret("vrrp-password"), "/srv/state/prod/secrets/vrrp-password"},
		{d.AdminConf(), "/srv/state/prod/admin.conf"},
		{d.Snapshots(), "/srv/state/prod/etcd-snapshots"},
		{d.Logs(), "/srv/state/prod/logs"},
		{d.Lock(), "/srv/state/prod/lock"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}
