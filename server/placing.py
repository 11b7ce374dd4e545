"""``/api/v1/estimate``: where a job could run, when it would start, what it would cost — as
``squall job estimate`` — and which site ``auto`` would choose. Creates nothing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import BaseModel

from squall.server.auth import principal
from squall.server.envelope import ERRORS, Envelope, ok
from squall.server.jobs import dropped, saved_upload
from squall.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["estimate"], responses=ERRORS)


class EstimateOut(BaseModel):
    strategy: str
    choice: dict[str, Any] | None  # the site auto would choose, and why
    sites: list[dict[str, Any]]  # each site's estimate, or why it cannot take the job
    why_not: str | None  # why auto could choose nothing


@router.post("/estimate", response_model=Envelope[EstimateOut],
             summary="Estimate a job (its spec and files uploaded) at a site, or at every site ('every')")
def estimate(request: Request, spec: Annotated[UploadFile, File(description="the job's spec (YAML)")],
             files: Annotated[list[UploadFile], File(description="its inputs and script, as for a submission")] = [],
             site: Annotated[str | None, Form()] = None, every: Annotated[bool, Form()] = False,
             strategy: Annotated[Literal["cheapest", "fastest", "greenest", "balanced"], Form()] = "balanced",
             who: Principal = Depends(principal)):
    from squall.errors import InvalidInput
    from squall.estimates import estimate_spec
    from squall.spec import load_spec

    if site and every:
        raise InvalidInput("site and every: give one or the other")
    folder = saved_upload(request, spec, files)
    try:
        resolved = load_spec(str(folder / "job.yaml"))
        named = site or (resolved.spec.site if "site" in resolved.spec.model_fields_set else "local")
        with request.app.state.open_store() as store:
            found, why_not = estimate_spec(store, request.app.state.home, resolved, named, every, strategy, None,
                                           who.org, request.app.state.site_offer)
    except BaseException as exc:
        raise dropped(folder, exc)
    shutil.rmtree(Path(folder), ignore_errors=True)
    return ok({**found, "why_not": why_not})
