"""What "the cluster is up" means: the API server is ready, the node is Ready, and a pod resolves
`kubernetes.default` and a Service of its own by name through the cluster's DNS."""

import json
import subprocess
from pathlib import Path

from localcluster.host import ClusterError
from localcluster.layout import NODE_NAME, Layout

CHECK_NAMESPACE = "localcluster-check"
CHECK_SERVICE = "dns-check"


def kubectl(
    layout: Layout, *args: str, stdin: str | None = None, check: bool = True, kubeconfig: Path | None = None
) -> str:
    command = [
        str(layout.program("kubectl")),
        f"--kubeconfig={kubeconfig or layout.admin_kubeconfig}",
        f"--cache-dir={layout.state}/kubectl-cache",  # not ~/.kube: the cluster leaves nothing there
        *args,
    ]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=300, check=False)
    if check and result.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args[:3])} failed: {result.stderr.strip()[-400:]}")
    return result.stdout


def api_ready(layout: Layout) -> bool:
    return kubectl(layout, "get", "--raw", "/readyz", check=False).strip() == "ok"


def node_ready(layout: Layout) -> bool:
    output = kubectl(layout, "get", "node", NODE_NAME, "-o", "json", check=False)
    if not output:
        return False
    conditions = json.loads(output)["status"].get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def dns_check_manifest(image: str) -> str:
    """A Service and a pod that resolves it and kubernetes.default with the C library's resolver
    (search domains and all, as any program in a pod would), then exits 0."""
    program = (
        "import socket\\n"
        f"for name in ('kubernetes.default', '{CHECK_SERVICE}'):\\n"
        "    print(name, socket.gethostbyname(name))\\n"
    )
    return f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {CHECK_NAMESPACE}
---
apiVersion: v1
kind: Service
metadata:
  name: {CHECK_SERVICE}
  namespace: {CHECK_NAMESPACE}
spec:
  ports:
    - port: 80
---
apiVersion: v1
kind: Pod
metadata:
  name: resolve
  namespace: {CHECK_NAMESPACE}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: resolve
      image: {image}
      imagePullPolicy: Never
      command: ["python3", "-c", "{program}"]
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: [ALL]
"""


def check_dns(layout: Layout, image: str) -> str:
    """Run the check pod; its output (each name with its address), or one line saying what failed."""
    kubectl(layout, "delete", "namespace", CHECK_NAMESPACE, "--ignore-not-found", "--wait=true")
    kubectl(layout, "apply", "-f", "-", stdin=dns_check_manifest(image))
    try:
        kubectl(
            layout,
            "wait",
            "-n",
            CHECK_NAMESPACE,
            "pod/resolve",
            "--timeout=120s",
            "--for=jsonpath={.status.phase}=Succeeded",
        )
        return kubectl(layout, "logs", "-n", CHECK_NAMESPACE, "resolve")
    except ClusterError:
        logs = kubectl(layout, "logs", "-n", CHECK_NAMESPACE, "resolve", check=False)
        raise ClusterError(
            f"a pod could not resolve cluster names: {logs.strip()[-300:] or 'no output'}"
        ) from None
    finally:
        kubectl(layout, "delete", "namespace", CHECK_NAMESPACE, "--wait=false", check=False)
