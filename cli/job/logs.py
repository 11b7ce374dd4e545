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
    from squall.jobs import plan_from_store
    from squall.sites import open_site

    job = load_job(app, job_id)
    job_id = job.id  # a unique prefix names the job too
    tasks = app.store.tasks(job_id)
    if task == "all":
        if follow:
            raise InvalidInput("--follow follows one task: give --task N", hint="or drop --follow for every task")
        indexes = list(range(len(tasks)))
    elif task.isdigit() and int(task) < len(tasks):
        indexes = [int(task)]
    else:
        raise InvalidInput(f"--task: job {job_id} has tasks 0..{len(tasks) - 1} (or 'all'), not {task}")
    if app.json and follow:
        raise InvalidInput("--follow prints a live log: not with --output json", hint="drop one of them")
    plan = plan_from_store(job, tasks, app.store.store_id)
    site = open_site(job.site, app.home, app.store)
    if app.json:  # each task's log so far, as text
        logs = []
        for index in indexes:
            chunks: list[bytes] = []
            _print_log(app, site, plan, job_id, index, stream, False, chunks.append)
            logs.append({"job": job_id, "task": index, "stream": stream,
                         "log": b"".join(chunks).decode(errors="replace")})
        app.emit(logs if task == "all" else logs[0])
        return
    for index in indexes:
        if len(indexes) > 1:
            _write(f"==> task-{index} {stream} <==\n".encode())
        _print_log(app, site, plan, job_id, index, stream, follow, _write)


def _print_log(app: App, site, plan, job_id: str, task_index: int, stream: str, follow: bool,
               write: Callable[[bytes], object]) -> None:
    from squall.task_logs import log_chunk

    offset = 0
    while True:
        chunk, ended = log_chunk(app.store, site, plan, task_index, stream, offset)
        write(chunk)
        offset += len(chunk)
        if ended or not follow:
            return
        time.sleep(0.5)


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.flush()

