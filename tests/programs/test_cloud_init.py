"""cloud-init user-data: one template for AWS and OpenStack, validated by cloud-init and nft themselves."""

from __future__ import annotations

import base64
import re
import subprocess

import pytest
import yaml

from squall.errors import InvalidInput
from squall.programs.cloud_init import UserData, check_no_secrets, firewall_rules, render_user_data
from squall.runtime import runtime_path

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeButWellFormedPublicKey controller@squall"
OPERATOR_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorsOwnPublicKeyForTheTest ops@acme"
VARIANTS = {
    "job": UserData("job", "acme-main-job-1", KEY, "10.20.0.0/18", ("10.20.192.10/32", "192.0.2.7/32")),
    "head": UserData("head", "acme-main", KEY),
    "pool": UserData("pool", "acme-main-gpu", KEY, job_user="svc-squall"),
    "bank": UserData("bank", "zephy-main-cfd", KEY),
    "head-nfs": UserData("head", "zephy-main", KEY, nfs_export_to="192.168.10.0/24", operator="default"),
    "head-operator": UserData("head", "acme-main", KEY, operator="ops", operator_public_key=OPERATOR_KEY,
                              boot_script="#!/bin/sh\napt-get install -y htop\n"),
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
    job_account = doc["users"][-1]
    assert job_account["lock_passwd"] is True and "sudo" not in job_account
    assert job_account["ssh_authorized_keys"] == [KEY]
    files = {f["path"]: f for f in doc.get("write_files", [])}
    assert ("/etc/squall/firewall.nft" in files) is (variant == "job")
    assert "squall_runtime" not in text  # the controller pushes the runtime at staging


def test_the_runtime_never_rides_in_user_data():
    """The whole runtime (tens of KB) made every machine's user-data larger than EC2 accepts."""
    from squall.programs.rules import user_data_size

    assert runtime_path().stat().st_size > 16 * 1024  # why it cannot be embedded
    for variant, data in VARIANTS.items():
        size, limit = user_data_size(render_user_data(data), "aws")
        assert size < limit // 4, variant


def test_the_head_keeps_an_operator_account_that_may_sudo():
    default = yaml.safe_load(render_user_data(VARIANTS["head"]))
    assert default["users"][0] == "default"  # the cloud's default user survives (cloud-init drops it otherwise)
    named = yaml.safe_load(render_user_data(VARIANTS["head-operator"]))
    operator = named["users"][0]
    assert operator["name"] == "ops" and operator["sudo"] == "ALL=(ALL) NOPASSWD:ALL"
    assert operator["ssh_authorized_keys"] == [OPERATOR_KEY]
    boot = next(f for f in named["write_files"] if f["path"] == "/etc/squall/boot.sh")
    assert base64.b64decode(boot["content"]).startswith(b"#!/bin/sh")
    assert ["/etc/squall/boot.sh"] in named["runcmd"]
    job = yaml.safe_load(render_user_data(VARIANTS["job"]))
    assert [u["name"] for u in job["users"]] == ["squall"]  # job nodes: the job account only
    with pytest.raises(InvalidInput, match="operator.user"):
        render_user_data(UserData("head", "x", KEY, operator="squall", operator_public_key=OPERATOR_KEY))
    with pytest.raises(InvalidInput, match="operator.public_key"):
        render_user_data(UserData("head", "x", KEY, operator="ops", operator_public_key="not a key"))


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
