package demo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// Manifest is what the demo takes from install/manifests/kubevs.yaml: the objects that give
// kubevs its identity and rights on the cluster, and the proxier's configuration. The demo
// applies the first and hands the second to kubevs-install, so it runs with exactly the
// rights and settings the DaemonSet would.
type Manifest struct {
	Namespace          *corev1.Namespace
	ServiceAccount     *corev1.ServiceAccount
	ClusterRole        *rbacv1.ClusterRole
	ClusterRoleBinding *rbacv1.ClusterRoleBinding
	// ProxierConfig is the proxier.yaml key of the kubevs-config ConfigMap.
	ProxierConfig string
}

// ParseManifest reads the parts of the kubevs manifest the demo needs and fails if one is
// missing.
func ParseManifest(data []byte) (*Manifest, error) {
	m := &Manifest{}
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, fmt.Errorf("decode document %d: %w", i, err)
		}
		var target any
		switch meta.Kind {
		case "Namespace":
			m.Namespace = &corev1.Namespace{}
			target = m.Namespace
		case "ServiceAccount":
			m.ServiceAccount = &corev1.ServiceAccount{}
			target = m.ServiceAccount
		case "ClusterRole":
			m.ClusterRole = &rbacv1.ClusterRole{}
			target = m.ClusterRole
		case "ClusterRoleBinding":
			m.ClusterRoleBinding = &rbacv1.ClusterRoleBinding{}
			target = m.ClusterRoleBinding
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := yaml.UnmarshalStrict(doc, &cm); err != nil {
				return nil, fmt.Errorf("decode document %d (ConfigMap): %w", i, err)
			}
			if v, ok := cm.Data["proxier.yaml"]; ok {
				m.ProxierConfig = v
			}
			continue
		default:
			continue
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			return nil, fmt.Errorf("decode document %d (%s): %w", i, meta.Kind, err)
		}
	}
	switch {
	case m.Namespace == nil, m.ServiceAccount == nil, m.ClusterRole == nil, m.ClusterRoleBinding == nil:
		return nil, fmt.Errorf("manifest lacks the Namespace, ServiceAccount, ClusterRole or ClusterRoleBinding")
	case m.ProxierConfig == "":
		return nil, fmt.Errorf("manifest lacks the proxier.yaml of the kubevs-config ConfigMap")
	}
	return m, nil
}

// Credentials are the files kubevs-install reads on a node: the service account's token and
// the cluster CA, as a pod's service-account volume holds them.
type Credentials struct {
	TokenFile, CAFile string
}

// applyIdentity creates m's Namespace, ServiceAccount, ClusterRole and ClusterRoleBinding
// (already existing ones are kept), issues a token for the ServiceAccount through the
// TokenRequest API, and writes it and ca into dir.
func applyIdentity(ctx context.Context, c kubernetes.Interface, m *Manifest, ca []byte, dir string) (Credentials, error) {
	ignoreExists := func(what string, err error) error {
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", what, err)
		}
		return nil
	}
	sa := m.ServiceAccount
	if err := ignoreExists("namespace "+m.Namespace.Name, create(ctx, c.CoreV1().Namespaces().Create, m.Namespace)); err != nil {
		return Credentials{}, err
	}
	if err := ignoreExists("service account "+sa.Name, create(ctx, c.CoreV1().ServiceAccounts(sa.Namespace).Create, sa)); err != nil {
		return Credentials{}, err
	}
	if err := ignoreExists("cluster role "+m.ClusterRole.Name, create(ctx, c.RbacV1().ClusterRoles().Create, m.ClusterRole)); err != nil {
		return Credentials{}, err
	}
	if err := ignoreExists("cluster role binding "+m.ClusterRoleBinding.Name, create(ctx, c.RbacV1().ClusterRoleBindings().Create, m.ClusterRoleBinding)); err != nil {
		return Credentials{}, err
	}
	expiry := int64((2 * time.Hour).Seconds())
	tr, err := c.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		return Credentials{}, fmt.Errorf("request token for %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	creds := Credentials{TokenFile: filepath.Join(dir, "token"), CAFile: filepath.Join(dir, "ca.crt")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Credentials{}, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.WriteFile(creds.TokenFile, []byte(tr.Status.Token), 0o600); err != nil {
		return Credentials{}, fmt.Errorf("write token: %w", err)
	}
	if err := os.WriteFile(creds.CAFile, ca, 0o644); err != nil {
		return Credentials{}, fmt.Errorf("write CA: %w", err)
	}
	return creds, nil
}

// create calls a typed client's Create and drops the returned object.
func create[T any](ctx context.Context, fn func(context.Context, T, metav1.CreateOptions) (T, error), obj T) error {
	_, err := fn(ctx, obj, metav1.CreateOptions{})
	return err
}
