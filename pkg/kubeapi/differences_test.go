package kubeapi

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"installer.dev/installer/lab/testapiserver"
)

// TestDifferencesAgainstRealAPIServer: a dry-run apply names what Apply would create or change,
// object by object (a kind not served yet is to be created), finds nothing after Apply, finds a
// changed ConfigMap by name only, and stores nothing.
func TestDifferencesAgainstRealAPIServer(t *testing.T) {
	srv := testapiserver.Start(t)
	c, err := Connect(srv.Kubeconfig, func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	got, err := c.Differences(ctx, []byte(manifest))
	want := []string{"+ Namespace demo", "+ ConfigMap demo/conf", "+ CustomResourceDefinition widgets.example.com", "+ Widget demo/w"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("before any apply: %q, %v; want %q", got, err, want)
	}
	if _, err := srv.Client.CoreV1().Namespaces().Get(ctx, "demo", metav1.GetOptions{}); err == nil {
		t.Fatal("Differences created namespace demo")
	}
	if n, err := c.Apply(ctx, []byte(manifest)); err != nil || n != 4 {
		t.Fatalf("apply: %d changed, %v", n, err)
	}
	if got, err := c.Differences(ctx, []byte(manifest)); err != nil || len(got) != 0 {
		t.Fatalf("after apply: %q, %v; want none", got, err)
	}
	changedManifest := []byte(strings.Replace(manifest, "key: one", "key: two", 1))
	got, err = c.Differences(ctx, changedManifest)
	want = []string{"~ ConfigMap demo/conf"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("changed ConfigMap: %q, %v; want %q", got, err, want)
	}
	cm, err := srv.Client.CoreV1().ConfigMaps("demo").Get(ctx, "conf", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["key"] != "one" {
		t.Fatalf("the dry run stored key=%q, want the applied one", cm.Data["key"])
	}
	// What Differences named is what Apply changes.
	if n, err := c.Apply(ctx, changedManifest); err != nil || n != 1 {
		t.Fatalf("apply the changed ConfigMap: %d changed, %v", n, err)
	}
	if got, err := c.Differences(ctx, changedManifest); err != nil || len(got) != 0 {
		t.Fatalf("after the second apply: %q, %v; want none", got, err)
	}
}
