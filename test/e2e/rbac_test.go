package e2e

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRBACIsEnforced proves the bed's API server authorizes with RBAC, so a component's
// ClusterRole can be tested for real: a user gets exactly what a role bound to it grants.
func TestRBACIsEnforced(t *testing.T) {
	f := New(t)
	ctx := f.Context()
	user := "system:serviceaccount:" + f.Namespace + ":reader"
	c, err := f.Bed.ClientAs(user)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Services(f.Namespace).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list services without a role: %v, want Forbidden", err)
	}

	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: f.Namespace + "-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch"}}},
	}
	if _, err := f.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if _, err := f.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = f.Client.RbacV1().ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{})
		_ = f.Client.RbacV1().ClusterRoles().Delete(ctx, role.Name, metav1.DeleteOptions{})
	})

	f.Eventually("list services once the role is bound", func(ctx context.Context) error {
		_, err := c.CoreV1().Services(f.Namespace).List(ctx, metav1.ListOptions{})
		return err
	})
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "denied"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}
	if _, err := c.CoreV1().Services(f.Namespace).Create(ctx, svc, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create service with a read-only role: %v, want Forbidden", err)
	}
	if _, err := c.CoreV1().Pods(f.Namespace).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list pods with a services-only role: %v, want Forbidden", err)
	}
}
