"""What the Kubernetes programs render, against the real schemas and checkov's Kubernetes checks.

The Indexed Job does not make ``up`` wait for it (``pulumi.com/skipAwait``):
the site watches it. Its deadlines come from the walltime; its provider is
pinned to the site's kubeconfig context. The GPU device plugin is bounded
(resources, node selector, seccomp, no network) and does not crash-loop on a
node without a driver.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.programs.capture import evaluate_stack, stack_config

CHECKOV_VENV = Path("/var/tmp/squall-tools/checkov-venv")  # its own venv: checkov pins an older `packaging`
# checkov's findings we accept, each with why (the README lists them too). Offline, checkov gives no
# severities, so every other finding fails the test, whatever its level.
ACCEPTED = {
    ("DaemonSet", "CKV_K8S_8"): "the NVIDIA device plugin serves no health endpoint; the kubelet re-registers it",
    ("DaemonSet", "CKV_K8S_9"): "the NVIDIA device plugin serves no readiness endpoint",
    ("DaemonSet", "CKV_K8S_23"): "the device plugin must run as root to create its socket in the kubelet's folder",
    ("DaemonSet", "CKV_K8S_40"): "the same: root, not a high UID",
    ("DaemonSet", "CKV_K8S_43"): "NVIDIA publishes the plugin by tag; the operator may pin a digest",
    ("Job", "CKV_K8S_43"): "the job's image is the user's own reference, used as given (a digest works)",
    ("Pod", "CKV_K8S_43"): "the stager runs the job's own image (the same reference)",
    ("Pod", "CKV_K8S_8"): "the stager only sleeps; the site checks it is Running before each use",
    ("Pod", "CKV_K8S_9"): "the same: nothing is served, the site execs into it",
}


def plain(value):
    """The mocks hand numbers back as floats; the API server (and checkov) see integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def manifests(stack: str, **squall: object) -> list[dict]:
    return [plain(json.loads(json.dumps({"apiVersion": r.props["apiVersion"], "kind": r.props["kind"], **{
        k: v for k, v in r.props.items() if k not in ("apiVersion", "kind")}})))
        for r in evaluate_stack(stack, **squall).resources if r.type.startswith("kubernetes:")]


def of_kind(documents: list[dict], kind: str) -> list[dict]:
    return [d for d in documents if d["kind"] == kind]


def lab_job(**fields: object) -> dict:
    return {**stack_config("lab.job.example")["squall:job"], **fields}


def test_the_indexed_job_does_not_hold_up_and_its_deadlines_follow_the_walltime():
    job = of_kind(manifests("lab.job.example", job=lab_job(walltime=900, tasks=8, nodes=2)), "Job")[0]
    assert job["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    assert job["spec"]["template"]["spec"]["activeDeadlineSeconds"] == 900  # each task
    assert job["spec"]["activeDeadlineSeconds"] == 4 * (900 + 120)  # 8 tasks, 2 at a time
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "scratch", "mountPath": "/tmp"} in container["volumeMounts"]


def test_the_job_stack_provider_is_pinned_to_the_sites_context():
    graph = evaluate_stack("lab.job.example", job=lab_job(kube_context="lab-prod"))
    providers = [r for r in graph.resources if r.type == "pulumi:providers:kubernetes"]
    assert [p.props["context"] for p in providers] == ["lab-prod"]
    pinned = {name for name, ref in graph.providers.items() if "::" in ref and providers[0].name in ref}
    assert {r.name for r in graph.resources if r.type.startswith("kubernetes:")} <= pinned
    unpinned = evaluate_stack("lab.job.example")
    assert not [r for r in unpinned.resources if r.type == "pulumi:providers:kubernetes"]


def test_the_device_plugin_is_bounded_and_survives_a_node_without_a_driver():
    documents = manifests("lab.org.main")
    plugin = of_kind(documents, "DaemonSet")[0]["spec"]["template"]["spec"]
    container = plugin["containers"][0]
    assert {"name": "FAIL_ON_INIT_ERROR", "value": "false"} in container["env"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert plugin["nodeSelector"] and plugin["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    policies = of_kind(documents, "NetworkPolicy")
    assert any(p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name") == "nvidia-device-plugin"
               and p["spec"]["policyTypes"] == ["Ingress", "Egress"] and "egress" not in p["spec"] for p in policies)


@pytest.mark.parametrize("stack, job", [("lab.org.main", None), ("lab.job.example", {}),
                                        ("lab.job.example", {"volume_gib": 3})])
def test_every_object_passes_kubernetes_validate(stack, job):
    for document in manifests(stack, **({"job": lab_job(**job)} if job is not None else {})):
        kubernetes_validate.validate(document, "1.30", strict=True)


@pytest.fixture(scope="session")
def checkov() -> Path:
    """checkov from PyPI in a venv of its own (made once per machine)."""
    binary = CHECKOV_VENV / "bin" / "checkov"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
        subprocess.run([str(CHECKOV_VENV / "bin" / "pip"), "install", "-q", "checkov>=3.2"], check=True,
                       timeout=900)
    return binary


def test_checkov_finds_nothing_beyond_the_accepted_list(checkov, tmp_path):
    documents = manifests("lab.org.main") + manifests("lab.job.example", job=lab_job(volume_gib=3))
    assert {"PersistentVolumeClaim", "Pod", "Job", "DaemonSet"} <= {d["kind"] for d in documents}
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    proc = subprocess.run([str(checkov), "-f", str(path), "--framework", "kubernetes", "-o", "json", "--quiet"],
                          capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"}, timeout=600)
    report = json.loads(proc.stdout)
    assert report["summary"]["passed"] > 20  # it did look
    found = {(c["resource"].split(".", 1)[0], c["check_id"]) for c in report["results"]["failed_checks"]}
    assert found - set(ACCEPTED) == set(), found - set(ACCEPTED)


def test_checkov_would_catch_a_privileged_job(checkov, tmp_path):
    documents = manifests("lab.job.example")
    job = of_kind(documents, "Job")[0]
    job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    proc = subprocess.run([str(checkov), "-f", str(path), "--framework", "kubernetes", "-o", "json", "--quiet"],
                          capture_output=True, text=True, timeout=600)
    failed = {c["check_id"] for c in json.loads(proc.stdout)["results"]["failed_checks"]}
    assert "CKV_K8S_16" in failed  # "Container should not be privileged"
