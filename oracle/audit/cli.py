"""``oracle audit``: exit 0 when every check passes, 1 when a check fails or the request is not
fulfilled, 2 when the request does not exist (or the audit cannot start).

Without ``--models`` the artifact checks (circuit id, registration, off-chain verification) are
reported as SKIPPED and the exit code depends on the chain-only checks. That is deliberate: the
on-chain re-verification still proves the submitted proof valid under the registered verifier,
and an integrator without the circuit folder gets a useful answer. An auditor who needs the
full chain of custody must pass ``--models`` (the report always lists what was skipped).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_audit_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from oracle.audit.defaults import DEFAULT_MAX_RANGE, DEFAULT_VERIFY_GAS

    a = sub.add_parser("audit", help="re-verify a fulfilled request from chain data (+ circuit artifacts)")
    a.add_argument("--rpc", required=True, help="RPC URL of the chain")
    a.add_argument("--oracle", required=True, help="InferenceOracle address")
    a.add_argument("--request", required=True, type=int, help="request id")
    a.add_argument("--models", type=Path, help="folder with circuit folders (omit: artifact checks SKIPPED)")
    a.add_argument("--json", action="store_true", help="print the report as JSON")
    a.add_argument("--max-log-range", type=int, default=DEFAULT_MAX_RANGE, help="blocks per eth_getLogs")
    a.add_argument("--from-block", type=int, default=0,
                   help="first block to scan when the node cannot serve historical state")
    a.add_argument("--verify-gas", type=int, default=DEFAULT_VERIFY_GAS, help="gas for the verify eth_call")
    a.set_defaults(func=cmd_audit)


def cmd_audit(a: argparse.Namespace) -> int:
    from oracle.audit.audit import AuditParams, audit_request
    from oracle.audit.report import render_text

    report = audit_request(AuditParams(
        rpc=a.rpc, oracle=a.oracle, request_id=a.request, models=a.models,
        max_log_range=a.max_log_range, from_block=a.from_block, verify_gas=a.verify_gas,
    ))
    # The report is the command's output (stdout); the verdict line also goes to stderr so
    # a script reading --json still sees why it failed.
    print(json.dumps(report.to_json(), indent=2) if a.json else render_text(report))
    if report.exit_code != 0:
        print(f"audit: {report.reason}", file=sys.stderr)
    return report.exit_code
