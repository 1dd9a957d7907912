"""The Checkpoint box: a run's latest or best checkpoint (the Translate tab and the export dialog)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QWidget

from engine.io.run_folder import RunFolder

__all__ = ["CheckpointBox", "CHECKPOINT_CHOICES", "NO_BEST"]

CHECKPOINT_CHOICES = (("latest", "latest checkpoint"), ("best", "best checkpoint"))
NO_BEST = ("No best checkpoint yet: the run writes checkpoints/best.pt with each direction's generator at its "
           "closest held-out monitor reading, which needs the W monitor and held-out images")


class CheckpointBox(QComboBox):
    """Latest or best checkpoint of a run; best is disabled (with the reason as its tooltip) until it exists."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("checkpointBox")
        self.run_dir: str | None = None
        for key, text in CHECKPOINT_CHOICES:
            self.addItem(text, key)
        self.setToolTip("Checkpoint: which of the run's to use, the latest, or the best (each direction's "
                        "generator at its closest held-out monitor reading)")

    @property
    def choice(self) -> str:
        return self.currentData()

    def set_run(self, run_dir: str | None, which: str = "latest") -> None:
        """Follow ``run_dir`` and show ``which`` (without reporting a change)."""
        self.run_dir = run_dir
        self.refresh()
        self.blockSignals(True)
        self.setCurrentIndex(self.findData(which))
        self.blockSignals(False)

    def has_best(self) -> bool:
        return self.run_dir is not None and RunFolder(self.run_dir).best_checkpoint.is_file()

    def refresh(self) -> None:
        """Best.pt appears while a run trains: look again (when shown, before the list opens)."""
        i = self.findData("best")
        item = self.model().item(i)
        have = self.has_best()
        item.setEnabled(have)
        self.setItemData(i, "Each direction's generator at its closest held-out monitor reading" if have else NO_BEST,
                         Qt.ItemDataRole.ToolTipRole)

    def showPopup(self) -> None:  # noqa: N802
        self.refresh()
        super().showPopup()
