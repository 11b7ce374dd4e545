"""The web dashboard: server-rendered pages (Jinja2, no build step) over the same store and reports as the
API. Sign in with a token once: the browser then holds a server-side session's id (HttpOnly, SameSite=Strict,
Secure behind TLS; see ``squall.sessions``), honoured for reading only, and every form carries a CSRF value, so
no other site can make a signed-in browser change anything; the organisation's jobs with their status, site
and cost, updated live from the organisation's event stream; a job's tasks, logs and results; budgets and
usage over time (an SVG chart drawn here); sites and their last health check (admins)."""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections import defaultdict
from pathlib import Path

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from squall.server.auth import SESSION, principal, refuse_if_locked_out, role, sign_in
from squall.server.jobs import job_of, report
from squall.sessions import LIFETIME, csrf_matches, csrf_value, end_session, open_session
from squall.tokens import Principal

SIGN_IN_FORM = "squall_sign_in"  # the sign-in form's CSRF value, before there is a session


def _sign_out_csrf(request: Request) -> dict:
    session_id = request.cookies.get(SESSION)
    return {"csrf": csrf_value(session_id) if session_id else ""}


router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"), context_processors=[_sign_out_csrf])
EVENT_NAMES = ["plan.end", "up.begin", "stage.begin", "launch.begin", "launch.end", "monitor.begin", "monitor.task",
               "collect.begin", "collect.end", "down.begin", "down.end", "down.kept", "money.settled",
               "done.succeeded", "done.failed", "done.cancelled", "done.timeout"]
CHART_DAYS, CHART_HEIGHT, BAR = 14, 120, 28


def money(value) -> str:
    if value is None:
        return "not settled yet"
    if isinstance(value, str):
        return value
    return "free" if value.get("currency") is None else f"{value['amount']} {value['currency']}"


def cost_text(data: dict) -> str:
    cost = data["cost"]
    if cost["actual"] is not None:
        return money(cost["actual"])
    estimated = cost["estimated"]
    return f"≤ {money(estimated['max'])} (estimated)" if isinstance(estimated, dict) else money(estimated)


@router.get("/")
def home():
    return RedirectResponse("/dashboard", status_code=303)


def _sign_in_page(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    form_csrf = secrets.token_urlsafe(32)
    page = templates.TemplateResponse(request, "sign_in.html", {"title": "sign in", "who": None, "error": error,
                                                                "form_csrf": form_csrf}, status_code=status)
    _set_cookie(request, page, SIGN_IN_FORM, form_csrf, path="/dashboard/sign-in")
    return page


def _set_cookie(request: Request, response, name: str, value: str, path: str = "/", max_age: int | None = None):
    response.set_cookie(name, value, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path=path, max_age=max_age)


@router.get("/api/v1/docs", response_class=HTMLResponse)
def api_docs(request: Request):
    """Swagger UI over the OpenAPI document, its assets from the fastapi-offline package (air-gapped sites
    have no CDN)."""
    return templates.TemplateResponse(request, "api_docs.html", {})


@router.get("/dashboard/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request):
    return _sign_in_page(request)


@router.post("/dashboard/sign-in")
def sign_in_form(request: Request, token: str = Form(""), csrf: str = Form("")):
    if not hmac.compare_digest(request.cookies.get(SIGN_IN_FORM, ""), csrf) or not csrf:
        return _sign_in_page(request, "That form had expired; sign in again.", 403)
    try:
        refuse_if_locked_out(request, token.strip())
    except HTTPException as locked_out:
        return _sign_in_page(request, locked_out.detail, 429)
    who = sign_in(request, token.strip())
    if who is None:
        return _sign_in_page(request, "That token is not valid.", 401)
    with request.app.state.open_store() as store:
        session_id = open_session(store, who)
    response = RedirectResponse("/dashboard", status_code=303)
    _set_cookie(request, response, SESSION, session_id, max_age=LIFETIME)
    response.delete_cookie(SIGN_IN_FORM, path="/dashboard/sign-in")
    return response


@router.post("/dashboard/sign-out")
def sign_out(request: Request, csrf: str = Form("")):
    session_id = request.cookies.get(SESSION, "")
    if not csrf_matches(session_id, csrf):
        raise HTTPException(403, "sign out from the dashboard's own page")
    with request.app.state.open_store() as store:
        end_session(store, session_id)
    response = RedirectResponse("/dashboard/sign-in", status_code=303)
    response.delete_cookie(SESSION, path="/")
    return response


def _row(store, job_id: str) -> dict:
    data = report(store, job_id)
    return {"id": data["id"], "name": data["name"], "status": data["status"], "site": data["site"],
            "cost": cost_text(data), "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data["created_at"]))}


@router.get("/dashboard", response_class=HTMLResponse)
def jobs_page(request: Request, who: Principal = Depends(principal)):
    with request.app.state.open_store() as store:
        jobs = [_row(store, j.id) for j in store.jobs(100, org=who.org, user=who.user if who.role == "partner" else None)]
    return templates.TemplateResponse(request, "jobs.html", {"title": "jobs", "who": who, "jobs": jobs,
                                                             "event_names": EVENT_NAMES})


@router.get("/dashboard/rows/{job_id}")
def job_row(request: Request, job_id: str, who: Principal = Depends(principal)):
    with request.app.state.open_store() as store:
        return JSONResponse(_row(store, job_of(store, who, job_id).id))


@router.get("/dashboard/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, who: Principal = Depends(principal)):
    with request.app.state.open_store() as store:
        job = report(store, job_of(store, who, job_id).id)
    results = Path(job["results"])
    files = defaultdict(list)
    for path in sorted(results.glob("task-*/**/*")) if results.is_dir() else []:
        if path.is_file():
            files[int(path.relative_to(results).parts[0][5:])].append(str(path.relative_to(results)))
    logs = {}
    for task in job["tasks"]:
        log = results / "meta" / f"task-{task['index']}" / "stdout.log"
        logs[task["index"]] = log.read_text(errors="replace")[-20000:] if log.is_file() else "(not collected yet)"
    hidden = request.app.state.hidden_paths  # a partner sees no folder of the server's
    return templates.TemplateResponse(request, "job.html", {"title": f"job {job_id}", "who": who,
                                                            "job": hidden.hide(job), "cost": cost_text(job),
                                                            "files": files, "logs": hidden.hide(logs)})


@router.get("/dashboard/usage", response_class=HTMLResponse)
def usage_page(request: Request, who: Principal = Depends(role("admin", "member"))):
    from squall.money.ledger import budget_state

    with request.app.state.open_store() as store:
        records = [json.loads(row[0]) for row in store.rows("SELECT record FROM usage WHERE org = ? ORDER BY "
                                                            "ended_at", (who.org,))]
        scopes = [row[0] for row in store.rows("SELECT scope FROM budgets WHERE scope = ? OR scope LIKE ? ORDER BY "
                                               "scope", (f"org:{who.org}", f"project:{who.org}/%"))]
        budgets = [state for state in (budget_state(store.rows, scope) for scope in scopes) if state is not None]
    return templates.TemplateResponse(request, "usage.html", {
        "title": "usage", "who": who, "budgets": budgets, **_chart(records),
        "records": [{**r, "cost": money(r["cost"]["actual"])} for r in records]})


def _chart(records: list[dict]) -> dict:
    """Jobs per day as bars and task hours as a line, over the last ``CHART_DAYS`` days."""
    today = int(time.time() // 86400)
    jobs, hours = defaultdict(int), defaultdict(float)
    for record in records:
        day = int(record["ended_at"] // 86400)
        jobs[day] += 1
        hours[day] += record["resources"]["task_seconds"] / 3600
    span = range(today - CHART_DAYS + 1, today + 1)
    top_jobs, top_hours = max([jobs[d] for d in span] + [1]), max([hours[d] for d in span] + [1e-9])
    days = [{"x": i * (BAR + 6) + 4, "bar": round(jobs[d] / top_jobs * CHART_HEIGHT), "jobs": jobs[d],
             "hours": round(hours[d], 3), "date": time.strftime("%Y-%m-%d", time.gmtime(d * 86400)),
             "label": time.strftime("%d/%m", time.gmtime(d * 86400))} for i, d in enumerate(span)]
    line = " ".join(f"{day['x'] + BAR // 2},{CHART_HEIGHT - round(hours[d] / top_hours * CHART_HEIGHT)}"
                    for day, d in zip(days, span))
    return {"days": days, "line": line, "width": CHART_DAYS * (BAR + 6) + 8, "height": CHART_HEIGHT,
            "bar_width": BAR}


@router.get("/dashboard/sites", response_class=HTMLResponse)
def sites_page(request: Request, who: Principal = Depends(role("admin"))):
    from squall.sites.registration import all_sites

    with request.app.state.open_store() as store:
        kinds = all_sites(store)
        sites = []
        for name, kind in sorted(kinds.items()):
            last = store.last_site_report(name, "health") or store.last_site_report(name, "check")
            healthy = None if last is None else last[0].get("status") == "ok"
            active = store.rows("SELECT COUNT(*) FROM jobs WHERE site = ? AND phase != 'done'", (name,))[0][0]
            sites.append({"name": name, "kind": kind, "active": active, "healthy": healthy,
                          "health": "not checked" if last is None else ("ok" if healthy else "failing"),
                          "checked": "-" if last is None else time.strftime("%Y-%m-%d %H:%M",
                                                                             time.localtime(last[1]))})
    return templates.TemplateResponse(request, "sites.html", {"title": "sites", "who": who, "sites": sites})
