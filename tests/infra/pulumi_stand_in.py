#!/usr/bin/env python3
"""A stand-in ``pulumi`` executable: records each call (argv, the environment Squall sets) and answers
the few commands the Automation API reads back. It runs no program and creates nothing; every stack's
outputs are ``$STAND_IN_OUTPUTS`` (JSON) when set."""

import json
import os
import sys

LOG = os.environ["STAND_IN_LOG"]
KEYS = ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_HOME", "PULUMI_SKIP_UPDATE_CHECK")
args = [a for a in sys.argv[1:] if a != "--non-interactive"]
with open(LOG, "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "env": {k: os.environ.get(k) for k in KEYS}}) + "\n")

HISTORY = [{"version": 1, "kind": "update", "startTime": "2026-11-24T00:00:00.000Z", "message": "",
            "environment": {}, "config": {}, "result": "succeeded", "endTime": "2026-11-24T00:00:01.000Z",
            "resourceChanges": {"create": 3}}]
if "--event-log" in args:  # what a real engine reports: one resource step, then the summary
    urn = "urn:pulumi:stack::squall::squall:cluster:OrgCluster::acme-main"
    step = {"op": "create", "urn": urn, "type": "squall:cluster:OrgCluster", "provider": ""}
    with open(args[args.index("--event-log") + 1], "a") as events:
        events.write(json.dumps({"sequence": 1, "timestamp": 1, "resourcePreEvent": {"metadata": step}}) + "\n")
        events.write(json.dumps({"sequence": 2, "timestamp": 2, "summaryEvent": {
            "maybeCorrupt": False, "durationSeconds": 1, "resourceChanges": {"create": 3},
            "PolicyPacks": {}}}) + "\n")
        events.write(json.dumps({"sequence": 3, "timestamp": 3, "cancelEvent": {}}) + "\n")
if args[:1] == ["version"]:
    print("v3.200.0")
elif args[:2] == ["stack", "output"]:
    print(os.environ.get("STAND_IN_OUTPUTS") or json.dumps({"head_address": "10.20.0.10"}))
elif args[:2] == ["stack", "history"]:
    print(json.dumps(HISTORY))
elif args[:2] == ["stack", "ls"]:
    print(json.dumps([{"name": "acme.org.main", "current": False, "updateInProgress": False}]))
elif args[:1] == ["preview"]:
    print(json.dumps({"changeSummary": {"create": 3}, "steps": []}))
sys.exit(0)
