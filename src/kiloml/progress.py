"""Rich progress bars and tables for the command line.

On a terminal, training shows progress bars and one line per epoch. In a pipe or a CI log
(stdout not a terminal) there are no bars, and each epoch line is one plain line at full width.
Runs of more than ``MAX_EPOCH_LINES`` epochs print every k-th epoch (and the last).
"""

import math

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from kiloml.train.trainer import EpochRecord, Reporter

MAX_EPOCH_LINES = 100


class RichReporter(Reporter):
    """Epoch and batch progress bars (on a terminal) and a line per epoch with validation
    accuracy; ``epoch_lines=False`` shows the bars only, ``label`` names the bars."""

    def __init__(self, console: Console, epoch_lines: bool = True, label: str = "epochs"):
        self.console, self.epoch_lines, self.label = console, epoch_lines, label
        self.progress: Progress | None = None
        self.every, self.total = 1, 0

    def start(self, total_epochs: int, batches_per_epoch: int, first_epoch: int) -> None:
        self.total = total_epochs
        self.every = max(1, math.ceil(total_epochs / MAX_EPOCH_LINES))
        if self.epoch_lines and self.every > 1:
            self.console.print(f"(one line every {self.every} epochs)", soft_wrap=True)
        if not self.console.is_terminal:
            return
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeRemainingColumn(),
                                 console=self.console, transient=True)
        self.progress.start()
        self.epochs_task = self.progress.add_task(self.label, total=total_epochs,
                                                  completed=first_epoch)
        self.batches_task = self.progress.add_task("batches", total=batches_per_epoch)

    def batch(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.batches_task)

    def epoch(self, record: EpochRecord, is_best: bool) -> None:
        if self.progress is not None:
            self.progress.advance(self.epochs_task)
            self.progress.reset(self.batches_task)
        shown = (record.epoch + 1) % self.every == 0 or record.epoch + 1 == self.total
        if self.epoch_lines and shown:
            self.console.print(epoch_line(record, is_best), highlight=False, soft_wrap=True)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def epoch_line(record: EpochRecord, is_best: bool) -> str:
    """One epoch as one line (validation left out when there is no validation split)."""
    line = (f"epoch {record.epoch + 1:3d} {record.phase:6s} lr {record.lr:.2e}  "
            f"train loss {record.train_loss:.3f} acc {100 * record.train_accuracy:5.1f}%")
    if not math.isnan(record.val_accuracy):
        line += f"  val loss {record.val_loss:.3f} acc {100 * record.val_accuracy:5.1f}%"
    return line + (" [green]best[/]" if is_best else "")


def _percent(fraction: float) -> str:
    """``0.5`` → ``50%``, ``0.004`` → ``0.4%`` (never a misleading ``0%``)."""
    return f"{100 * fraction:.3g}%"


def summary_table(metrics: dict, title: str) -> Table:
    """The final summary of a training run."""
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    keep = "-"
    if "keep_w" in metrics:
        keep = f"W {_percent(metrics['keep_w'])} / U {_percent(metrics['keep_u'])}"
        if metrics.get("keep_head", 1.0) < 1.0:
            keep += f" / head {_percent(metrics['keep_head'])}"
        if metrics.get("sparsity_block", 1) > 1:
            keep += f" (blocks of {metrics['sparsity_block']})"
    if isinstance(metrics.get("str"), dict):  # STR: the learned kept fraction per group
        keep = "learned (STR): " + " / ".join(
            f"{escape(str(group))} {_percent(kept)}"
            for group, kept in metrics["str"].get("kept_by_group", {}).items())
    rows = [
        ("dataset", escape(str(metrics["dataset"]))),
        ("model", metrics["model"]),
        ("test accuracy", f"{100 * metrics['test_accuracy']:.2f}%"),
        ("model size (float32)", f"{metrics['model_size_bytes']:,} B"),
        ("model size (int8 weights)", f"{metrics['model_size_bytes_int8']:,} B"),
        ("parameters (nonzero / total)",
         f"{metrics['params_nonzero']:,} / {metrics['params_total']:,}"),
        ("fraction of weights kept", keep),
        ("MACs per inference", f"{metrics['macs_per_inference']:,}"),
        ("validation accuracy", _validation(metrics)),
        ("epoch kept", str(metrics.get("best_epoch", -1) + 1)),
    ]
    if "recipe" in metrics:
        rows.append(("recipe", metrics["recipe"]["kind"]))
    if metrics.get("frame_stack", 1) > 1:
        rows.append(("samples per recurrent step", str(metrics["frame_stack"])))
    if "budget" in metrics:
        budget = metrics["budget"]
        rows.append(("training budget", f"{budget['steps']:,} steps ({budget['epochs']} epochs "
                                        f"of {budget['batches_per_epoch']} batches of "
                                        f"{budget['batch_size']})"))
    rows.append(("training time", f"{metrics.get('train_seconds', 0):.1f} s"))
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def _validation(metrics: dict) -> str:
    """The validation accuracy and what it was measured on."""
    accuracy = metrics.get("best_val_accuracy")
    if accuracy is None:
        return "-"
    selection = metrics.get("selection", {})
    if selection.get("method") == "cross-validation":
        how = (f"± {100 * selection['accuracy_std']:.1f}, {selection['folds']} folds of "
               f"{selection['sequences']}")
    else:
        how = f"{selection.get('sequences', '?')} sequences"
    return f"{100 * accuracy:.2f}% ({how})"
