"""Progress of a fit, by ``verbose`` level: 0 nothing, 1 a tqdm bar over the
epochs with the training and validation loss in its postfix, 2 also one
``logging`` record per epoch on the ``"skae"`` logger.

Records go through whatever logging the application configured. When nothing
is configured for the ``"skae"`` logger (no handler on it or its ancestors),
``verbose=2`` shows them on stderr for the duration of the fit, written through
the bar so that the two do not garble each other.
"""

import logging
import sys
from contextlib import contextmanager, nullcontext

from ._engine import SharedSetting

logger = logging.getLogger("skae")


class _TqdmHandler(logging.Handler):
    """Writes records above the progress bar instead of through it."""

    def emit(self, record):
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging's own contract: never raise from emit
            self.handleError(record)


def _show_records():
    """Show INFO records on stderr when the application configured no logging."""
    if logger.hasHandlers():
        return None
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler, previous_level


def _hide_records(added):
    if added is not None:
        handler, previous_level = added
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


#: shared by overlapping fits in several threads: added by the first, removed by the last
_visible_records = SharedSetting(_show_records, _hide_records)


@contextmanager
def epoch_reporter(verbose, *, desc, total, first_epoch=0):
    """``report(loss, validation_score, learning_rate=None)`` to call once per
    epoch, with the rate that epoch ran at.

    Parameters
    ----------
    verbose : int
        0 silent, 1 progress bar, 2 bar and one log record per epoch.
    desc : str
        What is being trained, shown left of the bar and in each record.
    total : int
        Epochs at most (the bar's length; early stopping ends it sooner).
    first_epoch : int
        Epochs completed before this call, so records count on from there.
    """
    if not verbose:
        yield lambda loss, score, learning_rate=None: None
        return
    # imported here: tqdm.auto warns at import in a notebook without ipywidgets
    from tqdm.auto import tqdm

    with _visible_records() if verbose >= 2 else nullcontext():
        bar = tqdm(total=total, desc=desc, unit="epoch", file=sys.stderr, dynamic_ncols=True)
        epoch = first_epoch

        def report(loss, score, learning_rate=None):
            nonlocal epoch
            epoch += 1
            postfix = {"loss": f"{loss:.4g}"}
            if score is not None:
                # the validation score is a negative loss (higher is better)
                postfix["val_loss"] = f"{-score:.4g}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
            if verbose >= 2:
                line = f"{desc}: epoch {epoch}, loss {loss:.6g}"
                if score is not None:
                    line += f", validation loss {-score:.6g}"
                if learning_rate is not None:
                    line += f", learning rate {learning_rate:.6g}"
                logger.info(line)

        try:
            yield report
        finally:
            bar.close()
