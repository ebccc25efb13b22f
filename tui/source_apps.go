package tui

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	"github.com/tether-dev/tether/cluster"
	"github.com/tether-dev/tether/gitops/api/v1alpha1"
	"github.com/tether-dev/tether/gitops/appops"
	"github.com/tether-dev/tether/gitops/fleet"
)

func (s *workbenchSource) MakeChange(ctx context.Context, replicas int) (string, error) {
	return fleet.MakeChange(ctx, s.wb, replicas)
}

func (s *workbenchSource) Agents(ctx context.Context) ([]v1alpha1.Agent, error) {
	hub, err := s.hub()
	if err != nil {
		return nil, err
	}
	dyn, err := s.dynamic(hub.Name)
	if err != nil {
		return nil, err
	}
	list, err := dyn.Resource(v1alpha1.AgentsResource).Namespace(cluster.SystemNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("no Agent API on the hub %s yet (the CRD is not installed): bring the workbench up with u on the Clusters screen", hub.Name)
		}
		return nil, err
	}
	out := make([]v1alpha1.Agent, 0, len(list.Items))
	for i := range list.Items {
		var a v1alpha1.Agent
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &a); err != nil {
			return nil, fmt.Errorf("decode Agent %s: %w", list.Items[i].GetName(), err)
		}
		out = append(out, a)
	}
	return out, nil
}

// apps is the Applications resource of one cluster in namespace ns (""
// is every namespace).
func (s *workbenchSource) apps(name, ns string) (dynamic.ResourceInterface, error) {
	dyn, err := s.dynamic(name)
	if err != nil {
		return nil, err
	}
	return dyn.Resource(v1alpha1.ApplicationsResource).Namespace(ns), nil
}

func (s *workbenchSource) Apps(ctx context.Context, name string) ([]v1alpha1.Application, error) {
	ns := cluster.SystemNamespace
	if hub, err := s.hub(); err == nil && hub.Name == name {
		ns = metav1.NamespaceAll
	}
	res, err := s.apps(name, ns)
	if err != nil {
		return nil, err
	}
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		// A cluster without the GitOps system is normal (nothing installed
		// yet), so say that instead of quoting a 404.
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("no Application API here yet (the CRD is not installed)")
		}
		return nil, err
	}
	out := make([]v1alpha1.Application, 0, len(list.Items))
	for i := range list.Items {
		var app v1alpha1.Application
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &app); err != nil {
			return nil, fmt.Errorf("decode Application %s: %w", list.Items[i].GetName(), err)
		}
		out = append(out, app)
	}
	return out, nil
}

// appOps is the Application operations of one cluster, the same code
// `tether app` runs (gitops/appops), so the two cannot drift apart.
func (s *workbenchSource) appOps(name string) (*appops.Client, error) {
	cfg, err := s.wb.RESTConfig(name)
	if err != nil {
		return nil, err
	}
	dyn, err := s.dynamic(name)
	if err != nil {
		return nil, err
	}
	return appops.New(appops.Options{Config: cfg, Dynamic: dyn, Workbench: s.wb, Cluster: name, CacheDir: s.cacheDir, Logger: s.log, InitiatedBy: "tui",
		ReachRepo: func(ctx context.Context, repoURL string) (string, func(), error) {
			return fleet.ReachRepo(ctx, s.wb, repoURL)
		}})
}

func (s *workbenchSource) Sync(ctx context.Context, name, ns, app string) error {
	c, err := s.appOps(name)
	if err != nil {
		return err
	}
	_, err = c.Sync(ctx, ns, app, appops.SyncRequest{})
	return err
}

func (s *workbenchSource) Refresh(ctx context.Context, name, ns, app string) error {
	c, err := s.appOps(name)
	if err != nil {
		return err
	}
	_, err = c.Refresh(ctx, ns, app)
	return err
}

// Diff is what `tether app diff` computes (gitops/appops): an Application
// on the hub is compared with the spoke it is for, through the spoke's copy.
func (s *workbenchSource) Diff(ctx context.Context, name, ns, app string) (Diff, error) {
	c, err := s.appOps(name)
	if err != nil {
		return Diff{}, err
	}
	d, err := c.Diff(ctx, ns, app, false)
	if err != nil {
		return Diff{}, err
	}
	out := Diff{Revision: d.Revision}
	for _, r := range d.Resources {
		out.Resources = append(out.Resources, ResourceDiff{Resource: r.Resource, Action: r.Action, Unified: r.Unified})
	}
	return out, nil
}
