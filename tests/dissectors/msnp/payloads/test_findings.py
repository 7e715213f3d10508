"""The decoders' scratchpad: bounded problems, credential names once each."""

from __future__ import annotations

from dissectors.msnp.payloads.findings import MAX_PROBLEMS, Findings, KeepingFindings


def test_problems_past_the_bound_are_counted_not_kept() -> None:
    findings = Findings()
    for i in range(MAX_PROBLEMS + 3):
        findings.problem(f"problem {i}")
    assert len(findings.problems) == MAX_PROBLEMS
    assert findings.dropped == 3
    final = findings.final_problems()
    assert final[:MAX_PROBLEMS] == tuple(f"problem {i}" for i in range(MAX_PROBLEMS))
    assert final[-1] == "3 more problems not shown"


def test_a_credential_name_is_listed_once() -> None:
    findings = Findings()
    for name in ("MSPAuth", "ticket", "MSPAuth"):
        findings.secret(name)
    assert findings.credentials == ["MSPAuth", "ticket"]
    assert Findings().final_problems() == ()


def test_keeping_findings_keep_every_problem() -> None:
    findings = KeepingFindings()
    for i in range(MAX_PROBLEMS + 3):
        findings.problem(f"problem {i}")
    assert len(findings.problems) == MAX_PROBLEMS + 3
    assert findings.dropped == 0
