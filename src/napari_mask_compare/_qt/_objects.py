"""The per-object table of the Metrics tab: one row per object of A and of B.

:class:`ObjectModel` shows the columns of :func:`..suite.object_table`
(side, id, size, partner, IoU, kind, error) and sorts them with numpy, so that
tens of thousands of rows sort at once.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QAbstractTableModel, QModelIndex, Qt

__all__ = ["OBJECT_COLUMNS", "ObjectModel"]

#: Columns of the per-object table: (header, column of :func:`..suite.object_table`).
OBJECT_COLUMNS = (("side", "side"), ("id", "id"), ("size", "size"), ("partner", "partner"),
                  ("IoU", "iou"), ("kind", "kind"), ("error", "error"))


class ObjectModel(QAbstractTableModel):
    """The per-object table of a comparison (:func:`..suite.object_table` columns).

    Sorted by numpy (a header click calls :meth:`sort`), so that tens of
    thousands of objects sort at once; numbers sort as numbers, an object
    without partner first.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self._columns: dict = {}
        self._order = np.zeros(0, dtype=int)
        self._sorted_by: tuple[int, Qt.SortOrder] = (-1, Qt.SortOrder.AscendingOrder)

    def set_objects(self, columns: dict | None) -> None:
        self.beginResetModel()
        self._columns = columns or {}
        self._order = np.arange(len(self._columns.get("id", ())))
        self.endResetModel()
        self.sort(*self._sorted_by)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008, N802 (Qt API)
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008, N802 (Qt API)
        return 0 if parent.isValid() else len(OBJECT_COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return OBJECT_COLUMNS[section][0]
        return None

    def value(self, row: int, key: str):
        """The value of column ``key`` shown in ``row`` (in the sorted order)."""
        return self._columns[key][int(self._order[row])]

    def group(self, row: int) -> int:
        """Index of the review group of the object shown in ``row``."""
        return int(self.value(row, "group"))

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or role not in (Qt.ItemDataRole.DisplayRole,
                                               Qt.ItemDataRole.TextAlignmentRole):
            return None
        key = OBJECT_COLUMNS[index.column()][1]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter) \
                if key in ("id", "size", "partner", "iou") else None
        value = self.value(index.row(), key)
        if value is None:
            return "—"
        return f"{value:.3f}" if key == "iou" else str(value)

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        self._sorted_by = (column, order)
        n = len(self._columns.get("id", ()))
        self.layoutAboutToBeChanged.emit()
        if column < 0 or n == 0:
            self._order = np.arange(n)
        else:
            values = self._columns[OBJECT_COLUMNS[column][1]]
            if isinstance(values[0], str) or any(isinstance(v, str) for v in values):
                keys = np.array([str(v) for v in values])
            else:
                keys = np.array([-np.inf if v is None else v for v in values], dtype=float)
            order_ = np.argsort(keys, kind="stable")
            if order == Qt.SortOrder.DescendingOrder:
                order_ = order_[::-1]
            self._order = order_
        self.layoutChanged.emit()
