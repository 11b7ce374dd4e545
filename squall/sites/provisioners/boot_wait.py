"""Waiting for machines a provisioner just made: each must answer SSH and say cloud-init has finished.

A machine that answers SSH may still be running cloud-init (the job account's
key is there, its firewall or the operator's boot script not yet), so
``boot-finished`` is the mark. Every machine is asked at once, one attempt per
round; the deadline's error names each machine that never came and why.
"""

from __future__ import annotations

import time

from squall.errors import SiteUnreachable, SquallError
from squall.sites.transports.ssh import RemoteHost
from squall.sites.transports.contract import each_host

BOOT_FINISHED = "/var/lib/cloud/instance/boot-finished"
ROUND = 2.0  # seconds between rounds


def wait_for_boot(hosts: list[RemoteHost], timeout: float, what: str) -> float:
    """Return the seconds it took, or raise ``SiteUnreachable`` naming the machines that never came."""
    started = time.monotonic()
    deadline = started + timeout
    waiting = {host: "not asked yet" for host in hosts}
    while True:
        answers = each_host(_booted, {host: None for host in waiting})
        waiting = {host: why for host, why in answers.items() if why is not None}
        if not waiting:
            return time.monotonic() - started
        if time.monotonic() + ROUND > deadline:
            names = "; ".join(f"{host}: {why}" for host, why in waiting.items())
            raise SiteUnreachable(f"{what}: {len(waiting)} of {len(hosts)} machine(s) did not come up within "
                                  f"{timeout:.0f} s: {names}",
                                  hint="see the cloud console for these machines; raise squall_boot_timeout if they "
                                       "are only slow")
        time.sleep(ROUND)


def _booted(host: RemoteHost, _item: None) -> str | None:
    """None when ``host`` answers and cloud-init is done; else why not."""
    try:
        out = host.ssh.run(["sh", "-c", 'test -e "$1" && echo booted', "sh", BOOT_FINISHED], check=False,
                           retry=False, timeout=30)
    except SquallError as exc:
        host.ssh.close()
        return exc.message
    return None if out.strip() == "booted" else "answers SSH, cloud-init has not finished"
