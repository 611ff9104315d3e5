"""`python -m robust_transfer.fit`: the command line. The experiment itself is `pipeline.run`.

Heavy libraries are imported only once the config is valid, so `--help`, `--print-config` and
config mistakes answer at once: config validation checks the registry's typed parameters,
which import no torch, datasets, transformers or Lightning (tests/test_cli_imports.py).

Exit codes: 0 done; 2 a mistake the user can fix (config, data file, run directory, damaged
checkpoint, lock), printed as one `error:` paragraph naming the file (and line), the key and the
fix, without a traceback; 128 + signal (143 SIGTERM, 130 SIGINT) when stopped by a signal, after
saving a resumable checkpoint. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
import warnings

from robust_transfer.config import ConfigError, compose, help_text, to_yaml


def _quiet_libraries() -> None:
    """Our own progress lines and Lightning's bar; not every library's banner."""
    import datasets
    import transformers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    for name in ("pytorch_lightning.utilities.rank_zero", "pytorch_lightning.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # a mid-epoch checkpoint does resume at its batch (callbacks.interrupt.MidEpochResume)
    warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--help" in args or "-h" in args:
        print(help_text())
        return 0
    print_only = "--print-config" in args
    args = [a for a in args if a != "--print-config"]
    try:
        cfg = compose(args)
        if print_only:
            print(to_yaml(cfg), end="")
            return 0
        _quiet_libraries()
        from robust_transfer.callbacks.interrupt import Interrupted
        from robust_transfer.data.sources import DataError
        from robust_transfer.models.encoder import ModelLoadError
        from robust_transfer.pipeline import RunError, run

        try:
            run(cfg)
        except (DataError, ModelLoadError, RunError) as err:
            raise ConfigError(str(err)) from None
        except Interrupted as stop:
            print(f"error: {interrupted_message(stop, cfg)}", file=sys.stderr)
            return stop.exit_code
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def interrupted_message(stop, cfg) -> str:
    where = f" during {stop.where}" if stop.where else ""
    saved = (
        f"saved a resumable checkpoint, {stop.checkpoint}"
        if stop.checkpoint is not None
        else f"finished stages are kept in {cfg.output_dir}/checkpoints"
    )
    return (
        f"stopped by {stop.args[0]}{where}; {saved}. Continue the run with the same command plus "
        f"resume=true (output_dir={cfg.output_dir})."
    )


if __name__ == "__main__":
    sys.exit(main())
