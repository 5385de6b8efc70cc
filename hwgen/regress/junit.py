"""Merge the per-case cocotb JUnit files into one report (reports/regress.xml).

Each case becomes a ``<testcase classname="regress" name="seed<N>">`` that carries the case's
network, array and wall time; its cocotb test cases' failures are copied in, and a case that
never reached the simulator (a flow error) gets an ``<error>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

__all__ = ["merge"]


def _cocotb_failures(xml: str | None) -> tuple[list[ET.Element], int]:
    """(failure/error elements, number of cocotb test cases) of one cocotb results file."""
    if not xml or not Path(xml).exists():
        return [], 0
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as e:
        bad = ET.Element("error", message=f"unreadable cocotb results {xml}: {e}")
        return [bad], 0
    cases = list(root.iter("testcase"))
    return [el for tc in cases for el in tc if el.tag in ("failure", "error")], len(cases)


def merge(results: list[dict], out: Path, name: str = "regress") -> Path:
    """Write one JUnit file for the case results (dicts from ``case.run_case``)."""
    suite = ET.Element("testsuite", name=name)
    n_fail = n_err = 0
    total = 0.0
    for r in sorted(results, key=lambda r: r["seed"]):
        tc = ET.SubElement(suite, "testcase", classname=name, name=f"seed{r['seed']}",
                           time=f"{r['wall_s']:.3f}")
        props = ET.SubElement(tc, "properties")
        for key in ("spec", "images", "cycles", "results_xml", "waveform", "shrunk"):
            if r.get(key) is not None:
                ET.SubElement(props, "property", name=key, value=str(r[key]))
        total += r["wall_s"]
        copied, ran = _cocotb_failures(r.get("results_xml"))
        if r["passed"]:
            continue
        if r.get("error") and not ran:
            n_err += 1
            el = ET.SubElement(tc, "error", message=r["error"][:500])
            el.text = r.get("extra", {}).get("traceback", r["error"])
            continue
        n_fail += 1
        msg = r.get("first_bad_layer") or r.get("error") or "mismatch"
        el = ET.SubElement(tc, "failure", message=f"seed {r['seed']}: {msg}"[:500])
        el.text = "\n".join(
            [f"network: {r['spec']}", f"first diverging layer: {r.get('first_bad_layer')}",
             f"waveform: {r.get('waveform')}", f"shrunk: {r.get('shrunk')}",
             f"rerun: make regress SEED={r['seed']}"]
            + [f"{c.tag}: {c.get('message', '')}\n{c.text or ''}" for c in copied])
    suite.set("tests", str(len(results)))
    suite.set("failures", str(n_fail))
    suite.set("errors", str(n_err))
    suite.set("time", f"{total:.3f}")
    root = ET.Element("testsuites")
    root.append(suite)
    out.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return out
