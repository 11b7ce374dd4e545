"""``squall job logs ID``"""

from __future__ import annotations

import sys
import time
from typing import Callable

import click

from squall.cli.completion import job_ids
from squall.cli.context import App, pass_app
from squall.cli.job.render import load_job
from squall.errors import InvalidInput


@click.command("logs")
@click.argument("job_id", shell_complete=job_ids)
@click.option("--task", "task", default="0", show_default=True, help="Task index, or 'all' (each in turn).")
@click.option("--stream", type=click.Choice(["stdout", "stderr"]), default="stdout", show_default=True)
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the task ends.")
@pass_app
def logs_cmd(app: App, job_id: str, task: str, stream: str, follow: bool) -> None:
    """Print a task's output: live from the site while it runs, from the results after."""
    if app.api:
        from squall.cli.remote import follow_log

        count = len(app.api.call("GET", f"/jobs/{job_id}")["tasks"])
        api = app.api

        def printer(index: int, keep: bool, write: Callable[[bytes], object]) -> None:
            follow_log(api, job_id, index, stream, keep, write)
    else:
        job = load_job(app, job_id)
        job_id = job.id  # a unique prefix names the job too
        count = len(app.store.tasks(job_id))
        printer = _local_printer(app, job, stream)
    if task == "all":
        if follow:
            raise InvalidInput("--follow follows one task: give --task N", hint="or drop --follow for every task")
        indexes = list(range(count))
    elif task.isdigit() and int(task) < count:
        indexes = [int(task)]
    else:
        raise InvalidInput(f"--task: job {job_id} has tasks 0..{count - 1} (or 'all'), not {task}")
    if app.json and follow:
        raise InvalidInput("--follow prints a live log: not with --output json", hint="drop one of them")
    if app.json:  # each task's log so far, as text
        logs = []
        for index in indexes:
            chunks: list[bytes] = []
            printer(index, False, chunks.append)
            logs.append({"job": job_id, "task": index, "stream": stream,
                         "log": b"".join(chunks).decode(errors="replace")})
        app.emit(logs if task == "all" else logs[0])
        return
    for index in indexes:
        if len(indexes) > 1:
            _write(f"==> task-{index} {stream} <==\n".encode())
        printer(index, follow, _write)


def _local_printer(app: App, job, stream: str) -> Callable[[int, bool, Callable[[bytes], object]], None]:
    """Prints a task's log from the site (or the results) as this controller sees them."""
    from squall.jobs import plan_from_store
    from squall.sites.registration import open_site
    from squall.task_logs import log_chunk

    plan = plan_from_store(job, app.store.tasks(job.id), app.store.store_id)
    site = open_site(job.site, app.home, app.store)

    def printer(index: int, follow: bool, write: Callable[[bytes], object]) -> None:
        offset = 0
        while True:
            chunk, ended = log_chunk(app.store, site, plan, index, stream, offset)
            write(chunk)
            offset += len(chunk)
            if ended or not follow:
                return
            time.sleep(0.5)

    return printer


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.flush()

