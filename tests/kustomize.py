"""Render a kustomization: `kubectl kustomize` when it is installed, else a small Python build of it.

The Python build does what deploy/k8s uses, the way kustomize does it: `resources` (files and
directories, each directory built on its own first), `components`, then this level's `namespace`
(on namespaced objects), `labels` (metadata only, as with includeSelectors false), `replicas` and
`images`. Anything else in a kustomization is refused, so the fallback never renders something
kubectl would render differently (tests/test_k8s.py compares the two where kubectl exists).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

KNOWN = {"apiVersion", "kind", "resources", "components", "namespace", "labels", "replicas", "images"}
CLUSTER_SCOPED = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
}
POD_TEMPLATES = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def kubectl() -> str | None:
    return shutil.which("kubectl")


def render_kubectl(path: Path) -> list[dict[str, Any]]:
    out = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def render(path: Path) -> list[dict[str, Any]]:
    """The rendered objects of the kustomization in `path`, with kubectl when present."""
    return render_kubectl(path) if kubectl() else render_python(path)


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _kustomization(path: Path) -> dict[str, Any]:
    k = yaml.safe_load((path / "kustomization.yaml").read_text()) or {}
    unknown = set(k) - KNOWN
    if unknown:
        raise ValueError(f"{path}: the Python build does not do {sorted(unknown)}; install kubectl")
    return k


def render_python(path: Path) -> list[dict[str, Any]]:
    k = _kustomization(path)
    objs: list[dict[str, Any]] = []
    for entry in k.get("resources", []):
        target = (path / entry).resolve()
        objs += render_python(target) if target.is_dir() else _load(target)
    for entry in k.get("components", []):
        comp = (path / entry).resolve()
        ck = _kustomization(comp)
        if ck.get("kind") != "Component":
            raise ValueError(f"{comp} is not a Component")
        objs += [o for r in ck.get("resources", []) for o in _load(comp / r)]
        objs = _transform(objs, ck)
    return _transform(objs, k)


def _transform(objs: list[dict[str, Any]], k: dict[str, Any]) -> list[dict[str, Any]]:
    objs = copy.deepcopy(objs)
    for o in objs:
        meta = o.setdefault("metadata", {})
        if k.get("namespace") and o["kind"] not in CLUSTER_SCOPED:
            meta["namespace"] = k["namespace"]
        for label in k.get("labels", []):
            if label.get("includeSelectors") or label.get("includeTemplates"):
                raise ValueError("labels with includeSelectors/includeTemplates: install kubectl")
            meta.setdefault("labels", {}).update(label["pairs"])
        for rep in k.get("replicas", []):
            if o["kind"] in POD_TEMPLATES and meta["name"] == rep["name"]:
                o["spec"]["replicas"] = rep["count"]
        if o["kind"] in POD_TEMPLATES:
            pod = o["spec"]["template"]["spec"]
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                c["image"] = _image(c["image"], k.get("images", []))
    return objs


def _image(image: str, rules: list[dict[str, str]]) -> str:
    name, _, tag = image.partition(":")
    for rule in rules:
        if rule["name"] == name:
            return f"{rule.get('newName', name)}:{rule.get('newTag', tag or 'latest')}"
    return image
