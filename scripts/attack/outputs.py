"""Bad-input cases of outputs: where ``merge`` and ``report`` may write.

- ``merge --out``: an input (by name, hard link, symlink), inside an input
  store or a foreign store, a foreign store, a review's output, a file we did
  not write, suffixes of other formats (``.png``, ``.npy``: written as that
  format, or refused; issue 17, point 5), and the good ones (``.tiff``,
  ``.ome.zarr``, a new nested folder, ``--overwrite`` of our own output);
- ``report --out``: a new or empty folder (allowed), a foreign folder, a
  foreign zarr store, a review's out dir, the inputs' folder (refused; point 4);
- folders of pairs: one bad pair among good ones (reported, the others
  merged), an output folder that is an input folder, a foreign file in the way,
  a big-endian TIFF among them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .common import changes, masks, read_output, reference_merge, run_cli, same_ids, stderr_lines
from .files import byte_order_case, write_tiff
from .inputs import Case, Setup, merge_setup
from .stores import write_zarr

SHAPE = (6, 40, 48)


def _inputs(folder: Path, rng, *, shape=SHAPE):
    a, b = masks(rng, shape)
    a, b = a.astype(np.uint16), b.astype(np.uint16)
    write_tiff(folder / "a.tif", a)
    write_tiff(folder / "b.tif", b)
    return a, b


def make_review(output: Path, a, b, *, decisions: int = 2) -> None:
    """A review of ``a`` and ``b`` into ``output``, a few decisions made, closed."""
    from napari_mask_compare.review import Review

    with Review.open(a, b, output=output) as review:
        for _ in range(decisions):
            review.decide("A")


# --------------------------------------------------------------------------- merge --out


def _merge_out(name: str, out: str, expect: str, *, prepare=None, point=None,
               shape=SHAPE, options=()) -> Case:
    """``merge a.tif b.tif --out <out>`` after ``prepare(folder, a, b)`` made the scene
    (it may return A's spec, or (A's spec, A, B) when it wrote other masks)."""
    def build(folder, rng):
        a, b = _inputs(folder, rng, shape=shape)
        a_spec = "a.tif"
        made = prepare(folder, a, b) if prepare is not None else None
        if isinstance(made, tuple):
            a_spec, a, b = made
        elif made is not None:
            a_spec = made
        return merge_setup(a_spec, "b.tif", ref_a=a, ref_b=b, expect=expect, out=out,
                           names=(out.split("/")[0],), options=options)

    return Case(f"merge-out/{name}", build, point=point)


def _link(kind: str):
    def prepare(folder, a, b):
        (os.link if kind == "hard" else os.symlink)("a.tif" if kind == "soft" else
                                                    folder / "a.tif", folder / "link.tif")
    return prepare


def _foreign_store(folder, a, b):
    write_zarr(folder / "other.zarr", a, fmt=2)


def _input_store(folder, a, b):
    write_zarr(folder / "a.zarr", a, fmt=3)
    return "a.zarr"


def _foreign_file(name: str):
    def prepare(folder, a, b):
        if name.endswith(".tif"):
            write_tiff(folder / name, a)
        else:
            (folder / name).write_bytes(b"user's notes\n")
    return prepare


def _our_output(folder, a, b):
    run_cli(["merge", "a.tif", "b.tif", "--out", "o.tif"], cwd=folder)


def _review_output(folder, a, b):
    make_review(folder / "r.tif", a, b)


def _many_objects(folder, a, b):
    """A 2D pair of 70,000 objects (more ids than 16 bits hold) replaces a.tif and b.tif."""
    ids = np.arange(1, 70_001, dtype=np.uint32)
    big = np.zeros((280, 256), np.uint32)
    big.flat[:ids.size] = ids
    write_tiff(folder / "a.tif", big)
    write_tiff(folder / "b.tif", big)
    return "a.tif", big, big


def merge_out_cases() -> list[Case]:
    return [
        _merge_out("is A", "a.tif", "refuse"),
        _merge_out("is B", "b.tif", "refuse"),
        _merge_out("a hard link of A", "link.tif", "refuse", prepare=_link("hard")),
        _merge_out("a symlink to A", "link.tif", "refuse", prepare=_link("soft")),
        _merge_out("under the file A", "a.tif/o.tif", "refuse"),
        _merge_out("inside the input store", "a.zarr/x.tif", "refuse", prepare=_input_store),
        _merge_out("a store inside the input store", "a.zarr/x.zarr", "refuse",
                   prepare=_input_store),
        _merge_out("a TIFF inside a foreign store", "other.zarr/x.tif", "refuse",
                   prepare=_foreign_store, point=5),
        _merge_out("a store inside a foreign store", "other.zarr/x.zarr", "refuse",
                   prepare=_foreign_store, point=5),
        _merge_out("a foreign store", "other.zarr", "refuse", prepare=_foreign_store),
        _merge_out("a foreign TIFF", "notes.tif", "refuse", prepare=_foreign_file("notes.tif")),
        _merge_out("a foreign .npy", "o.npy", "refuse", prepare=_foreign_file("o.npy")),
        _merge_out("a foreign folder", "dir", "refuse",
                   prepare=lambda f, a, b: (f / "dir").mkdir()),
        _merge_out("a review's output", "r.tif", "refuse", prepare=_review_output),
        _merge_out("our output, no --overwrite", "o.tif", "refuse", prepare=_our_output),
        _merge_out("our output, --overwrite", "o.tif", "succeed", prepare=_our_output,
                   options=("--overwrite",)),
        _merge_out("suffix .png (3D)", "o.png", "either", point=5),
        _merge_out("suffix .png (2D)", "o.png", "either", point=5, shape=(40, 48)),
        _merge_out("suffix .png, 70,000 ids", "o.png", "either", point=5,
                   prepare=_many_objects),
        _merge_out("suffix .npy", "o.npy", "either", point=5),
        _merge_out("suffix .jpg", "o.jpg", "refuse", point=5),
        _merge_out("suffix .h5", "o.h5", "either", point=5),
        _merge_out("suffix .txt", "o.txt", "refuse", point=5),
        _merge_out("no suffix", "o", "refuse", point=5),
        _merge_out("suffix .TIF", "o.TIF", "succeed"),
        _merge_out("suffix .tiff", "o.tiff", "succeed"),
        _merge_out("suffix .ome.tif", "o.ome.tif", "succeed"),
        _merge_out("suffix .ome.zarr", "o.ome.zarr", "succeed"),
        _merge_out("a new nested folder", "new/sub/o.tif", "succeed"),
    ]


# --------------------------------------------------------------------------- report --out


def _report(name: str, out: str, expect: str, *, prepare=None, point=None,
            options=()) -> Case:
    def build(folder, rng):
        a, b = _inputs(folder, rng, shape=(40, 48))
        if prepare is not None:
            prepare(folder / out, a, b)
        return Setup(["report", "a.tif", "b.tif", "--out", out, *options], expect,
                     names=(out,), expected=lambda: {out: None})

    return Case(f"report-out/{name}", build, point=point)


def _with_notes(out, a, b):
    out.mkdir(parents=True, exist_ok=True)
    (out / "notes.txt").write_text("the user's notes\n")


def _earlier_report(out, a, b):
    run_cli(["report", "a.tif", "b.tif", "--out", out.name], cwd=out.parent)


def report_cases() -> list[Case]:
    return [
        _report("a new folder", "rep", "succeed"),
        _report("an empty folder", "rep", "succeed", prepare=lambda o, a, b: o.mkdir()),
        _report("a foreign folder", "rep", "refuse", prepare=_with_notes, point=4),
        _report("a foreign zarr store", "other.zarr", "refuse", point=4,
                prepare=lambda o, a, b: write_zarr(o, np.zeros(SHAPE, np.uint8), fmt=2)),
        _report("a review's out dir", "rev", "refuse", point=4,
                prepare=lambda o, a, b: make_review(o / "r.tif", a, b)),
        _report("the inputs' folder", ".", "refuse", point=4),
        _report("an earlier report, no --overwrite", "rep", "refuse", prepare=_earlier_report),
        _report("an earlier report, --overwrite", "rep", "succeed", prepare=_earlier_report,
                options=("--overwrite",)),
    ]


# --------------------------------------------------------------------------- folders


def _pairs(folder: Path, rng, names=("p", "q", "r")) -> dict[str, tuple]:
    """Folders A/ and B/ of good pairs of TIFFs: {name: (a, b)}."""
    pairs = {}
    for name in names:
        a, b = masks(rng, SHAPE)
        for side, data in (("A", a), ("B", b)):
            (folder / side).mkdir(exist_ok=True)
            write_tiff(folder / side / f"{name}.tif", data.astype(np.uint16))
        pairs[name] = (a, b)
    return pairs


def _folder_check(good: dict, bad: list[str]):
    """The promise of a folder run with bad pairs: exit 2, one line per bad pair naming it
    plus the count, the good pairs merged right, nothing else written."""
    def check(run, folder, before, after):
        lines = stderr_lines(run.stderr)
        if run.status != 2 or "Traceback" in run.stderr:
            return f"exit {run.status}, {len(lines)} stderr line(s)"
        problem = changes(before, after, ignore=["O"])
        if problem:
            return f"written outside the output folder: {problem}"
        for name in bad:
            if sum(f"{name}.tif" in line for line in lines) != 1:
                return f"no one line naming {name}.tif: {lines[:3]}"
        if len(lines) != len(bad) + 1:
            return f"{len(lines)} stderr lines for {len(bad)} bad pair(s)"
        for name, (a, b) in good.items():
            _, found = read_output(folder / "O" / f"{name}.tif")
            problem = same_ids(found, reference_merge(a, b)[0])
            if problem:
                return f"O/{name}.tif: {problem}"
        for name in bad:
            if before.get(f"O/{name}.tif") != after.get(f"O/{name}.tif"):
                return f"O/{name}.tif written or changed"
        return None
    return check


def _folder(name: str, point=None):
    def build(folder, rng):
        pairs = _pairs(folder, rng)
        args = ["merge", "A", "B", "--out", "O"]
        if name == "a garbage file among good ones":
            (folder / "A" / "q.tif").write_bytes(b"II*\x00" + bytes(100))
            del pairs["q"]
            return Setup(args, "custom", check=_folder_check(pairs, ["q"]))
        if name == "a foreign file in the way":
            (folder / "O").mkdir()
            write_tiff(folder / "O" / "r.tif", pairs.pop("r")[0].astype(np.uint16))
            return Setup(args, "custom", check=_folder_check(pairs, ["r"]))
        if name == "out is an input folder":
            return Setup(["merge", "A", "B", "--out", "A"], "refuse", names=("A",))
        if name == "out inside an input folder":
            return Setup(["merge", "A", "B", "--out", "B/O"], "refuse", names=("B/O",))
        if name == "out is a foreign zarr store":
            write_zarr(folder / "O.zarr", pairs["p"][0], fmt=3)
            return Setup(["merge", "A", "B", "--out", "O.zarr"], "refuse", names=("O.zarr",))
        if name == "two files of one name":
            np.save(folder / "A" / "p.npy", pairs["p"][0])
            return Setup(args, "refuse", names=("p.tif", "p.npy", "A"))
        raise ValueError(name)

    return Case(f"folders/{name}", build, point=point)


def _folder_big_endian() -> Case:
    """A big-endian TIFF (and a good pair beside it) in folders of pairs: the ids as
    tifffile reads them."""
    inner = byte_order_case("u2", ">", "contiguous").build

    def build(folder, rng):
        setup = inner(folder, rng)  # a.tif, b.tif in folder
        for side, name in (("A", "a.tif"), ("B", "b.tif")):
            (folder / side).mkdir()
            os.replace(folder / name, folder / side / "x.tif")
        good = _pairs(folder, rng, names=("y",))
        outputs = setup.expected()
        return Setup(["merge", "A", "B", "--out", "O", "--policy", "union"], "succeed",
                     expected=lambda: {"O/x.tif": outputs["out.tif"],
                                       "O/y.tif": reference_merge(*good["y"], policy="union")[0],
                                       "O/mask-compare-merge.records": None},
                     reads={"A/x.tif": setup.reads["a.tif"]})

    return Case("folders/a big-endian TIFF", build, point=1)


def _folder_rerun(n: int) -> Case:
    """A folder run of ``n`` pairs done, then run again: the pairs are skipped, not refused."""
    def build(folder, rng):
        pairs = _pairs(folder, rng, names=("p", "q", "r")[:n])
        run_cli(["merge", "A", "B", "--out", "O"], cwd=folder)
        return Setup(["merge", "A", "B", "--out", "O"], "succeed",
                     expected=lambda: {**{f"O/{name}.tif": reference_merge(a, b)[0]
                                          for name, (a, b) in pairs.items()},
                                       "O/mask-compare-merge.records": None})

    return Case(f"folders/{n} pair{'s' * (n > 1)} done, run again", build)


def folder_cases() -> list[Case]:
    names = ("a garbage file among good ones", "a foreign file in the way",
             "out is an input folder", "out inside an input folder",
             "out is a foreign zarr store", "two files of one name")
    return [*(_folder(name, point=5 if "zarr" in name else None) for name in names),
            _folder_big_endian(), _folder_rerun(1), _folder_rerun(3)]


def cases() -> list[Case]:
    return [*merge_out_cases(), *report_cases(), *folder_cases()]

