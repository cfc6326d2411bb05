"""Mutation testing of the trust core, and the tests that fail when five features are broken.

The modules that decide what is served (bundle signing and verification, the trust store, the
approval policy, the audit chain, the PHI scan, the pool's verify-before-swap) are mutated with
mutmut, one module at a time, each against the tests that cover it (``MODULES``), so that a mutant
runs the few tests that reach the mutated function, in seconds. Each run works on its own copy of
the tree under ``mutants/`` (git-ignored): mutmut copies the source once more into that copy's
``mutants/`` folder and puts it first on ``sys.path``; ``PYTHONPATH`` points there too, so that the
tests' subprocesses import the mutated code, never the editable install. mutmut's own forced-fail
run (every mutated function raises) proves that the tests import the copy: a run aborts when no
test fails then.

    .venv/bin/python bench/mutation.py --module registry/trust.py   # one module; result kept
    .venv/bin/python bench/mutation.py --module registry/trust.py --survivors  # rerun survivors
    .venv/bin/python bench/mutation.py                              # every module, in turn
    .venv/bin/python bench/mutation.py --table --write-docs         # table of the kept results
    .venv/bin/python bench/mutation.py --five-features --write-docs # the five broken features

Needs the ``mutation`` extra (``pip install -e '.[mutation]'``). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.docs_section import publish  # noqa: E402

WORK = ROOT / "mutants"
# Kept per-module results (counts and the diff of every survivor): tracked, so that a fresh
# checkout still has them; the mutated copies under WORK are git-ignored and thrown away.
RESULTS = ROOT / "bench" / "mutation_results"
PACKAGES = ["gsco_common", "specialist", "site_agent", "registry", "gsco_runtime", "hub"]
DOC = "testing.md"
TITLE = "Testing"
SCORE_SECTION = "## Mutation scores"
FEATURES_SECTION = "## Five features broken"

# Module -> the tests that cover it (mutmut then runs, per mutant, those of them that reach it).
MODULES: dict[str, tuple[str, ...]] = {
    "gsco_common/audit_chain.py": (
        "tests/gsco_common/test_audit_chain.py",
        "tests/hub/service/test_audit_chain.py",
    ),
    "registry/store/audit.py": ("tests/registry/test_tables_contract.py",),
    "registry/bundle/signing.py": ("tests/registry/test_signing.py",),
    "registry/bundle/layout.py": ("tests/registry/test_layout.py", "tests/registry/test_signing.py"),
    "registry/trust.py": ("tests/registry/test_trust.py",),
    "registry/policy/policy.py": (
        "tests/registry/test_policy.py",
        "tests/security/test_policy_and_init.py",
        "tests/properties/test_policy_yaml.py",
    ),
    "registry/policy/checks.py": ("tests/registry/test_policy.py",),
    "registry/bundle/phi.py": ("tests/registry/test_phi.py", "tests/security/test_phi_free_text.py"),
    "registry/bundle/free_text.py": ("tests/security/test_phi_free_text.py",),
    "specialist/export/anonymize.py": ("tests/site_agent/export/test_anonymize.py",),
    "gsco_runtime/pool/pool.py": (
        "tests/gsco_runtime/test_pool_inflight.py",
        "tests/gsco_runtime/test_pool_offline.py",
        "tests/gsco_runtime/test_pool.py",
        "tests/gsco_runtime/test_hotswap.py",
        "tests/security/test_pinned_key.py",
        "tests/security/test_serving_state.py",
    ),
    "gsco_runtime/pool/registry_source.py": (
        "tests/gsco_runtime/test_registry_source.py",
        "tests/gsco_runtime/test_pool_offline.py",
        "tests/gsco_runtime/test_pool.py",
        "tests/security/test_pinned_key.py",
        "tests/security/test_serving_state.py",
        "tests/security/test_revoked_model.py",
        "tests/security/test_offline_revocation.py",
    ),
}

# Surviving mutants that behave exactly like the original (name -> why); published with the table.
_CODEC_CASE = "codec names are case-insensitive: `UTF-8` is `utf-8`, `ASCII` is `ascii`"
_TEMP_NAME = "names a private temporary file or folder that nothing else reads and that is deleted at once"
_ORDERED_SET = "the dict is an ordered set: only its keys are read (`list(hits)`), never the value stored"
_EMPTY_GRAPH = (
    "`attribute.g` of an attribute that holds no graph reads as an empty graph (reading does not set "
    "it): walking it finds no node, so no domain is added"
)
_ALWAYS_COPY = (
    "copying a model that has local functions first only costs time: the inliner builds a new model "
    "from its input anyway, so the caller's model stays untouched and the result is the same"
)
_ASCII_DEFAULT = (
    "the shipped `default.yaml` is ASCII only: any locale encoding reads the same text from it "
    "(a user's policy file is read as UTF-8 whatever the locale: `test_a_policy_file_is_read_as_utf8_"
    "whatever_the_locale`)"
)
_UTF8_DEFAULT = "`str.encode` and `bytes.decode` use UTF-8 when no codec is named"
_EMPTY_REPEATED = "walking a repeated field that is empty yields nothing, as skipping it does"
_IGNORECASE_CLASS = (
    "under `re.IGNORECASE` the class `[a-za-z0-9]` (or `[A-ZA-Z0-9]`) matches the same bytes as `[A-Za-z0-9]`"
)
_LARGER_OVERLAP = (
    "chunks that overlap by one byte more still search only bytes of `data`: the same strings are found"
)
_SIGNED_VIEW = "`tobytes()` of a signed-byte view returns the same bytes as of an unsigned one"
_SHORT_HOME = (
    'the final filter drops every string shorter than `MIN_FORBIDDEN_LENGTH` (`/`, and `""`, which '
    "`str(Path.home())` never is) anyway"
)
_NEEDLE_ORDER = (
    "the order of the needles changes which alternative of the pattern is tried first, not whether "
    "it matches: the regex backtracks into the others when a token boundary fails, `scan_strings` "
    "only asks whether there is a match and `scan_bytes` whether any needle occurs"
)
_ASCII_DOCUMENT = (
    "the trust document is ASCII only (PEM keys, hex digests, JSON with non-ASCII escaped): the "
    "locale's default encoding (UTF-8 or ASCII) writes and reads the same bytes"
)
_LAST_FIGURES = (
    "only the last pair's figures (the update-level ones) can be `None`: the first is `dp`, which "
    "is not `None` there, so leaving the loop ends it just as skipping to the next pair does"
)
_CPU_FALLBACK = (
    "the project installs the CPU build of onnxruntime: with no providers named it uses the CPU "
    "provider, and for an unknown provider name it warns and falls back to the CPU provider, so the "
    "session runs on the provider named"
)
_FALSY_CARD_ERROR = '`None` is false as `""` is: only the truth of `card_error` is read'
_CARD_READ_AGAIN = (
    "every check in `_NEEDS_CARD` reads the card first, and `run_checks` turns the `CardError` it "
    "raises into the same failure with the same message"
)
_FALSY_CAN_START = "`HostNames.search` only tests `can_start` for truth: `None` is false as `False` is"
_FALSY_FLAG = "`onnx.load` only tests `load_external_data` for truth: `None` is `False`"
_FALSY_OFFLINE = "`_obtain` only tests `offline` for truth: `None` is `False`"
_REF_FINGERPRINT = (
    "a `BundleRef`'s `site_fingerprint` is only written into the cache's record and read back from it: "
    "the pool, the verification and the reports use the card's key fingerprint, which the site "
    "signature checks"
)
_TRUST_KEY_UNUSED = (
    "not strictly equivalent, but it can only refuse more, never serve more: the trust store's "
    "central key differs from the pinned one only when the registry's own key is another; then "
    "`trust_problems` (checked with the pinned key) fails the sync once the registry holds a signed "
    "checkpoint, which every approval writes; without one no version is admitted from the registry, "
    "and a cached bundle re-verified with that store is refused (it was approved with the pinned key)"
)
_EMPTY_DEFAULT_SNAPSHOT = (
    "the stand-in snapshot of a task the pool does not hold yet is read only for its specialists "
    "(none), never for its task id"
)
EQUIVALENT: dict[str, str] = {
    "gsco_common.audit_chain.x_link_digest__mutmut_16": _CODEC_CASE,
    "registry.bundle.free_text.x_free_text_fields__mutmut_6": _ORDERED_SET,
    "registry.bundle.free_text.xǁHostNamesǁsearch__mutmut_28": _FALSY_CAN_START,
    "specialist.export.anonymize.x__node_domains__mutmut_5": _EMPTY_GRAPH,
    "specialist.export.anonymize.x_anonymize_model__mutmut_2": _ALWAYS_COPY,
    "registry.policy.policy.x__default_raw__mutmut_2": _ASCII_DEFAULT,
    "registry.policy.policy.x__default_raw__mutmut_10": _CODEC_CASE,
    "registry.policy.policy.x_load_policy__mutmut_14": _CODEC_CASE,
    "registry.bundle.phi.x_onnx_strings__mutmut_35": _UTF8_DEFAULT,
    "registry.bundle.phi.x_onnx_strings__mutmut_38": _CODEC_CASE,
    "registry.bundle.phi.x_onnx_strings__mutmut_46": _UTF8_DEFAULT,
    "registry.bundle.phi.x_onnx_strings__mutmut_49": _CODEC_CASE,
    "registry.bundle.phi.x__is_set__mutmut_1": _EMPTY_REPEATED,
    "registry.bundle.phi.x__needles__mutmut_8": _CODEC_CASE,
    "registry.bundle.phi.x__needles__mutmut_13": _NEEDLE_ORDER,
    "registry.bundle.phi.x__needles__mutmut_16": _NEEDLE_ORDER,
    "registry.bundle.phi.x__needles__mutmut_17": _NEEDLE_ORDER,
    "registry.bundle.phi.x__needles__mutmut_18": _NEEDLE_ORDER,
    "registry.bundle.phi.x__pattern__mutmut_15": _IGNORECASE_CLASS,
    "registry.bundle.phi.x__pattern__mutmut_16": _IGNORECASE_CLASS,
    "registry.bundle.phi.x__pattern__mutmut_18": _IGNORECASE_CLASS,
    "registry.bundle.phi.x__pattern__mutmut_19": _IGNORECASE_CLASS,
    "registry.bundle.phi.x_scan_strings__mutmut_10": _UTF8_DEFAULT,
    "registry.bundle.phi.x_scan_strings__mutmut_13": _CODEC_CASE,
    "registry.bundle.phi.x_scan_strings__mutmut_17": _ORDERED_SET,
    "registry.bundle.phi.x_scan_bytes__mutmut_7": _LARGER_OVERLAP,
    "registry.bundle.phi.x_scan_bytes__mutmut_14": _SIGNED_VIEW,
    "registry.bundle.phi.x_system_identifiers__mutmut_11": _SHORT_HOME,
    "registry.bundle.phi.x_system_identifiers__mutmut_12": _SHORT_HOME,
    "registry.bundle.signing.x__hashing_config__mutmut_4": "model-signing's default: ignore_git_paths=True",
    "registry.bundle.signing.x_sign_bundle__mutmut_6": "`token_bytes(None)` is 32 random bytes too",
    "registry.bundle.signing.x_sign_bundle__mutmut_7": "a one-time passphrase of 33 random bytes, not 32",
    "registry.bundle.signing.x_sign_bundle__mutmut_16": _TEMP_NAME,
    "registry.bundle.signing.x_sign_bundle__mutmut_17": _TEMP_NAME,
    "registry.bundle.signing.x_sign_bundle__mutmut_18": _TEMP_NAME,
    "registry.bundle.signing.x_sign_bundle__mutmut_22": _TEMP_NAME,
    "registry.bundle.signing.x_sign_bundle__mutmut_23": _TEMP_NAME,
    "registry.bundle.signing.x_sign_bundle__mutmut_26": (
        "mode 0o601 instead of 0o600 still lets no one else read the (encrypted) key file, "
        "which lies in a 0o700 temporary folder"
    ),
    "registry.bundle.signing.x_verify_bundle__mutmut_8": _TEMP_NAME,
    "registry.trust.xǁTrustStoreǁfrom_dict__mutmut_11": _CODEC_CASE,
    "registry.trust.xǁTrustStoreǁfrom_dict__mutmut_23": _CODEC_CASE,
    "registry.trust.xǁTrustStoreǁto_dict__mutmut_7": _CODEC_CASE,
    "registry.trust.xǁTrustStoreǁto_dict__mutmut_12": _CODEC_CASE,
    "registry.trust.xǁTrustStoreǁwrite__mutmut_2": _ASCII_DOCUMENT,
    "registry.trust.xǁTrustStoreǁwrite__mutmut_4": _ASCII_DOCUMENT,
    "registry.trust.xǁTrustStoreǁwrite__mutmut_13": _CODEC_CASE,
    "registry.trust.xǁTrustStoreǁread__mutmut_5": _CODEC_CASE,
    "registry.trust.xǁTrustStoreǁread__mutmut_3": _ASCII_DOCUMENT,
    "registry.bundle.signing.x_verify_bundle__mutmut_9": _TEMP_NAME,
    "registry.bundle.signing.x_verify_bundle__mutmut_10": _TEMP_NAME,
    "registry.bundle.signing.x_verify_bundle__mutmut_14": _TEMP_NAME,
    "registry.bundle.signing.x_verify_bundle__mutmut_15": _TEMP_NAME,
    "registry.policy.checks.x__privacy__mutmut_33": _LAST_FIGURES,
    "registry.policy.checks.x__site_signature__mutmut_12": _CODEC_CASE,
    "registry.policy.checks.x__onnxruntime_load__mutmut_4": _CPU_FALLBACK,
    "registry.policy.checks.x__onnxruntime_load__mutmut_6": _CPU_FALLBACK,
    "registry.policy.checks.x__onnxruntime_load__mutmut_9": _CPU_FALLBACK,
    "registry.policy.checks.x__onnxruntime_load__mutmut_10": _CPU_FALLBACK,
    "registry.policy.checks.x__onnxruntime_load__mutmut_11": _CPU_FALLBACK,
    "registry.policy.checks.x__anonymization__mutmut_3": _FALSY_FLAG,
    "registry.policy.checks.x_run_checks__mutmut_1": _FALSY_CARD_ERROR,
    "registry.policy.checks.x_run_checks__mutmut_3": _CARD_READ_AGAIN,
    "gsco_runtime.pool.pool.xǁSpecialistPoolǁ_apply__mutmut_6": _EMPTY_DEFAULT_SNAPSHOT,
    "gsco_runtime.pool.pool.xǁSpecialistPoolǁ_apply__mutmut_24": _FALSY_OFFLINE,
    "gsco_runtime.pool.registry_source.xǁRegistrySourceǁtask_state__mutmut_7": _TRUST_KEY_UNUSED,
    "gsco_runtime.pool.registry_source.xǁRegistrySourceǁ_admit__mutmut_19": _REF_FINGERPRINT,
    "gsco_runtime.pool.registry_source.xǁRegistrySourceǁ_admit__mutmut_24": _REF_FINGERPRINT,
    "gsco_runtime.pool.registry_source.xǁRegistrySourceǁverify__mutmut_22": _CODEC_CASE,
    "gsco_runtime.pool.registry_source.xǁRegistrySourceǁverify__mutmut_25": _CODEC_CASE,
    "gsco_runtime.pool.registry_source.xǁRegistrySourceǁverify_cached__mutmut_9": _CODEC_CASE,
    "gsco_runtime.pool.registry_source.xǁRegistrySourceǁverify_cached__mutmut_21": _CODEC_CASE,
}

DETECTED = {"killed", "timeout", "caught by type check", "segfault"}


def stage(dest: Path) -> Path:
    """Copy the working tree (tracked and untracked, not ignored files) to ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (item.decode() for item in listed)):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def mutmut_config(module: str, tests: tuple[str, ...], top_level: list[str]) -> str:
    """The ``[tool.mutmut]`` section for one module (TOML arrays of strings are JSON arrays)."""
    others = sorted(set(top_level) - set(PACKAGES))
    return "\n".join(
        [
            "",
            "[tool.mutmut]",
            f"source_paths = {json.dumps(PACKAGES)}",
            f"only_mutate = {json.dumps([module])}",
            f"also_copy = {json.dumps(others)}",
            f"pytest_add_cli_args_test_selection = {json.dumps(list(tests))}",
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"]',
            # torch, onnxruntime and MLflow start threads: fork workers from a clean server.
            'process_isolation = "forkserver"',
            # mutmut's CPU limit per mutant is (test time + constant) * multiplier * 2, where the test
            # time leaves out fixture setup (keys, signed bundles: tens of CPU seconds per mutant
            # here). Its defaults (1 s, x15) killed unchanged code with SIGXCPU, counted as detected.
            "timeout_constant = 40.0",
            "timeout_multiplier = 3.0",
            "",
        ]
    )


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def run_module(module: str, children: int, *, survivors_only: bool = False) -> dict[str, object]:
    """Mutate one module against its tests; keep and return the per-status counts and survivors.

    With ``survivors_only`` only the kept result's open survivors run again (after new tests were
    written for them); the other mutants keep their verdicts.
    """
    kept = RESULTS / f"{slug(module)}.json"
    previous = json.loads(kept.read_text()) if survivors_only else None
    names = [] if previous is None else [n for n in previous["survivors"] if n not in EQUIVALENT]
    if previous is not None and not names:  # nothing open: mutmut without names would run them all
        return previous
    started = time.monotonic()
    copy = stage(WORK / slug(module))
    top_level = sorted({path.name for path in copy.iterdir()})
    with (copy / "pyproject.toml").open("a") as pyproject:
        pyproject.write(mutmut_config(module, MODULES[module], top_level))
    # Made before Python starts: a PYTHONPATH entry that does not exist yet is cached as not
    # importable, and the tests would then import the editable install instead of the mutants.
    (copy / "mutants").mkdir()
    # The tests' real specialists (trained and exported by the site agent) are made once, by
    # mutmut's first (unmutated) test session, and kept for the mutants' sessions under the copy.
    env = {**os.environ, "PYTHONPATH": str(copy / "mutants"), "GSCO_TEST_BUNDLES": str(copy / "kept-bundles")}
    mutmut = Path(sys.executable).parent / "mutmut"
    command = ["nice", "-n", "10", str(mutmut), "run", "--max-children", str(children), *names]
    subprocess.run(command, cwd=copy, env=env, check=True)
    meta = json.loads((copy / "mutants" / f"{module}.meta").read_text())
    statuses = {name: _status(code) for name, code in meta["exit_code_by_key"].items()}
    if previous is None:
        counts = Counter(statuses.values())
        open_ones = sorted(name for name, status in statuses.items() if status not in DETECTED)
    else:
        counts = Counter(previous["counts"])
        for name in names:
            counts[previous["survivors"][name]["status"]] -= 1
            counts[statuses[name]] += 1
        open_ones = [n for n in previous["survivors"] if n not in names or statuses[n] not in DETECTED]
        statuses = {**{n: v["status"] for n, v in previous["survivors"].items()}, **statuses}
    show = [str(mutmut), "show"]
    diffs = {
        n: subprocess.run([*show, n], cwd=copy, env=env, capture_output=True, text=True).stdout
        for n in open_ones
    }
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    result = {
        "module": module,
        "commit": head.stdout.strip(),
        "tests": list(MODULES[module]),
        "counts": {status: n for status, n in counts.items() if n},
        "survivors": {name: {"status": statuses[name], "diff": diffs[name]} for name in open_ones},
        # seconds of wall time: the full run plus any reruns of its survivors
        "wall_s": round(time.monotonic() - started) + (0 if previous is None else previous.get("wall_s", 0)),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(copy)
    return result


def _status(code: int | None) -> str:
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[code]


def score_lines(results: list[dict[str, object]]) -> list[str]:
    """The docs section: per module mutants, killed, equivalent, survivors and the score."""
    lines = [
        SCORE_SECTION,
        "",
        "Written by `bench/mutation.py` (mutmut 3.8.1, each module against the tests listed in the "
        "script's `MODULES`). Score: detected (killed or timed out) / (mutants - equivalent).",
        "",
        "| module | mutants | detected | equivalent | survived / no tests | score |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    explained: list[str] = []
    scored = {result["module"] for result in results}
    for result in results:
        counts: dict[str, int] = result["counts"]  # type: ignore[assignment]
        survivors: dict[str, dict[str, str]] = result["survivors"]  # type: ignore[assignment]
        total = sum(counts.values())
        detected = sum(n for status, n in counts.items() if status in DETECTED)
        equivalent = [name for name in survivors if name in EQUIVALENT]
        undetected = len(survivors) - len(equivalent)
        score = detected / (total - len(equivalent)) if total > len(equivalent) else 1.0
        row = [f"`{result['module']}`", total, detected, len(equivalent), undetected, f"{score:.0%}"]
        lines.append("| " + " | ".join(map(str, row)) + " |")
        explained += [f"- `{name}`: {EQUIVALENT[name]}" for name in equivalent]
        open_ones = [name for name in survivors if name not in EQUIVALENT]
        explained += [f"- `{name}` ({survivors[name]['status']}): not yet killed" for name in open_ones]
    unscored = [module for module in MODULES if module not in scored]
    lines += [f"| `{module}` | not run yet | | | | |" for module in unscored]
    if unscored:
        lines += [
            "",
            f"{len(unscored)} of {len(MODULES)} modules have no kept result yet (`--module M` scores one).",
        ]
    if explained:
        lines += ["", "Survivors (equivalent: behaves like the original, say why; others are open):", ""]
        lines += explained
    return lines


def stored_results() -> list[dict[str, object]]:
    found = {path.stem: json.loads(path.read_text()) for path in RESULTS.glob("*.json")}
    return [found[slug(module)] for module in MODULES if slug(module) in found]


@dataclass(frozen=True)
class Breakage:
    """A realistic fault: ``old`` replaced by ``new`` (exactly once) in ``path``."""

    feature: str
    path: str
    old: str
    new: str


# The trust core's quick unit tests of the five features below (`-m "not slow"`); the heavier
# security and registry-CLI tests, which cover the same features end to end, are left out so that
# the six runs fit on a loaded 2-core machine.
FEATURE_TESTS = (
    "tests/gsco_common/test_audit_chain.py",
    "tests/hub/service/test_audit_chain.py",
    "tests/registry/test_layout.py",
    "tests/registry/test_signing.py",
    "tests/registry/test_trust.py",
    "tests/registry/test_policy.py",
    "tests/registry/test_phi.py",
    "tests/security/test_phi_free_text.py",
    "tests/site_agent/export/test_anonymize.py",
    "tests/gsco_runtime/test_pool.py",
)

BREAKAGES = [
    Breakage(
        "skip signature verification (verify_bundle never checks the signature)",
        "registry/bundle/signing.py",
        "config.verify(bundle_dir, sig_path)",
        "pass",
    ),
    Breakage(
        "accept any policy (every enabled approval check passes)",
        "registry/policy/checks.py",
        "results.append(CheckResult(name, FAIL if problem else PASS, problem))",
        'results.append(CheckResult(name, PASS, ""))',
    ),
    Breakage(
        "don't chain the audit hash (an entry's digest leaves out its predecessor's)",
        "gsco_common/audit_chain.py",
        'payload = json.dumps({**fields, "prev": prev}',
        "payload = json.dumps({**fields}",
    ),
    Breakage(
        "drop the PHI scan (no string ever matches)",
        "registry/bundle/phi.py",
        "    pattern = _pattern([*forbidden, *deny_list])\n",
        "    pattern = None\n",
    ),
    Breakage(
        "swap before verify (the pool serves a fetched bundle whose check failed, and logs it)",
        "gsco_runtime/pool/pool.py",
        "        trust = self.source.verify(ref, staging)\n",
        "        try:\n            trust = self.source.verify(ref, staging)\n"
        "        except SignatureError as exc:\n"
        '            log.warning("%s", exc)\n'
        "            return staging\n",
    ),
]


def start_tests(copy: Path, report: Path) -> subprocess.Popen[bytes]:
    """Start ``FEATURE_TESTS`` in ``copy``, its own code first on every path (the junit XML to ``report``)."""
    env = {**os.environ, "PYTHONPATH": str(copy)}
    pytest = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", f"--junitxml={report}"]
    command = ["nice", "-n", "10", sys.executable, *pytest, *FEATURE_TESTS]
    return subprocess.Popen(command, cwd=copy, env=env, stdout=subprocess.DEVNULL)


def outcome(report: Path) -> tuple[int, list[str]]:
    """(tests run, the ids of those that failed or errored) from a junit XML report."""
    ran, failing = 0, []
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        if case.find("skipped") is not None:
            continue
        ran += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failing.append(f"{case.get('classname')}::{case.get('name')}")
    return ran, failing


def five_features() -> list[str]:
    """Patch each breakage into its own copy of the tree and count the tests that fail there.

    The unbroken tree and the five broken ones run one after the other (the machine is shared).
    """
    runs: list[tuple[Breakage | None, Path, subprocess.Popen[bytes]]] = []
    for index, breakage in enumerate([None, *BREAKAGES]):
        copy = stage(WORK / f"five-features-{index}")
        if breakage is not None:
            target = copy / breakage.path
            original = target.read_text()
            assert original.count(breakage.old) == 1, f"{breakage.path}: the patch no longer applies"
            target.write_text(original.replace(breakage.old, breakage.new))
        report = WORK / f"five-features-{index}.xml"
        process = start_tests(copy, report)
        process.wait()
        runs.append((breakage, report, process))
    ran, baseline = outcome(runs[0][1])
    rows = []
    for breakage, report, _ in runs[1:]:
        assert breakage is not None
        broken_ran, failed = outcome(report)
        failing = [name for name in failed if name not in baseline]
        rows.append(f"| {breakage.feature} | `{breakage.path}` | {broken_ran} | {len(failing)} |")
        print(f"{breakage.feature}: {len(failing)} failing", *failing, sep="\n  ")
    for index in range(len(runs)):
        shutil.rmtree(WORK / f"five-features-{index}")
    return [
        FEATURES_SECTION,
        "",
        "Written by `bench/mutation.py --five-features`: each fault is patched into its own copy of "
        "the tree and the trust core's unit tests run against it (`FEATURE_TESTS`: the audit-chain, "
        "layout, signing, trust, policy, PHI, free-text, anonymization and pool tests; "
        f"`-m 'not slow'`). Unbroken, {ran} tests run and {len(baseline)} fail"
        + (f" ({', '.join(baseline)}; not counted below)." if baseline else "."),
        "",
        "| broken feature | patched module | tests run | tests failing |",
        "|---|---|---:|---:|",
        *rows,
    ]


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--module", action="append", choices=sorted(MODULES), help="mutate only these")
    parser.add_argument("--children", type=int, default=2, help="mutants tested in parallel")
    parser.add_argument("--survivors", action="store_true", help="rerun only the kept open survivors")
    parser.add_argument("--table", action="store_true", help="only print the table of the kept results")
    parser.add_argument("--five-features", action="store_true", help="count failing tests per broken feature")
    parser.add_argument("--write-docs", action="store_true", help=f"write the section into docs/{DOC}")
    args = parser.parse_args()
    if args.five_features:
        publish(five_features(), DOC, TITLE, write=args.write_docs)
        return
    if not args.table:
        for module in args.module or list(MODULES):
            run_module(module, args.children, survivors_only=args.survivors)
    publish(score_lines(stored_results()), DOC, TITLE, write=args.write_docs)


if __name__ == "__main__":
    main()
