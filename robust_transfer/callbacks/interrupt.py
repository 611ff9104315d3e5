"""SIGTERM and SIGINT end a run with a resumable checkpoint and exit code 128 + signal (143 / 130).

Lightning alone does not: it turns SIGTERM into `SIGTERMException`, a `SystemExit` without a
code (the process exits 0 with no results), and Ctrl-C into `sys.exit(1)` after ignoring
further Ctrl-Cs. `Signals` installs one handler for both signals for the whole run:

- while a Trainer runs (`trainer.fit` / `trainer.test`), the handler only raises Lightning's own
  flag (`received_sigterm`), so its loops stop at the next batch boundary, where the state is
  consistent; `SaveOnInterrupt.on_exception` then writes `last.ckpt` (mid-epoch, with the batch
  progress, as Lightning's fault-tolerant checkpoints do) before the Trainer unwinds;
- anywhere else (reading data, building caches, writing results) it raises `Interrupted` at once.

Lightning restores a mid-epoch checkpoint's weights, optimizer and batch counter, but starts
the epoch's data from its first batch again (it would restore a stateful loader's position, but
loads that state only after it has set up the loaders). `MidEpochResume` records how many batches
the epoch had finished and makes our `EpochSampler` skip them, so a run stopped by a signal and
resumed trains on exactly the batches of an uninterrupted run.

The run turns either into `Interrupted`, which `fit.main` reports in one paragraph with the way
to continue (`resume=true`) and exits 128 + signal, as a shell reports a signal-killed process.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytorch_lightning as pl

HANDLED = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):
    """The run was stopped by a signal; `exit_code` is 128 + the signal number.

    A BaseException (like KeyboardInterrupt), so no `except Exception` on the way swallows it.
    """

    def __init__(self, signum: int, where: str = "", checkpoint: Path | None = None):
        self.signum, self.where, self.checkpoint = signum, where, checkpoint
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class Signals:
    """Context manager owning SIGTERM/SIGINT for a run (main thread only; elsewhere a no-op)."""

    def __init__(self):
        self.signum: int | None = None
        self.trainer: pl.Trainer | None = None  # the Trainer now running, if any
        self._previous: dict = {}

    def __enter__(self) -> Signals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in HANDLED}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if self.trainer is not None:
            # Lightning's loops check this flag after every batch and raise SIGTERMException
            self.trainer._signal_connector.received_sigterm = True
            return
        if first:
            raise Interrupted(signum)


class MidEpochResume(pl.Callback):
    """Resume a mid-epoch checkpoint at the batch it stopped at (see the module docstring)."""

    KEY = "robust_transfer_mid_epoch"

    def __init__(self):
        self.pending: dict | None = None

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        done = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        checkpoint[self.KEY] = {"epoch": trainer.current_epoch, "batches": int(done)}

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self.pending = checkpoint.get(self.KEY)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # not on_train_epoch_start: Lightning skips that hook for an epoch restarted mid-way
        pending, self.pending = self.pending, None
        loader = trainer.train_dataloader
        sampler = getattr(loader, "sampler", None)
        if not pending or pending["epoch"] != trainer.current_epoch or not hasattr(sampler, "skip"):
            return
        if 0 < pending["batches"] < len(loader):
            sampler.set_epoch(pending["epoch"])
            sampler.skip = pending["batches"] * loader.batch_size


class SaveOnInterrupt(pl.Callback):
    """Registers its Trainer with `Signals`; on a signal during fit, saves `checkpoint`."""

    def __init__(self, signals: Signals, checkpoint: Path | None):
        self.signals, self.checkpoint = signals, checkpoint
        self.saved = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.signals.trainer = trainer
        if self.signals.signum is not None:  # a signal came in before the Trainer started
            trainer._signal_connector.received_sigterm = True

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.signals.trainer = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self.signals.signum is None or self.checkpoint is None or trainer.state.fn != "fit":
            return
        trainer.save_checkpoint(self.checkpoint)
        self.saved = True
