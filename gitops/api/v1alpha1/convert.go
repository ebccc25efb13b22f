package v1alpha1

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// ApplicationFrom decodes an Application read through a dynamic client or
// an informer (tether has no generated clientset: dynamic clients and
// server-side apply cover what it needs).
func ApplicationFrom(u *unstructured.Unstructured) (*Application, error) {
	var app Application
	err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &app)
	return &app, err
}

// Unstructured encodes the Application for a dynamic client, with its
// apiVersion and kind set.
func (a *Application) Unstructured() (*unstructured.Unstructured, error) {
	a.APIVersion, a.Kind = GroupVersion.String(), "Application"
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(a)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: m}, nil
}
