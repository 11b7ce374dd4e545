"""cloud-init user-data: one template for AWS and OpenStack, validated by cloud-init and nft themselves."""

from __future__ import annotations

import base64
import re
import subprocess

import pytest
import yaml

from squall.errors import InvalidInput
from squall.programs.cloud_init import UserData, check_no_secrets, firewall_rules, render_user_data
from squall.runtime import runtime_path, runtime_sha256

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeButWellFormedPublicKey controller@squall"
VARIANTS = {
    "job": UserData("job", "acme-main-job-1", KEY, "10.20.0.0/18", ("10.20.192.10/32", "192.0.2.7/32")),
    "head": UserData("head", "acme-main", KEY),
    "pool": UserData("pool", "acme-main-gpu", KEY, job_user="svc-squall"),
    "bank": UserData("bank", "zephy-main-cfd", KEY),
    "head-nfs": UserData("head", "zephy-main", KEY, nfs_export_to="192.168.10.0/24"),
}


def schema_check(tmp_path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "user-data.yaml"
    path.write_text(text)
    return subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_is_valid_cloud_config(validators, tmp_path, variant):
    text = render_user_data(VARIANTS[variant])
    proc = schema_check(tmp_path, text)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = yaml.safe_load(text)
    runtime = next(f for f in doc["write_files"] if f["path"].endswith("/squall_runtime.py"))
    assert base64.b64decode(runtime["content"]) == runtime_path().read_bytes()
    assert runtime_sha256() in text
    assert doc["users"][0]["lock_passwd"] is True and "sudo" not in doc["users"][0]
    has_firewall = any(f["path"] == "/etc/squall/firewall.nft" for f in doc["write_files"])
    assert has_firewall is (variant == "job")


def test_the_validator_does_catch_a_broken_document(validators, tmp_path):
    broken = render_user_data(VARIANTS["head"]).replace("package_update: false", "package_update: [not, a, bool]")
    assert schema_check(tmp_path, broken).returncode != 0


def test_job_firewall_is_a_valid_rule_set_with_no_egress_beyond_the_job(validators, tmp_path):
    rules = firewall_rules("10.20.0.0/18", ("10.20.192.10/32",))
    path = tmp_path / "rules.nft"
    path.write_text(rules)
    proc = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    output_chain = rules.split("chain output")[1]
    assert "policy drop" in output_chain
    assert re.findall(r"ip daddr (\S+) accept", output_chain) == ["10.20.0.0/18"]
    assert "ip saddr 10.20.192.10/32 tcp dport 22 accept" in rules
    path.write_text(rules.replace("10.20.0.0/18", "10.20.0.0/99"))
    assert subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True).returncode != 0


def test_firewall_refuses_the_whole_internet():
    with pytest.raises(InvalidInput, match="0.0.0.0/0"):
        firewall_rules("10.0.0.0/16", ("0.0.0.0/0",))


@pytest.mark.parametrize("secret", [
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "AKIAABCDEFGHIJKLMNOP",
    "password: hunter2",
])
def test_nothing_credential_like_gets_through(secret):
    with pytest.raises(InvalidInput, match="credential-like"):
        check_no_secrets(f"#cloud-config\nruncmd:\n  - echo {secret}\n")
    encoded = base64.b64encode(secret.encode()).decode()
    with pytest.raises(InvalidInput, match="credential-like"):
        check_no_secrets(f"write_files:\n  - content: {encoded}\n")


def test_bad_inputs_are_named():
    with pytest.raises(InvalidInput, match="controller_public_key"):
        render_user_data(UserData("head", "x", "-----BEGIN OPENSSH PRIVATE KEY-----"))
    with pytest.raises(InvalidInput, match="job_user"):
        render_user_data(UserData("head", "x", KEY, job_user="root; rm -rf /"))
    with pytest.raises(InvalidInput, match="intra_cidr and ssh_from"):
        render_user_data(UserData("job", "x", KEY))
