"""What a task spanning several plain SSH hosts needs between them (the ``ssh`` executor's MPI).

The task's runtime runs on its first host and starts the ranks with OpenMPI's ``mpirun`` over the task's
``hostfile``; mpirun reaches the other hosts with SSH and a key pair the controller makes for this job
alone: the private key goes to the first host's job folder (0600), the public key into each other host's
``authorized_keys`` (``restrict``, only from the first host's address, marked with the job), and both are
removed with the job folder at ``down``. The hosts' own keys, pinned by the controller, are the job's
``known_hosts``, so mpirun's SSH checks them strictly. Nothing of this is in user-data or reused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from squall.errors import Refused
from squall.sites.transports.ssh import RemoteHost

PLAIN_PATH = re.compile(r"^/[A-Za-z0-9._/-]+$")  # mpirun splits its SSH command on spaces
MPI_DIR = ".mpi"


@dataclass(frozen=True)
class JobKey:
    private_openssh: bytes
    public: str  # "ssh-ed25519 AAAA..."


def new_job_key() -> JobKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return JobKey(private, public.decode())


def launcher(job_dir: str, task_dir: str, ranks: int) -> list[str]:
    """mpirun over the task's hosts, with the job's key and the pinned host keys."""
    if not PLAIN_PATH.match(job_dir):
        raise Refused(f"resources.nodes: the work root {job_dir!r} has characters mpirun's SSH command cannot "
                      "carry; use a plain path for squall_work_root")
    ssh = (f"ssh -i {job_dir}/{MPI_DIR}/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes "
           f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={job_dir}/{MPI_DIR}/known_hosts")
    return ["mpirun", "--hostfile", f"{task_dir}/hostfile", "-np", str(ranks), "--mca", "plm_rsh_agent", ssh,
            "--wdir", task_dir]


def hostfile(hosts: list[RemoteHost], ranks_per_host: int) -> bytes:
    return "".join(f"{host.ssh.host} slots={ranks_per_host}\n" for host in hosts).encode()


def known_hosts(hosts: list[RemoteHost]) -> bytes:
    return "".join(host.ssh.host_key_line() + "\n" for host in hosts).encode()
