"""Rich progress bars and tables for the command line."""

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from kiloml.train.trainer import EpochRecord, Reporter


class RichReporter(Reporter):
    """Epoch and batch progress bars, one line per epoch with validation accuracy."""

    def __init__(self, console: Console):
        self.console = console
        self.progress: Progress | None = None

    def start(self, total_epochs: int, batches_per_epoch: int, first_epoch: int) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeRemainingColumn(),
                                 console=self.console, transient=True)
        self.progress.start()
        self.epochs_task = self.progress.add_task("epochs", total=total_epochs,
                                                  completed=first_epoch)
        self.batches_task = self.progress.add_task("batches", total=batches_per_epoch)

    def batch(self) -> None:
        self.progress.advance(self.batches_task)

    def epoch(self, record: EpochRecord, is_best: bool) -> None:
        self.progress.advance(self.epochs_task)
        self.progress.reset(self.batches_task)
        mark = " [green]best[/]" if is_best else ""
        self.console.print(
            f"epoch {record.epoch + 1:3d} {record.phase:6s} lr {record.lr:.2e}  "
            f"train loss {record.train_loss:.3f} acc {100 * record.train_accuracy:5.1f}%  "
            f"val loss {record.val_loss:.3f} acc {100 * record.val_accuracy:5.1f}%{mark}",
            highlight=False)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.stop()


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
        ("best epoch (validation)", str(metrics.get("best_epoch", -1) + 1)),
        ("training time", f"{metrics.get('train_seconds', 0):.1f} s"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table
