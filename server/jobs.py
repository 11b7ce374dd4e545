"""``/api/v1/jobs``: submit (a spec with its files uploaded, or a spec the server may read), list, status,
tasks, logs, cancel, results.

Every route sees only the token's organisation's jobs (a partner token: only
the jobs it submitted); anything else is 404, as if it did not exist. A job
submitted here is driven by its own background controller on the server, so
it runs to its end whatever the client does.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tarfile
import threading
import uuid
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Iterator, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel

from squall.errors import InvalidInput, NotFound, Refused, SquallError
from squall.jobs import plan_from_store, shown_status
from squall.paths import uploads_dir
from squall.reports import job_report
from squall.server.auth import principal
from squall.server.envelope import ERRORS, Envelope, ok
from squall.store import JobRow, Store
from squall.tokens import Principal
from squall.job_types import TaskStatus

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=ERRORS)
JobStatus = Literal["pending", "running", "succeeded", "failed", "timeout", "cancelled", "incomplete", "orphaned"]
MAX_UPLOAD_FILES = 999  # the multipart parser takes at most 1,000 parts: the spec and 999 files
MAX_OFFSET = 1 << 62  # a log offset beyond any file (larger ones overflow a seek)
ARCHIVE_CHUNK = 256 << 10
log = logging.getLogger("squall.server.jobs")


class TaskOut(BaseModel):
    index: int
    status: TaskStatus
    exit_code: int | None
    wall_time: float | None
    max_rss_kb: int | None
    outputs: int | None
    network_isolated: bool | None
    stderr_tail: str | None
    error: str | None


class JournalOut(BaseModel):
    ts: float
    phase: str
    event: str
    detail: dict[str, Any]


class JobOut(BaseModel):
    id: str
    name: str
    status: JobStatus
    phase: str
    site: str
    project: str
    results: str  # the URL of its results archive
    error: str | None
    network_isolated: bool | None
    created_at: float
    finished_at: float | None
    cost: dict[str, Any]
    tasks: list[TaskOut]
    hint: str | None = None  # what to do about it (an orphaned job: attach)
    journal: list[JournalOut] | None = None  # every lifecycle transition (?journal=true)
    exit_code: int  # what 'squall job status' exits with for this job
    network_isolation: str  # whether the payload was cut off the network, in words


class JobSummary(BaseModel):
    id: str
    name: str
    site: str
    status: JobStatus
    phase: str
    project: str
    created_at: float
    finished_at: float | None


class LogOut(BaseModel):
    job: str
    task: int
    stream: Literal["stdout", "stderr"]
    log: str
    offset: int  # where the next read starts
    ended: bool  # nothing more will come


class SpecPath(BaseModel):
    spec_path: str
    site: str | None = None
    strategy: Literal["cheapest", "fastest", "greenest", "balanced"] = "balanced"


def job_of(store: Store, who: Principal, job_id: str) -> JobRow:
    """The job, if the token may see it; ``NotFound`` otherwise (another organisation's job does not exist)."""
    job = store.job(job_id)
    if job is None or job.org != who.org or (who.role == "partner" and job.user != who.user):
        raise NotFound(f"job {job_id!r}: no such job")
    return job


def report(store: Store, job_id: str, journal: bool = False) -> dict:
    """The CLI's report of the job, with the exit code it means and its isolation in words (what a client
    needs to show it as the CLI does)."""
    found = job_report(store, job_id, journal)
    return {**found.data, "exit_code": found.exit_code, "network_isolation": found.isolation}


def shown_report(request: Request, store: Store, job_id: str, journal: bool = False) -> dict:
    """The report as a client sees it: its results as their URL, no path of the server's anywhere."""
    data = report(store, job_id, journal)
    return request.app.state.hidden_paths.hide({**data, "results": f"/api/v1/jobs/{job_id}/results"})


# submitting ---------------------------------------------------------------------


@router.post("", status_code=202, response_model=Envelope[JobOut],
             summary="Submit a job: its spec (job.yaml) and the files it names, uploaded")
def submit_upload(request: Request, spec: Annotated[UploadFile, File(description="the job's spec (YAML)")],
                  files: Annotated[list[UploadFile], File(description="its inputs and script; each filename is "
                                                                     "its path relative to the spec")] = [],
                  site: Annotated[str | None, Form()] = None,
                  strategy: Annotated[Literal["cheapest", "fastest", "greenest", "balanced"], Form()] = "balanced",
                  who: Principal = Depends(principal)):
    folder = saved_upload(request, spec, files)
    try:
        return _submit(request, folder / "job.yaml", site, strategy, who)
    except BaseException as exc:
        raise dropped(folder, exc)  # a refused job leaves nothing behind


def saved_upload(request: Request, spec: UploadFile, files: list[UploadFile]) -> Path:
    """A new folder holding the uploaded spec (``job.yaml``) and its files, each at its relative path."""
    if len(files) > MAX_UPLOAD_FILES:
        raise InvalidInput(f"files: at most {MAX_UPLOAD_FILES} files per job")
    folder = uploads_dir(request.app.state.home) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        _save(spec, folder / "job.yaml")
        seen: set[PurePosixPath] = set()
        folders: set[PurePosixPath] = set()
        for upload in files:
            path = _relative(upload.filename or "")
            if path in seen or path in folders or any(parent in seen for parent in path.parents):
                raise InvalidInput(f"files: {str(path)!r} given twice (or as a file and a folder)")
            seen.add(path)
            folders.update(path.parents)
            _save(upload, folder / path)
    except BaseException as exc:
        raise dropped(folder, exc)
    return folder


def dropped(folder: Path, exc: BaseException) -> BaseException:
    """``exc`` once ``folder`` is removed, its message naming no folder of the server's own."""
    shutil.rmtree(folder, ignore_errors=True)
    if isinstance(exc, SquallError):
        exc.message = exc.message.replace(f"{folder}/", "")
    return exc


@router.post("/from-path", status_code=202, response_model=Envelope[JobOut],
             summary="Submit a job whose spec and files the server reads from a folder it was allowed")
def submit_path(request: Request, body: SpecPath, who: Principal = Depends(principal)):
    spec = Path(body.spec_path)
    roots = request.app.state.spec_roots
    if not spec.is_absolute() or not any(spec.resolve().is_relative_to(root) for root in roots):
        raise HTTPException(403, "spec_path: not under a folder this server reads specs from (its operator names "
                                 "them with squall server --spec-root)")
    return _submit(request, spec.resolve(), body.site, body.strategy, who)


def _submit(request: Request, spec_file: Path, site: str | None, strategy: str, who: Principal):
    from squall.controllers import spawn_controller
    from squall.runner import Runner
    from squall.spec import load_spec
    from squall.user_config import Defaults

    server = request.app.state
    resolved = load_spec(str(spec_file))
    if who.role == "partner":
        named = resolved.spec.project if "project" in resolved.spec.model_fields_set else who.application
        if named != who.application:
            raise InvalidInput(f"project: a partner token submits for its application {who.application!r}, "
                               f"not {named!r}")
        service = resolved.spec.service
        if service is not None and service.partner != who.application:
            raise InvalidInput(f"service.partner: a partner token names only its own application "
                               f"{who.application!r}, not {service.partner!r}")
    config = {"org": who.org, "user": who.user, **({"project": who.application} if who.application else {})}
    defaults = Defaults(config, Path("the server's token"), {})
    with server.open_store() as store:
        runner = Runner(store, server.home, offer=server.site_offer)
        try:
            plan = runner.submit(resolved, site, server.home / "server" / "results" / who.org, defaults=defaults,
                                 strategy=strategy)
        except Refused:
            server.refusals.count[who.org] += 1
            raise
        finally:
            runner.close()
        spawn_controller(server.home, plan.job_id, server.controller_options)
        return ok(shown_report(request, store, plan.job_id), 202)


MAX_NAME_BYTES = 255  # one folder or file name (the file system's limit)
MAX_PATH_BYTES = 1024  # a whole relative path
MAX_DEPTH = 32  # folders deep


def _relative(name: str) -> PurePosixPath:
    """An upload's name as a path relative to the spec: inside it, not the spec itself, of sane length."""
    shown = repr(name[:80] + ("..." if len(name) > 80 else ""))
    path = PurePosixPath(name)
    if (not name or "\0" in name or path.is_absolute() or not path.parts or ".." in path.parts
            or str(path) == "job.yaml"):
        raise InvalidInput(f"files: {shown} is not a path relative to the spec (nor the spec itself)")
    if (len(name.encode()) > MAX_PATH_BYTES or len(path.parts) > MAX_DEPTH
            or any(len(part.encode()) > MAX_NAME_BYTES for part in path.parts)):
        raise InvalidInput(f"files: {shown} is too long (at most {MAX_PATH_BYTES} bytes, {MAX_DEPTH} folders deep, "
                           f"{MAX_NAME_BYTES} bytes a name)")
    return path


def _save(upload: UploadFile, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as handle:
            shutil.copyfileobj(upload.file, handle, 1 << 20)
    except OSError as exc:  # what the checks above let through but the file system refuses: the client's input
        raise InvalidInput(f"files: {(upload.filename or '')[:80]!r} cannot be saved ({exc.strerror or exc})") from None


# reading --------------------------------------------------------------------------


NEXT_PAGE = "X-Next-Cursor"  # the id to pass as ``cursor`` for the next page; absent on the last one


@router.get("", response_model=Envelope[list[JobSummary]],
            summary="The organisation's jobs, newest first, a page at a time",
            responses={200: {"headers": {NEXT_PAGE: {"description": "pass it as `cursor` for the next page "
                                                                    "(absent on the last page)",
                                                     "schema": {"type": "string"}}}}})
def list_jobs(request: Request, who: Principal = Depends(principal),
              status: JobStatus | None = None, site: str | None = None, project: str | None = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 50,
              cursor: Annotated[str | None, Query(max_length=64, description="the X-Next-Cursor of the page "
                                                                              "before")] = None):
    """Jobs are read a page at a time (never every job of the store); ``status`` is the status shown, so a
    page filtered by it may hold fewer than ``limit`` jobs while more follow."""
    user = who.user if who.role == "partner" else None
    with request.app.state.open_store() as store:
        rows = store.jobs(limit, site=site, project=project, org=who.org, user=user, before=cursor)
        shown = [(j, shown_status(j, store.locks)) for j in rows]
    headers = {NEXT_PAGE: rows[-1].id} if len(rows) == limit else {}
    return ok([{"id": j.id, "name": j.name, "site": j.site, "status": s, "phase": j.phase, "project": j.project,
                "created_at": j.created_at, "finished_at": j.finished_at}
               for j, s in shown if status is None or s == status], headers=headers)


@router.get("/{job_id}", response_model=Envelope[JobOut], summary="A job, its tasks and its cost")
def job_status(request: Request, job_id: str, journal: bool = False, who: Principal = Depends(principal)):
    with request.app.state.open_store() as store:
        return ok(shown_report(request, store, job_of(store, who, job_id).id, journal))


@router.get("/{job_id}/tasks", response_model=Envelope[list[TaskOut]], summary="A job's tasks")
def job_tasks(request: Request, job_id: str, who: Principal = Depends(principal)):
    with request.app.state.open_store() as store:
        return ok(shown_report(request, store, job_of(store, who, job_id).id)["tasks"])


@router.get("/{job_id}/logs", response_model=Envelope[LogOut],
            summary="A task's output from an offset: live from the site while it runs, from the results after")
def job_logs(request: Request, job_id: str, who: Principal = Depends(principal),
             task: Annotated[int, Query(ge=0)] = 0, stream: Literal["stdout", "stderr"] = "stdout",
             offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0):
    from squall.sites.registration import open_site
    from squall.task_logs import log_chunk

    home = request.app.state.home
    with request.app.state.open_store() as store:
        job = job_of(store, who, job_id)
        tasks = store.tasks(job.id)
        if task >= len(tasks):
            raise InvalidInput(f"task: job {job.id} has tasks 0..{len(tasks) - 1}, not {task}")
        site = open_site(job.site, home, store)
        try:
            chunk, ended = log_chunk(store, site, plan_from_store(job, tasks, store.store_id), task, stream, offset)
        finally:
            site.close()
    log = request.app.state.hidden_paths.text(chunk.decode(errors="replace"))
    return ok({"job": job.id, "task": task, "stream": stream, "log": log,
               "offset": offset + len(chunk), "ended": ended})


@router.post("/{job_id}/cancel", status_code=202, response_model=Envelope[JobOut],
             summary="Ask a job to stop: its tasks are killed, finished outputs collected, everything removed")
def cancel(request: Request, job_id: str, who: Principal = Depends(principal)):
    from squall.controllers import spawn_controller
    
    home = request.app.state.home
    with request.app.state.open_store() as store:
        job = job_of(store, who, job_id)
        if not job.finished:
            store.update_job(job.id, cancel_requested=True)
            store.record(job.id, job.phase, "cancel-requested", user=who.user)
            if not store.locks.controller_alive(job.id):
                spawn_controller(home, job.id, request.app.state.controller_options)  # nobody drives it
        return ok(shown_report(request, store, job.id), 202)


# results ----------------------------------------------------------------------------

# A job's files are whatever its payload wrote: served so that no browser renders or runs them on the API's
# origin (an output page.html would otherwise run script with the viewer's session).
DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}


@router.get("/{job_id}/results", summary="The job's results folder as a .tar.gz archive, streamed",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "the archive, written as it is sent (its length is not known ahead)"}})
def results_archive(request: Request, job_id: str, who: Principal = Depends(principal)):
    folder = _results(request, who, job_id)
    return StreamingResponse(tar_gz_stream(folder), media_type="application/gzip",
                             headers={"Content-Disposition": f'attachment; filename="{folder.name}.tar.gz"',
                                      **DOWNLOAD_HEADERS})


@router.get("/{job_id}/results/{path:path}", summary="One file of the job's results, as a download",
            response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "the file's bytes, always as an attachment (never rendered)"}})
def result_file(request: Request, job_id: str, path: str, who: Principal = Depends(principal)):
    folder = _results(request, who, job_id).resolve()
    target = (folder / path).resolve()
    if not target.is_relative_to(folder) or not target.is_file():
        raise NotFound(f"results of job {job_id}: no file {path!r}")
    return FileResponse(target, media_type="application/octet-stream", filename=target.name,
                        content_disposition_type="attachment", headers=DOWNLOAD_HEADERS)


def tar_gz_stream(folder: Path) -> Iterator[bytes]:
    """``folder`` as a .tar.gz, made while it is sent: a thread writes the archive into a pipe whose kernel
    buffer holds it back whenever the client reads slowly, so a download costs the server a pipe's worth of
    memory whatever its size. A client that goes away closes the pipe, and the writer stops."""
    read_end, write_end = os.pipe()

    def write() -> None:
        try:
            with open(write_end, "wb") as pipe, gzip.GzipFile(fileobj=pipe, mode="wb", compresslevel=6) as packed, \
                    tarfile.open(fileobj=packed, mode="w|") as archive:
                archive.add(folder, arcname=folder.name)
        except BrokenPipeError:
            pass  # the client stopped reading
        except OSError as exc:
            log.warning("results archive of %s cut short: %s", folder.name, exc.strerror or exc)

    threading.Thread(target=write, name=f"archive-{folder.name}", daemon=True).start()
    try:
        while chunk := os.read(read_end, ARCHIVE_CHUNK):
            yield chunk
    finally:
        os.close(read_end)


def _results(request: Request, who: Principal, job_id: str) -> Path:
    with request.app.state.open_store() as store:
        job = job_of(store, who, job_id)
    folder = Path(job.results_dir)
    if not folder.is_dir():
        raise NotFound(f"job {job_id}: no results yet", hint="they arrive as the job's tasks are collected")
    return folder

