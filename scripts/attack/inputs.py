"""Bad inputs: about 500 generated cases, each one run of ``mask-compare``.

Promise (README, "Bad input"): either the command succeeds with the right
result (every output read back by its own library equals the reference: the
package's in-memory merge of the inputs as tifffile, numpy, mrcfile, zarr or
h5py read them; and ``load_mask`` gives the ids that reference reading gives),
or it exits 2 with exactly one line on stderr naming the file, no traceback,
and nothing written (no new entry anywhere under the case's folder, every
existing file byte for byte as it was).

A case is a name, the point of issue 17 it attacks, and a builder that writes
the case's files into its folder and returns a :class:`Setup`: the command's
arguments, what is expected (``refuse``, ``succeed``, ``either`` or ``warn``:
success with one warning line) and the expected outputs. The cases come from
:mod:`.files` (TIFF, NPY, MRC), :mod:`.stores` (zarr, OME-Zarr, HDF5) and
:mod:`.outputs` (output paths, report folders, folders of pairs).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .common import (
    Outcome,
    Violation,
    changes,
    describe,
    one_line_refusal,
    read_output,
    reference_merge,
    run_cli,
    same_ids,
    shorten,
    snapshot,
    stderr_lines,
)

PROMISES = {
    "custom": "see the case",
    "refuse": "exit 2 with one stderr line naming the file, no traceback, nothing written",
    "succeed": "success with ids equal to the reference read",
    "either": "success with ids equal to the reference read, or exit 2 with one stderr line "
              "naming the file and nothing written",
    "warn": "success with ids equal to the reference read and one warning line naming the file",
}


@dataclass
class Setup:
    """What a case runs and expects.

    Attributes
    ----------
    args : list
        ``mask-compare`` arguments, paths relative to the case's folder (its cwd).
    expect : {"refuse", "succeed", "either", "warn"}
    names : tuple of str
        A refusal line must contain one of them (the bad file, the output...).
    expected : callable, optional
        ``expected() -> {output path: array}``: the outputs of a success.
    reads : dict
        ``{input spec: (ids, classes or None)}``: what :func:`load_mask` must give
        (or refuse with :class:`InputError`).
    unreadable : tuple of str
        Input files with no right reading: :func:`load_mask` must refuse them.
    check : callable, optional
        ``check(run, folder, before, after) -> str or None``: a promise of its own (a
        folder of pairs), instead of the refusal or success checks.
    """

    args: list
    expect: str
    names: tuple = ()
    expected: Callable[[], dict] | None = None
    reads: dict = field(default_factory=dict)
    unreadable: tuple = ()
    check: Callable | None = None


@dataclass
class Case:
    name: str
    build: Callable[[Path, np.random.Generator], Setup]
    point: int | None = None

    @property
    def family(self) -> str:
        return self.name.split("/")[0]


def merge_setup(a: str, b: str, *, ref_a, ref_b, expect: str, out: str = "out.tif",
                names=None, policy: str = "a", classes_a=None, classes_b=None,
                options=()) -> Setup:
    """``mask-compare merge a b --out out``; ``ref_a``/``ref_b`` the arrays the files hold
    (None: the file has no right reading)."""
    known = ref_a is not None and ref_b is not None

    def expected():
        merged, classes = reference_merge(ref_a, ref_b, policy=policy, classes_a=classes_a,
                                          classes_b=classes_b)
        outputs = {out: merged}
        if classes is not None:
            outputs[str(Path(out).with_name(Path(out).stem + "_classes.tif"))] = classes
        return outputs

    given = ((a, ref_a, classes_a), (b, ref_b, classes_b))
    reads = {spec: (ref, cls) for spec, ref, cls in given if ref is not None}
    # a store is read lazily: what fails shows when computing, where the command is checked
    unreadable = tuple(spec for spec, ref, _ in given if ref is None
                       and not any(s in spec for s in (".zarr", ".h5")))
    return Setup(["merge", a, b, "--out", out, "--policy", policy, *options], expect,
                 names=tuple(names or (a.split(":")[0],)), expected=expected if known else None,
                 reads=reads, unreadable=unreadable)


# --------------------------------------------------------------------------- running


def all_cases() -> list[Case]:
    from . import files, outputs, stores

    return [*files.cases(), *stores.cases(), *outputs.cases()]


def stratified(cases: list[Case], n: int, rng: np.random.Generator) -> list[Case]:
    """About ``n`` cases, spread over the families (every family at least once)."""
    by_family: dict[str, list[int]] = {}
    for k, case in enumerate(cases):
        by_family.setdefault(case.family, []).append(k)
    chosen = []
    for indices in by_family.values():
        share = max(1, round(n * len(indices) / len(cases)))
        chosen += list(rng.choice(indices, size=min(share, len(indices)), replace=False))
    return [cases[k] for k in sorted(chosen)]


def run(ws, *, seed: int, quick: bool, jobs: int = 2) -> Outcome:
    outcome = Outcome("bad inputs")
    cases = all_cases()
    if quick:
        cases = stratified(cases, 30, np.random.default_rng([seed, 1]))
    with ThreadPoolExecutor(jobs) as pool:
        for record, violations in pool.map(
                lambda item: run_case(ws, item[1], index=item[0], seed=seed), enumerate(cases)):
            outcome.cases += 1
            outcome.log.append(record)
            outcome.violations.extend(violations)
    outcome.figures = {"families": sorted({c.family for c in cases})}
    return outcome


def run_case(ws, case: Case, *, index: int, seed: int):
    """Build, run and check one case: (log record, violations: none or one)."""
    folder = ws.folder("inputs", f"{index:03d}")
    try:
        with warnings.catch_warnings():  # tifffile's about what the case means to write
            warnings.simplefilter("ignore")
            setup = case.build(folder, np.random.default_rng([seed, index]))
    except Exception as err:  # noqa: BLE001 (a case that cannot be made is the attack's bug)
        return {"case": case.name, "status": "not built"}, [Violation(
            case.name, "build the case", "a case", f"the attack could not build it: {err!r}")]
    before = snapshot(folder)
    result = run_cli(setup.args, cwd=folder)
    try:
        happened = _judge(setup, result, folder=folder, before=before, after=snapshot(folder))
    except Exception as err:  # noqa: BLE001 (e.g. load_mask failing on what merge read)
        happened = f"checking the result raised {shorten(repr(err))}"
    violations = [] if happened is None else [Violation(
        case.name, shorten(result.command, 200), PROMISES[setup.expect], happened, case.point)]
    return ({"case": case.name, "status": result.status, "seconds": round(result.seconds, 2),
             "stderr": stderr_lines(result.stderr)[:3]}, violations)


def _judge(setup: Setup, result, *, folder: Path, before, after) -> str | None:
    """None when the run kept the case's promise, else what happened."""
    if setup.check is not None:
        return setup.check(result, folder, before, after)
    if result.status == 0 and setup.expect != "refuse":
        return (_check_success(setup, result, folder=folder, before=before, after=after)
                or _check_reads(setup, folder=folder, refused=False))
    if result.status == 2 and setup.expect in ("refuse", "either"):
        return (one_line_refusal(result, names=setup.names) or changes(before, after)
                or _check_reads(setup, folder=folder, refused=True))
    return describe(result)


def _check_success(setup: Setup, result, *, folder: Path, before, after) -> str | None:
    if setup.expected is None:
        return "success, but the input has no right reading"
    expected = setup.expected()
    made = [str(parent) for name in expected for parent in Path(name).parents
            if str(parent) != "."]  # the folders an output was asked into
    problem = changes(before, after, ignore=[*expected, *made])
    if problem:
        return f"more than its output written: {problem}"
    for name, array in expected.items():
        if array is None:  # a folder of files (a report): there, no more
            if not (folder / name).is_dir():
                return f"{name}: not written"
            continue
        kind, found = read_output(folder / name)
        want = _format_of(name)
        if kind != want:
            return f"{name}: {kind} written where {want} was asked for"
        problem = same_ids(found, array)
        if problem:
            return f"{name}: {problem}"
    lines = stderr_lines(result.stderr)
    warnings = [line for line in lines if ": warning: " in line]
    if setup.expect == "warn" and (len(warnings) != 1 or not any(
            n in warnings[0] for n in setup.names)):
        return f"{len(warnings)} warning line(s) naming the file"
    return None


def _format_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return {".tif": "tiff", ".tiff": "tiff", ".npy": "npy", ".png": "png", ".zarr": "zarr",
            ".h5": "hdf5"}.get(suffix, "unknown")


def _check_reads(setup: Setup, *, folder: Path, refused: bool) -> str | None:
    """``load_mask`` of each input gives the ids (and classes) of the reference read, or
    (when the command refused) an InputError; an input without a right reading is refused."""
    from napari_mask_compare import InputError, load_mask

    for spec in setup.unreadable:
        try:
            labels, _, _ = load_mask(f"{folder}/{spec}")
        except InputError:
            continue
        return (f"the command refused, but load_mask({spec}) reads it as {labels.shape} "
                f"{labels.dtype} without a word")
    for spec, (ids, classes) in setup.reads.items():
        try:
            labels, found_classes, _ = load_mask(f"{folder}/{spec}")
        except InputError as err:
            if refused:
                continue
            return f"the command read {spec}, but load_mask refuses it: {shorten(str(err))}"
        for what, found, want in (("ids", labels, ids), ("classes", found_classes, classes)):
            if want is None:
                continue
            found = np.asarray(found.compute() if hasattr(found, "compute") else found)
            problem = same_ids(found, want)
            if problem:
                return f"load_mask({spec}) {what}: {problem}"
    return None
