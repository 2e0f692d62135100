"""deploy/k8s: every overlay renders, validates against the Kubernetes schemas, and says what the
services need: their modules, health endpoints on the right ports, Redis, budgets, requests, and
transcribers autoscaled on the lag of the `transcriber` group on `segments`.

Rendered with `kubectl kustomize` where it is installed (and then the Python build must agree with
it), else with the Python build of tests/kustomize.py. Built-in kinds are checked with
kubernetes-validate (strict: unknown fields fail); KEDA's ScaledObject, a custom resource, against
the required fields of its CRD (keda.sh/v1alpha1) and the Redis Streams trigger's documented fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from services.__main__ import service_commands
from services.transcriber.worker import TranscriberWorker
from shared.settings import CommonSettings
from tests.kustomize import kubectl, render, render_kubectl, render_python
from tests.util import ROOT

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["dev", "department"]
APP = ["gateway", "vad", "transcriber", "alerts", "archive"]
K8S_VERSIONS = ["1.29", "1.33"]

# keda.sh/v1alpha1 ScaledObject: the parts of its CRD's openAPIV3Schema this project uses, with the
# CRD's `required` lists (spec: scaleTargetRef, triggers; scaleTargetRef: name; trigger: type, metadata
# with string values). Unknown fields fail, as kubectl's strict field validation would.
SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        k: {"type": "string"}
                        for k in ("apiVersion", "kind", "name", "envSourceContainerName")
                    },
                },
                **{
                    k: {"type": "integer", "minimum": 0}
                    for k in (
                        "minReplicaCount",
                        "maxReplicaCount",
                        "pollingInterval",
                        "cooldownPeriod",
                        "idleReplicaCount",
                    )
                },
                "advanced": {"type": "object"},
                "fallback": {"type": "object"},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                            "authenticationRef": {"type": "object", "required": ["name"]},
                        },
                    },
                },
            },
        },
    },
}
# The redis-streams trigger's metadata fields (KEDA's scaler documentation).
REDIS_STREAMS_FIELDS = {
    "address", "addressFromEnv", "host", "hostFromEnv", "port", "portFromEnv", "usernameFromEnv",
    "passwordFromEnv", "stream", "consumerGroup", "pendingEntriesCount", "streamLength", "lagCount",
    "activationLagCount", "enableTLS", "unsafeSsl", "databaseIndex",
}  # fmt: skip


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(K8S / "overlays" / request.param)


def by_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def container(deploy: dict[str, Any]) -> dict[str, Any]:
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    return c


def test_schemas(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    name, objs = overlay
    kinds = {o["kind"] for o in objs}
    assert {"Deployment", "PodDisruptionBudget", "Service", "ConfigMap", "Namespace"} <= kinds
    for o in objs:
        if o["kind"] == "ScaledObject":
            jsonschema.validate(o, SCALED_OBJECT)
            continue
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(o, version, strict=True)  # raises on any error
        assert (
            o["kind"] == "Namespace"
            or o["metadata"]["namespace"] == f"classrec{'-dev' if name == 'dev' else ''}"
        )


def test_a_broken_manifest_fails_validation() -> None:
    """The validation above can fail: a misspelt field and a missing required one are caught."""
    deploy = by_kind(render(K8S / "overlays" / "dev"), "Deployment")["gateway"]
    bad = {**deploy, "spec": {**deploy["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)
    so = by_kind(render(K8S / "overlays" / "department"), "ScaledObject")["transcriber"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**so, "spec": {"triggers": so["spec"]["triggers"]}}, SCALED_OBJECT)


@pytest.mark.skipif(
    kubectl() is None, reason="kubectl not installed: nothing to compare the Python build with"
)
@pytest.mark.parametrize("name", OVERLAYS)
def test_python_build_matches_kubectl(name: str) -> None:
    def keyed(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(o["kind"], o["metadata"]["name"]): o for o in objs}

    assert keyed(render_python(K8S / "overlays" / name)) == keyed(render_kubectl(K8S / "overlays" / name))


def test_every_service_with_its_module_probes_and_config(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    deploys = by_kind(objs, "Deployment")
    assert set(deploys) == set(APP)
    modules = {cmd[2] for cmd in service_commands(1, archive=True).values()}
    assert {f"services.{name}" for name in APP} == modules, "every service make run starts, and no other"
    config = by_kind(objs, "ConfigMap")["classrec-config"]["data"]
    metrics_port = int(config["METRICS_PORT"])
    for name in APP:
        c = container(deploys[name])
        assert c["command"] == ["python", "-m", f"services.{name}"] and c["command"][2] in modules
        refs = [next(iter(src.values()))["name"] for src in c["envFrom"]]
        assert refs == ["classrec-config", "classrec-secrets"], "the Secret's REDIS_URL wins over defaults"
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        health = c["readinessProbe"]["httpGet"]
        assert health["path"] == "/healthz"
        if name == "gateway":
            env = {e["name"]: e["value"] for e in c["env"]}
            assert ports[health["port"]] == int(env["PORT"]) == 8080
        else:  # workers: /metrics and /healthz on METRICS_PORT, also for liveness and startup
            assert ports[health["port"]] == metrics_port
            for probe in ("livenessProbe", "startupProbe"):
                assert c[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}, (name, probe)
        req, lim = c["resources"]["requests"], c["resources"]["limits"]
        assert {"cpu", "memory"} <= set(req) and "memory" in lim
        assert quantity(lim["memory"]) >= 2 * quantity(req["memory"]), name
        security = deploys[name]["spec"]["template"]["spec"]["securityContext"]
        assert security["runAsNonRoot"] and security["runAsUser"] == 10001  # the image's user


def test_budgets_select_their_pods(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    deploys, budgets = by_kind(objs, "Deployment"), by_kind(objs, "PodDisruptionBudget")
    assert set(budgets) >= set(APP)
    for name, pdb in budgets.items():
        target = deploys.get(name) or by_kind(objs, "StatefulSet")[name]
        labels = target["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        # One pod at a time, whatever the replica count: a budget never blocks a node drain.
        assert pdb["spec"] == {"maxUnavailable": 1, "selector": pdb["spec"]["selector"]}, name
    service = by_kind(objs, "Service")["gateway"]
    assert (
        service["spec"]["selector"].items()
        <= deploys["gateway"]["spec"]["template"]["metadata"]["labels"].items()
    )


def test_dev_runs_its_own_redis_and_postgres() -> None:
    objs = render(K8S / "overlays" / "dev")
    redis = by_kind(objs, "StatefulSet")["redis"]
    c = container(redis)
    assert c["command"][c["command"].index("--appendonly") + 1] == "yes"
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] in {
        m["name"] for m in c["volumeMounts"]
    }
    secret = by_kind(objs, "Secret")["classrec-secrets"]["stringData"]
    service = by_kind(objs, "Service")["redis"]
    assert secret["REDIS_URL"] == f"redis://redis:{service['spec']['ports'][0]['port']}/0"
    postgres = container(by_kind(objs, "StatefulSet")["postgres"])
    env = {e["name"]: e for e in postgres["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "classrec-secrets",
        "key": "POSTGRES_PASSWORD",
    }
    port = by_kind(objs, "Service")["postgres"]["spec"]["ports"][0]["port"]
    user, db = env["POSTGRES_USER"]["value"], env["POSTGRES_DB"]["value"]
    assert secret["DATABASE_URL"] == f"postgresql://{user}:{secret['POSTGRES_PASSWORD']}@postgres:{port}/{db}"
    assert {d["spec"]["replicas"] for d in by_kind(objs, "Deployment").values()} == {1}
    assert "ScaledObject" not in {o["kind"] for o in objs}


def test_department_autoscales_transcribers_on_segments_lag() -> None:
    objs = render(K8S / "overlays" / "department")
    kinds = {o["kind"] for o in objs}
    assert "StatefulSet" not in kinds and "Secret" not in kinds, "the department's own Redis and database"
    so = by_kind(objs, "ScaledObject")["transcriber"]
    spec = so["spec"]
    target = by_kind(objs, "Deployment")[spec["scaleTargetRef"]["name"]]
    assert target["metadata"]["name"] == "transcriber" and spec["scaleTargetRef"]["kind"] == "Deployment"
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "redis-streams" and set(meta) <= REDIS_STREAMS_FIELDS
    assert meta["stream"] == CommonSettings().segments_stream == "segments"
    assert meta["consumerGroup"] == TranscriberWorker.group == "transcriber"
    assert int(meta["lagCount"]) >= 1 and "activationLagCount" in meta  # scaled on the group's lag
    assert "pendingEntriesCount" not in meta and "streamLength" not in meta
    # The address comes from the scale target's environment: the Secret every service reads.
    assert meta["addressFromEnv"] == "REDIS_ADDRESS"
    dev_secret = by_kind(render(K8S / "overlays" / "dev"), "Secret")["classrec-secrets"]["stringData"]
    assert dev_secret["REDIS_ADDRESS"] == dev_secret["REDIS_URL"].removeprefix("redis://").split("/")[0]
    assert {"name": "classrec-secrets"} in [src.get("secretRef") for src in container(target)["envFrom"]]
    deploys = by_kind(objs, "Deployment")
    assert deploys["gateway"]["spec"]["replicas"] == deploys["vad"]["spec"]["replicas"] == 2
    ingress = by_kind(objs, "Ingress")["classrec"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "gateway"


def quantity(q: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3}
    for suffix, factor in units.items():
        if q.endswith(suffix):
            return float(q[: -len(suffix)]) * factor
    return float(q)


def test_python_build_refuses_what_it_does_not_do(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\npatches: []\n")
    with pytest.raises(ValueError, match="patches"):
        render_python(tmp_path)
