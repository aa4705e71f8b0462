"""``meshlens lab verify-seed``: rerun the seed's verification table on this machine.

Layer: L7 (lab). Imports: lab.scenario.

The seed document (Istio 1.30 on a homelab cluster) ends with a table of claims and verdicts.
Every scenario under ``scenarios/`` with a ``claim:`` block reproduces one of them; this module
runs them and lines the seed's verdict up with what the lab measured. A claim's ``holds`` says
whether the claim *as written* is true according to the scenario's expectations (C11 is written
wrong in the seed's table and corrected in its text; the seed says UF where plaintext meets a
STRICT server, the lab measures UC).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshlens.lab.scenario import Scenario, ScenarioResult, run_scenario


@dataclass(slots=True)
class SeedRow:
    claim: str
    text: str
    seed: str
    claimed: str
    measured: str
    holds: str
    scenarios: list[str]
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        return {"claim": self.claim, "text": self.text, "seed_verdict": self.seed,
                "claimed": self.claimed, "measured": self.measured, "claim_holds": self.holds,
                "scenarios": self.scenarios, "reproduced": self.ok}


def seed_scenarios(directory: Path) -> list[Path]:
    """Scenario files of ``directory`` that carry a ``claim:`` block, in file-name order."""
    out = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            if "claim" in Scenario.load(path).data:
                out.append(path)
        except Exception:  # noqa: BLE001 - a broken file is reported by `lab run`, not here
            continue
    return out


def measured_text(res: ScenarioResult) -> str:
    """A short summary of what each send step measured."""
    parts = []
    for s in res.steps:
        if s.kind != "send":
            continue
        n = s.counts.get("requests", 0)
        status = ", ".join(f"{k}×{v}" for k, v in s.counts.get("status", {}).items())
        flags = ", ".join(f"{k}×{v}" for k, v in s.counts.get("flags", {}).items() if k != "-")
        counters = [f"{e['key'].rsplit('.', 1)[-1]}={e['measured']}" for e in s.expectations
                    if e["key"].startswith("stats.")]
        clusters = ", ".join(f"{_short(k)}×{v}" for k, v in s.counts.get("clusters", {}).items()
                             if k != "-")
        text = f"{s.name}: {n} req → {status}" + (f"; flags {flags}" if flags else "")
        if any(e["key"].startswith("clusters.") for e in s.expectations):
            text += f"; clusters {clusters}"
        if counters:
            text += "; " + ", ".join(counters)
        parts.append(text)
    if res.error:
        parts.append(f"error: {res.error}")
    return " | ".join(parts)


async def verify_seed(directory: Path, *, progress: Any = None) -> list[SeedRow]:
    """Run every claim scenario; one row per claim id, in the seed's order."""
    rows: dict[str, SeedRow] = {}
    for path in seed_scenarios(directory):
        sc = Scenario.load(path)
        if progress is not None:
            progress(f"running {path.name}")
        res = await run_scenario(sc)
        claim = dict(sc.data["claim"])
        cid = str(claim.get("id", path.stem))
        part = f"[{claim['part']}] " if claim.get("part") else ""
        holds = claim.get("holds", True)
        verdict = ("yes" if holds else "no") if res.ok else "not reproduced"
        row = rows.get(cid)
        if row is None:
            rows[cid] = SeedRow(cid, str(claim.get("text", "")), str(claim.get("seed", "")),
                                str(claim.get("claimed", "")), part + measured_text(res), verdict,
                                [path.name], res.ok)
        else:
            row.measured += " || " + part + measured_text(res)
            row.scenarios.append(path.name)
            row.ok = row.ok and res.ok
            if not res.ok:
                row.holds = "not reproduced"
    return sorted(rows.values(), key=_order)


def _short(cluster: str) -> str:
    """``outbound|80|v1|host`` -> ``80|v1``."""
    parts = cluster.split("|")
    return f"{parts[1]}|{parts[2]}" if len(parts) == 4 else cluster


def _order(row: SeedRow) -> tuple[int, str]:
    c = row.claim
    if c.startswith("C") and c[1:].isdigit():
        return int(c[1:]), ""
    return 100, c


def render_table(rows: list[SeedRow]) -> str:
    """Markdown: the seed's table with the lab's measured column."""
    lines = ["| claim | seed's verdict | claimed | measured here (real Envoy 1.40, lab) | "
             "claim holds? |", "|---|---|---|---|---|"]
    for r in rows:
        text = f"{r.claim}. {r.text}"
        lines.append(f"| {text} | {r.seed} | {r.claimed} | {r.measured} | {r.holds} |")
    return "\n".join(lines)
