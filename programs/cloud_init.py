"""cloud-init user-data for every Squall machine (head nodes, pool and bank nodes, job nodes).

One template serves AWS and OpenStack. It makes the unprivileged job account
with the controller's key; the head node also keeps an operator account that
may sudo (the cloud's default user, or a named one with the operator's key).
Job nodes also get an nftables rule set that repeats the cloud's security rule
on the machine itself: in, SSH from the head node/controller and anything from
the job's own network; out, the job's own network only. The Squall runtime is
never in user-data (the controller pushes it over SSH when it stages a job);
the providers' size limits are rules (``squall.programs.rules``). User-data
carries no credential, and rendering refuses any value that looks like one.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass

from squall.errors import InvalidInput
from squall.templating import templates

SECRET_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"(?i)\b(secret|password|passwd|token)\b\s*[:=]\s*\S+"),
)
JOB_USER = "squall"  # the unprivileged account jobs run as, on every machine Squall makes
JOB_WORK_ROOT = f"/home/{JOB_USER}/work"  # job folders on a job node (made by the first job's staging)
USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
PUBLIC_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( [^\n]*)?$")


@dataclass(frozen=True)
class UserData:
    role: str  # head, pool, bank or job
    name: str  # the cluster or job stack name
    controller_public_key: str
    intra_cidr: str | None = None  # job nodes: the job's own network
    ssh_from: tuple[str, ...] = ()  # job nodes: head node / controller addresses
    job_user: str = JOB_USER
    nfs_export_to: str | None = None  # head node on OpenStack: export its data volume (/dev/vdb) to this CIDR
    operator: str | None = None  # head node: an account name, else "default" (the cloud's default user)
    operator_public_key: str | None = None  # a named operator's key
    boot_script: str | None = None  # the organisation's own first-boot script (run as root)


def firewall_rules(intra_cidr: str, ssh_from: tuple[str, ...]) -> str:
    networks = [str(ipaddress.ip_network(c, strict=False)) for c in (intra_cidr, *ssh_from)]
    if any(ipaddress.ip_network(n).prefixlen == 0 for n in networks):
        raise InvalidInput("firewall: 0.0.0.0/0 is not allowed on job nodes")
    return templates().get_template("cloud-init/firewall.nft.j2").render(intra_cidr=networks[0], ssh_from=networks[1:])


def render_user_data(data: UserData) -> str:
    """The #cloud-config document for ``data``; job nodes always get the firewall."""
    if not USER.match(data.job_user) or data.job_user == "root":
        raise InvalidInput(f"job_user: {data.job_user!r} is not a valid unprivileged user name")
    if not PUBLIC_KEY.match(data.controller_public_key.strip()):
        raise InvalidInput("controller_public_key: not an OpenSSH public key")
    firewall = None
    if data.role == "job":
        if not data.intra_cidr or not data.ssh_from:
            raise InvalidInput("job nodes need intra_cidr and ssh_from for their firewall")
        firewall = firewall_rules(data.intra_cidr, data.ssh_from)
    operator = data.operator or ("default" if data.role == "head" else None)
    if operator not in (None, "default"):
        if not USER.match(operator) or operator in ("root", data.job_user):
            raise InvalidInput(f"operator.user: {operator!r} is not a valid account name beside the job user")
        if not PUBLIC_KEY.match((data.operator_public_key or "").strip()):
            raise InvalidInput("operator.public_key: not an OpenSSH public key")
    export = str(ipaddress.ip_network(data.nfs_export_to, strict=False)) if data.nfs_export_to else None
    if export is not None and ipaddress.ip_network(export).prefixlen == 0:
        raise InvalidInput("nfs_export_to: the shared volume is never exported to 0.0.0.0/0")
    text = templates().get_template("cloud-init/user-data.yaml.j2").render(
        role=data.role, name=data.name, job_user=data.job_user,
        controller_public_key=data.controller_public_key.strip(),
        operator=operator, operator_public_key=(data.operator_public_key or "").strip(),
        firewall=firewall is not None, nfs_export_to=export,
        firewall_b64=base64.b64encode(firewall.encode()).decode() if firewall else "",
        boot_script=bool(data.boot_script),
        boot_script_b64=base64.b64encode(data.boot_script.encode()).decode() if data.boot_script else "",
    )
    check_no_secrets(text)
    return text


def check_no_secrets(text: str) -> None:
    """Raise if ``text`` (decoded base64 parts included) holds anything credential-like."""
    decoded = [text]
    for blob in re.findall(r"content: ([A-Za-z0-9+/=]{16,})", text):
        decoded.append(base64.b64decode(blob).decode(errors="replace"))
    for part in decoded:
        for pattern in SECRET_PATTERNS:
            match = pattern.search(part)
            if match:
                raise InvalidInput(f"user-data would carry something credential-like ({match.group(0)[:24]}…)")
