"""OME-NGFF metadata as :mod:`.store` reads it: the fields used, each checked for its type.

Read: ``multiscales[0]`` (its ``axes``, the ``path`` and ``coordinateTransformations``
of its ``datasets``, its own ``coordinateTransformations``) and ``labels``, from
NGFF 0.1-0.2 (no axes: t, c, z, y, x by position), 0.3 (axes by name), 0.4 (axes
as objects; zarr v2, attributes at the top) and 0.5 (zarr v3, under ``"ome"``). A
field of the wrong JSON type is one :class:`.errors.InputError` naming the store and
the field, e.g. ``x.ome.zarr: multiscales[0].axes[1].unit is a list, expected a
string (NGFF 0.4)``; nothing else is asked of the metadata, so that every store
that NGFF tools write opens.

ome-zarr's own checks (``ome_zarr.axes.Axes``, ``Format.validate_*``) are not used:
they check the order of the axes (and refuse a channel axis after the spatial ones,
which is read here) but not the types of these fields (an integer axis raises
AttributeError there, a unit that is a list passes), and name no field.

No Qt, no napari, no zarr: plain dicts in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError

__all__ = ["UNITS", "Multiscale", "axis_type", "labels_of", "multiscale_of", "ngff_attrs"]

#: NGFF unit names -> the short names used in this package (see read._METRES).
UNITS = {"micrometer": "µm", "nanometer": "nm", "millimeter": "mm", "centimeter": "cm",
         "meter": "m", "angstrom": "Å", "picometer": "pm"}
#: NGFF 0.1-0.2 name no axes: they are these, the last ones of the array's.
_OLD_AXES = ("t", "c", "z", "y", "x")


def axis_type(name: str) -> str:
    """The NGFF type of an axis known by its name: "space", "channel", "time" or "".

    >>> axis_type("Z"), axis_type("c"), axis_type("angle")
    ('space', 'channel', '')
    """
    return {"x": "space", "y": "space", "z": "space", "c": "channel", "t": "time"}.get(
        name.lower(), "")


def ngff_attrs(attrs: dict, *, where) -> dict:
    """The NGFF attributes of a zarr node's ``attrs``: under "ome" (0.5) or at the top (0.4)."""
    attrs = dict(attrs)
    ome = attrs.get("ome")
    if ome is None:
        return attrs
    return dict(_Fields(where, None).need(ome, dict, "ome", "an object (NGFF 0.5)"))


def labels_of(attrs: dict, *, where) -> list[str] | None:
    """The ``labels`` of a labels group (names of its label images), None when it has none."""
    labels = attrs.get("labels")
    if labels is None:
        return None
    fields = _Fields(where, attrs.get("version"))
    fields.need(labels, list, "labels", "a list of label names")
    for i, name in enumerate(labels):
        fields.need(name, str, f"labels[{i}]", "a label's name")
    return list(labels)


@dataclass(frozen=True)
class Multiscale:
    """``multiscales[0]`` of an NGFF image or label, as read (types checked).

    Attributes
    ----------
    paths : tuple of str
        The arrays of the levels, level 0 first.
    axes : tuple of dict or None
        ``{"name", "type", "unit"}`` per axis (type and unit None when not
        given); None for NGFF 0.1-0.2, which name no axes.
    scales : tuple of tuple of (str, tuple of float)
        Per level, its scale transforms then the multiscale's own, each as
        (field name, values).
    where, version : str
        For messages: the store, and " (NGFF 0.4)" or "".
    """

    paths: tuple[str, ...]
    axes: tuple[dict, ...] | None
    scales: tuple[tuple[tuple[str, tuple[float, ...]], ...], ...]
    where: str
    version: str

    def axes_scale_unit(self, level: int, *, ndim: int):
        """(axis names and types, scale per axis, unit) of level ``level`` of ``ndim`` axes.

        Returns
        -------
        axes : list of (name, type)
        scale : list of float, length ``ndim`` (non-positive values become 1)
        unit : str
            The unit of the last spatial axis that has one ("µm" for
            "micrometer"), else "pixel".

        Raises
        ------
        errors.InputError
            The axes or a scale do not have ``ndim`` entries.
        """
        axes = self.axes
        if axes is None:
            axes = tuple({"name": n, "type": None, "unit": None} for n in _OLD_AXES[-ndim:])
        if len(axes) != ndim:
            raise InputError(f"{self.where}: its NGFF axes ({len(axes)}) do not match its "
                             f"array's {ndim} dimensions; expected one axis per dimension")
        pairs = [(a["name"], a["type"] or axis_type(a["name"])) for a in axes]
        scale = np.ones(ndim)
        for field, values in self.scales[min(level, len(self.scales) - 1)]:
            if len(values) != ndim:
                raise InputError(f"{self.where}: {field} has {len(values)} values, expected "
                                 f"{ndim} (one per axis of the array){self.version}")
            scale = scale * np.asarray(values, dtype=float)
        units = [a["unit"] for a, (_, kind) in zip(axes, pairs) if kind == "space" and a["unit"]]
        unit = UNITS.get(units[-1], units[-1]) if units else "pixel"
        return pairs, [float(s) if s > 0 else 1.0 for s in scale], unit


def multiscale_of(attrs: dict, *, where) -> Multiscale | None:
    """``multiscales[0]`` of NGFF attributes (:func:`ngff_attrs`), None when there is none.

    Raises
    ------
    errors.InputError
        A field that is read has the wrong type, or the multiscale lists no
        dataset: one line naming ``where`` and the field.
    """
    multiscales = attrs.get("multiscales")
    if not multiscales:
        return None
    first = multiscales[0] if isinstance(multiscales, list) else None
    version = attrs.get("version", first.get("version") if isinstance(first, dict) else None)
    fields = _Fields(where, version)
    fields.need(multiscales, list, "multiscales", "a list of multiscale objects")
    fields.need(first, dict, "multiscales[0]", "an object")
    datasets = first.get("datasets")
    if not datasets:
        raise InputError(f"{where}: its NGFF multiscales metadata lists no dataset; "
                         "expected datasets with a path (level 0 first)")
    fields.need(datasets, list, "multiscales[0].datasets", "a list of datasets")
    paths, scales = [], []
    own = fields.scales(first, "multiscales[0]")
    for i, dataset in enumerate(datasets):
        name = f"multiscales[0].datasets[{i}]"
        fields.need(dataset, dict, name, "an object")
        paths.append(fields.need(dataset.get("path"), str, f"{name}.path",
                                 "the path of the level's array"))
        scales.append(fields.scales(dataset, name) + own)
    return Multiscale(tuple(paths), fields.axes(first.get("axes")), tuple(scales), str(where),
                      fields.version)


class _Fields:
    """Type checks of NGFF fields, each fault one line naming the store and the field."""

    def __init__(self, where, version):
        self.where = where
        self.version = f" (NGFF {version})" if isinstance(version, str) and version else ""

    def need(self, value, kind: type, field: str, expected: str | None = None):
        """``value`` when it is a ``kind`` (a number: int or float, not bool); else InputError."""
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              if kind is float else isinstance(value, kind))
        if not ok:
            expected = expected or _WORDS[kind]
            raise InputError(f"{self.where}: {field} is {_kind_of(value)}, expected "
                             f"{expected}{self.version}")
        return value

    def scales(self, node: dict, name: str) -> tuple[tuple[str, tuple[float, ...]], ...]:
        """The scale transforms of ``node["coordinateTransformations"]`` (translations skipped)."""
        transforms = node.get("coordinateTransformations")
        if transforms is None:
            return ()
        field = f"{name}.coordinateTransformations"
        self.need(transforms, list, field, "a list of transformations")
        found = []
        for i, transform in enumerate(transforms):
            self.need(transform, dict, f"{field}[{i}]", "an object")
            kind = self.need(transform.get("type"), str, f"{field}[{i}].type")
            if kind != "scale":
                continue
            values = self.need(transform.get("scale"), list, f"{field}[{i}].scale",
                               "a list of numbers, one per axis")
            for k, value in enumerate(values):
                self.need(value, float, f"{field}[{i}].scale[{k}]")
            found.append((f"{field}[{i}].scale", tuple(float(v) for v in values)))
        return tuple(found)

    def axes(self, axes) -> tuple[dict, ...] | None:
        """``multiscales[0].axes`` as dicts: names (0.3) or objects (0.4, 0.5); None if absent."""
        if axes is None:
            return None
        self.need(axes, list, "multiscales[0].axes", "a list of axes")
        found = []
        for i, axis in enumerate(axes):
            field = f"multiscales[0].axes[{i}]"
            if isinstance(axis, str):  # NGFF 0.3
                found.append({"name": axis, "type": None, "unit": None})
                continue
            self.need(axis, dict, field, "an axis name or an object with a name")
            name, kind, unit = (self.optional(axis, key, field)
                                for key in ("name", "type", "unit"))
            found.append({"name": name or "", "type": kind, "unit": unit})
        return tuple(found)

    def optional(self, node: dict, key: str, field: str) -> str | None:
        """``node[key]``, a string, or None when it is not given."""
        value = node.get(key)
        return None if value is None else self.need(value, str, f"{field}.{key}")


_WORDS = {str: "a string", float: "a number", list: "a list", dict: "an object"}


def _kind_of(value) -> str:
    """What a JSON value is, in words.

    >>> _kind_of([1]), _kind_of({}), _kind_of(3), _kind_of(True), _kind_of(None)
    ('a list', 'an object', 'a number', 'a boolean', 'missing')
    """
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return _WORDS.get(type(value), f"a {type(value).__name__}")

