package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"installer.dev/installer/pkg/phases"
)

// kubeconfig prints the admin kubeconfig, fetching it from the first control plane when the state
// directory does not have it, or merges it into ~/.kube/config.
func (a *app) kubeconfig(ctx context.Context, merge bool) error {
	ls, err := a.loadSpec()
	if err != nil {
		return err
	}
	path := ls.StateDir.AdminConf()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if errs := a.checkEnvironment(ls); errs != nil {
			return errs
		}
		s, err := a.startSession(ctx, ls, "kubeconfig", nil, nil, false, false)
		if err != nil {
			return err
		}
		err = a.execute(ctx, s, []phases.Phase{phases.Connect{}, phases.GatherFacts{}, phases.ClusterIdentity{Policy: phases.PKIIfPresent}, phases.AdminKubeconfig{}})
		s.Close()
		if err != nil {
			return err
		}
		data, err = os.ReadFile(path)
		if err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if !merge {
		_, err := a.streams.Out.Write(data)
		return err
	}
	target := filepath.Join(a.env.Home, ".kube", "config")
	if kc := a.env.Getenv("KUBECONFIG"); kc != "" {
		target = filepath.SplitList(kc)[0]
	}
	name := ls.Cluster.Metadata.Name
	if err := mergeKubeconfig(target, data, name); err != nil {
		return err
	}
	fmt.Fprintf(a.streams.Err, "added context %q to %s\n", name, target)
	return nil
}

// mergeKubeconfig adds the admin kubeconfig's cluster, user and context to target under the
// cluster's name (replacing entries of that name), keeping everything else, and writes it 0600.
func mergeKubeconfig(target string, admin []byte, name string) error {
	in, err := clientcmd.Load(admin)
	if err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	cur, ok := in.Contexts[in.CurrentContext]
	if !ok {
		return errors.New("admin kubeconfig has no current context")
	}
	out := clientcmdapi.NewConfig()
	if existing, err := os.ReadFile(target); err == nil {
		if out, err = clientcmd.Load(existing); err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	out.Clusters[name] = in.Clusters[cur.Cluster]
	out.AuthInfos[name+"-admin"] = in.AuthInfos[cur.AuthInfo]
	out.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name + "-admin"}
	if out.CurrentContext == "" {
		out.CurrentContext = name
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*out, target)
}
