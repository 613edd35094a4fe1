"""Run by Tempest's own interpreter (python-subunit lives there): a subunit v2 stream on stdin -> one JSON object
{test id (attributes stripped): {"status": pass|fail|skip|excluded|missing, "reason": ...}} on stdout.

Usage: summarize.py LISTED_TESTS_FILE [EXCLUDE_REGEX] < subunit.v2

A class whose setUpClass skipped or failed reports one pseudo-test; its status goes to every listed test of the
class. Listed tests that match EXCLUDE_REGEX are "excluded"; any other listed test that never reported is "missing".
"""

from __future__ import annotations

import json
import re
import sys

import subunit
import testtools

_STATUS = {"success": "pass", "xfail": "pass", "fail": "fail", "uxsuccess": "fail", "skip": "skip"}


def _plain(test_id: str) -> str:
    return re.sub(r"\[.*\]$", "", test_id)


def main() -> int:
    with open(sys.argv[1]) as listing:
        listed = [_plain(line.strip()) for line in listing if line.strip()]
    exclude = re.compile(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else None
    results: dict[str, dict[str, str]] = {}
    by_class: dict[str, dict[str, str]] = {}

    def record(test: dict) -> None:
        status = _STATUS.get(test["status"])
        if status is None:
            return
        details = test.get("details") or {}
        reason = ""
        if status == "skip" and "reason" in details:
            reason = details["reason"].as_text().strip()
        elif status == "fail" and "traceback" in details:
            lines = details["traceback"].as_text().strip().splitlines()
            reason = lines[-1] if lines else ""
        test_id = test["id"]
        if test_id.startswith(("setUpClass (", "tearDownClass (")):
            by_class[test_id[test_id.index("(") + 1 : -1]] = {"status": status, "reason": f"class: {reason}"}
        else:
            results[_plain(test_id)] = {"status": status, "reason": reason[:300]}

    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    summary = testtools.StreamToDict(record)
    summary.startTestRun()
    stream.run(summary)
    summary.stopTestRun()
    for test_id in listed:
        if test_id in results:
            continue
        owner = test_id.rsplit(".", 1)[0]
        if owner in by_class:
            results[test_id] = by_class[owner]
        elif exclude is not None and exclude.search(test_id):
            results[test_id] = {"status": "excluded", "reason": "excluded by --exclude-regex"}
        else:
            results[test_id] = {"status": "missing", "reason": "did not run"}
    json.dump(dict(sorted(results.items())), sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
