package main

// volume-provisioner: the local cluster's dynamic provisioner. The cluster has one node, so a
// PersistentVolume is a directory on it: for each claim of the StorageClass this program serves it
// makes a directory under --root and a hostPath PersistentVolume bound to the claim; when such a
// volume is released it deletes both (reclaim policy Delete). The directory is world-writable, as
// with Rancher's local-path provisioner: a hostPath volume ignores the pod's fsGroup, and the
// charts' pods run as non-root users of their own.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// provisionerName is the StorageClass's provisioner field; the class is created by the cluster.
const provisionerName = "localcluster.jobworker.io/host-path"

func runVolumeProvisioner() int {
	flags := flag.NewFlagSet("volume-provisioner", flag.ExitOnError)
	kubeconfig := flags.String("kubeconfig", "", "kubeconfig of the provisioner's user")
	root := flags.String("root", "", "the directory that holds the volumes")
	node := flags.String("node", "", "the name of the node the volumes are on")
	interval := flags.Duration("interval", time.Second, "how often claims and volumes are looked at")
	_ = flags.Parse(os.Args[1:])
	if *kubeconfig == "" || *root == "" || *node == "" {
		fmt.Fprintln(os.Stderr, "volume-provisioner: --kubeconfig, --root and --node are required")
		return 2
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.ErrorS(err, "reading the kubeconfig")
		return 1
	}
	client := kubernetes.NewForConfigOrDie(config)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	p := provisioner{client: client, root: *root, node: *node}
	klog.InfoS("serving", "provisioner", provisionerName, "root", *root)
	// Polling keeps this small: claims are few, and a second's delay does not matter to a test.
	for ctx.Err() == nil {
		if err := p.reconcile(ctx); err != nil {
			klog.ErrorS(err, "reconciling")
		}
		select {
		case <-ctx.Done():
		case <-time.After(*interval):
		}
	}
	return 0
}

type provisioner struct {
	client kubernetes.Interface
	root   string
	node   string
}

func (p provisioner) reconcile(ctx context.Context) error {
	classes, err := p.client.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	served := map[string]bool{}
	for _, class := range classes.Items {
		if class.Provisioner == provisionerName {
			served[class.Name] = true
		}
	}
	claims, err := p.client.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range claims.Items {
		claim := &claims.Items[i]
		class := claim.Spec.StorageClassName
		if claim.Spec.VolumeName == "" && class != nil && served[*class] && claim.DeletionTimestamp == nil {
			if err := p.provision(ctx, claim); err != nil {
				klog.ErrorS(err, "provisioning", "claim", klog.KObj(claim))
			}
		}
	}
	volumes, err := p.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range volumes.Items {
		volume := &volumes.Items[i]
		if volume.Annotations["pv.kubernetes.io/provisioned-by"] == provisionerName &&
			volume.Status.Phase == corev1.VolumeReleased {
			if err := p.remove(ctx, volume); err != nil {
				klog.ErrorS(err, "deleting", "volume", volume.Name)
			}
		}
	}
	return nil
}

func (p provisioner) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	name := "pvc-" + string(claim.UID)
	directory := filepath.Join(p.root, name)
	if err := os.MkdirAll(directory, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(directory, 0o777); err != nil { // MkdirAll's mode is subject to the umask
		return err
	}
	hostPathType := corev1.HostPathDirectory
	volume := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": provisionerName},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      claim.Spec.Resources.Requests,
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              *claim.Spec.StorageClassName,
			VolumeMode:                    claim.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: directory, Type: &hostPathType},
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{p.node},
				}}}},
			}},
		},
	}
	_, err := p.client.CoreV1().PersistentVolumes().Create(ctx, volume, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err == nil {
		klog.InfoS("provisioned", "claim", klog.KObj(claim), "volume", name)
	}
	return err
}

func (p provisioner) remove(ctx context.Context, volume *corev1.PersistentVolume) error {
	path := volume.Spec.HostPath.Path
	if !strings.HasPrefix(path, p.root+string(filepath.Separator)) {
		return fmt.Errorf("volume %s is outside %s: left alone", volume.Name, p.root)
	}
	if err := os.RemoveAll(path); err != nil {
		return err
	}
	err := p.client.CoreV1().PersistentVolumes().Delete(ctx, volume.Name, metav1.DeleteOptions{})
	if err == nil || apierrors.IsNotFound(err) {
		klog.InfoS("deleted", "volume", volume.Name)
		return nil
	}
	return err
}
