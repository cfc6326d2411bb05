"""The free-text PHI scan's two linear-time fixes, each against the pattern it replaced, side by side.

``registry/bundle/free_text.py`` scans every free-text field of a card, up to 64 KiB each, for
identifying strings before a bundle may leave a site, and ``gsco-hub cases import`` scans every
report text of a case library. Two of its patterns were quadratic on long runs of characters
that a backtracking regex retries from every start:

- the e-mail pattern, now anchored at the start of a run of address characters
  (``(?<![\\w.+-])``), on a run without "@";
- the host-name pattern, now a linear finder (``HostNames``: each run of host characters read
  once, label by label), on a run of labels such as ``a.a.a.…`` with no known domain.

For each, this script first checks that the fix and the pattern it replaced find the same things
on a set of examples, then times both on the same strings, one after the other in one process, at
several lengths and on a realistic field. Last, it times every pattern of the scan on strings that
make a backtracking pattern retry.

    .venv/bin/python bench/free_text_scan.py                 # prints the tables
    .venv/bin/python bench/free_text_scan.py --write-docs    # also updates docs/benchmarks.md
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser  # noqa: E402
from bench.docs_section import publish  # noqa: E402
from registry.bundle.free_text import HOST_NAME_REGEX, MAX_FIELD_CHARS, PATTERNS, Finder  # noqa: E402

PROBE_CHARS = 8192
REALISTIC = (
    "Intended use: adjunct reading of paediatric chest X-rays for pneumonia, not a diagnosis. "
    "Trained on de-identified studies at the radiology dept.; questions to the site team. "
) * 24


@dataclass(frozen=True)
class Fix:
    """A pattern of the scan today and the quadratic regex it replaced."""

    name: str
    before: re.Pattern[str]
    examples: tuple[str, ...]
    worst_case: Callable[[int], str]
    worst_case_label: str


FIXES = (
    Fix(
        "e-mail address",
        re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
        (
            "contact jane.doe+ward7@example-hospital.org for the protocol",
            "x@y.z and a.b@c.d.e, twice: a.b@c.d.e",
            "no address here, only a@ sign and @handle",
            "trailing dot jane@example.org.",
            "first.last@sub.example.co.uk;second@host.internal",
        ),
        lambda n: "a." * (n // 2),
        "address characters, no @",
    ),
    Fix(
        "host name",
        HOST_NAME_REGEX,
        (
            "exported from pacs01.radiology.lan",
            "see a.-b-.com and _a.com and _x-a.com",
            "x..com, a.comx, a.com_ and -.-.com are no host names",
            "www.example.org/path",
            "no host here: e.g. 3.5 mm, v1.2-rc and i.v.",
        ),
        lambda n: "a." * (n // 2 - 3) + "_.com",
        "host characters, then `_.com` (no host name)",
    ),
)


def median_seconds(pattern: Finder, text: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        pattern.search(text)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def fix_table(fix: Fix, lengths: list[int], repeats: int) -> list[str]:
    """The fix against the regex it replaced, after checking both find the same on its examples."""
    after = PATTERNS[fix.name]
    for text in fix.examples:
        if (fix.before.search(text) is not None) != bool(after.search(text)):
            raise SystemExit(
                f"{fix.name}: the patterns disagree on {text!r}: the fix would change what is found"
            )
    cases = [(f"{n:,} {fix.worst_case_label}", fix.worst_case(n)) for n in lengths]
    cases.append((f"realistic field, {len(REALISTIC):,} characters", REALISTIC))
    rows = []
    for label, text in cases:
        old = median_seconds(fix.before, text, repeats)
        new = median_seconds(after, text, repeats)
        ratio = f"{old / new:,.0f}" if old >= 10 * new else f"{old / new:.2f}"
        rows.append(f"| {label} | {1000 * old:.2f} | {1000 * new:.3f} | {ratio}x |")
    return [
        f"{fix.name}: both find the same on the script's {len(fix.examples)} examples.",
        "",
        "| string | before, ms | now, ms | ratio |",
        "|---|---:|---:|---:|",
        *rows,
        "",
    ]


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lengths", default="1024,4096,16384", help="worst-case run lengths (characters)")
    args = parser.parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    tables = [line for fix in FIXES for line in fix_table(fix, lengths, args.repeats)]
    probes = {
        "a.a.a.…": "a." * (PROBE_CHARS // 2),
        "a-a-a-…": "a-" * (PROBE_CHARS // 2),
        "a.a.a.…_.com": "a." * (PROBE_CHARS // 2 - 3) + "_.com",
        "1:1:1:…": "1:" * (PROBE_CHARS // 2),
        "tel +1 +1 …": "tel" + " +1" * (PROBE_CHARS // 3 - 1),
    }
    per_pattern = [
        f"| {name} | "
        + " | ".join(f"{1000 * median_seconds(pattern, text, args.repeats):.2f}" for text in probes.values())
        + " |"
        for name, pattern in PATTERNS.items()
    ]
    field = "a." * (MAX_FIELD_CHARS // 2 - 3) + "_.com"
    whole_field = sum(median_seconds(pattern, field, 1) for pattern in PATTERNS.values())
    lines = [
        "## Free-text PHI scan",
        "",
        f"`bench/free_text_scan.py` on {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; median of {args.repeats} searches per pattern and string, "
        "the pattern before and the one now in turn.",
        "",
        *tables,
        f"Every pattern of the scan today, on {PROBE_CHARS:,}-character strings built to make a "
        "backtracking pattern retry (ms):",
        "",
        f"| pattern | {' | '.join(probes)} |",
        "|---|" + "---:|" * len(probes),
        *per_pattern,
        "",
        f"All patterns on one field at the {MAX_FIELD_CHARS:,}-character limit (`a.a.a.…_.com`): "
        f"{1000 * whole_field:.0f} ms.",
    ]
    print("\n".join(lines))
    publish(lines, "benchmarks.md", "Benchmarks", write=args.write_docs)


if __name__ == "__main__":
    main()
