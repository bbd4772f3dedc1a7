// Command lab-cloud-controller-manager is the lab's external cloud-controller-manager: upstream's
// cloud-provider app with its fake cloud, configured to behave like a cloud that knows every node.
// It initialises nodes (removes the uninitialized taint, sets providerID lab://<node>, zone, region,
// instance type and addresses from the node itself) and never deletes them. Run it with
// --cloud-provider=lab.
package main

import (
	"context"
	"io"
	"os"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/cloud-provider/app"
	"k8s.io/cloud-provider/app/config"
	"k8s.io/cloud-provider/fake"
	"k8s.io/cloud-provider/names"
	"k8s.io/cloud-provider/options"
	"k8s.io/component-base/cli"
	cliflag "k8s.io/component-base/cli/flag"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/klog/v2"
)

const (
	providerName = "lab"
	// providedNodeIPAnnotation carries the kubelet's --node-ip; the cloud node controller insists the
	// cloud reports that address back.
	providedNodeIPAnnotation = "alpha.kubernetes.io/provided-node-ip"
)

func main() {
	cloudprovider.RegisterCloudProvider(providerName, func(io.Reader) (cloudprovider.Interface, error) {
		return newCloud(), nil
	})
	opts, err := options.NewCloudControllerManagerOptions()
	if err != nil {
		klog.Fatalf("unable to initialize command options: %v", err)
	}
	// The default initializers keep upstream's controller and client names, so the standard RBAC applies.
	cmd := app.NewCloudControllerManagerCommand(opts, initCloud, app.DefaultInitFuncConstructors,
		names.CCMControllerAliases(), cliflag.NamedFlagSets{}, wait.NeverStop)
	os.Exit(cli.Run(cmd))
}

func newCloud() *fake.Cloud {
	return &fake.Cloud{
		Provider: providerName,
		// With false the node-lifecycle controller deletes every node.
		ExistsByProviderID: true,
		EnableInstancesV2:  true,
		// No routes, load balancers or clusters in the lab; the controllers that need them stay idle.
		DisableRoutes: true, DisableLoadBalancers: true, DisableClusters: true,
		Zone:                     cloudprovider.Zone{FailureDomain: "lab-a", Region: "lab"},
		OverrideInstanceMetadata: instanceMetadata,
	}
}

// instanceMetadata answers from the Node itself: the fake's own answer is one global address list.
func instanceMetadata(_ context.Context, node *v1.Node) (*cloudprovider.InstanceMetadata, error) {
	addrs := []v1.NodeAddress{{Type: v1.NodeHostName, Address: node.Name}}
	if ip := node.Annotations[providedNodeIPAnnotation]; ip != "" {
		addrs = append([]v1.NodeAddress{{Type: v1.NodeInternalIP, Address: ip}}, addrs...)
	} else {
		for _, a := range node.Status.Addresses {
			if a.Type == v1.NodeInternalIP {
				addrs = append([]v1.NodeAddress{a}, addrs...)
				break
			}
		}
	}
	return &cloudprovider.InstanceMetadata{
		ProviderID:    "lab://" + node.Name,
		InstanceType:  "lab-vm",
		NodeAddresses: addrs,
		Zone:          "lab-a",
		Region:        "lab",
	}, nil
}

func initCloud(c *config.CompletedConfig) cloudprovider.Interface {
	shared := c.ComponentConfig.KubeCloudShared.CloudProvider
	cloud, err := cloudprovider.InitCloudProvider(shared.Name, shared.CloudConfigFile)
	if err != nil {
		klog.Fatalf("cloud provider could not be initialized: %v", err)
	}
	if cloud == nil {
		klog.Fatalf("cloud provider %q is not registered (use --cloud-provider=%s)", shared.Name, providerName)
	}
	return cloud
}
