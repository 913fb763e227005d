"""Hub datasets for lm-eval task files: `dataset_path: org/name` read through
`datasets.load_dataset`, as lm-eval reads it, when no local copy is under --data-dir.

`datasets` does the fetching and the caching (HF_HOME / HF_DATASETS_CACHE) and honours its
own offline flags (HF_DATASETS_OFFLINE, HF_HUB_OFFLINE): nothing here sets them. It is an
optional dependency (the [lmeval] extra): without it a hub dataset is a one-line error.
"""

from __future__ import annotations

from typing import Any


class HubDataError(Exception):
    """Why a hub dataset could not be read, in one line; `field` names the YAML key at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def load_split(path: str, name: str | None, split: str, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of `split` of the dataset `path` (configuration `name`), as lm-eval's
    `datasets.load_dataset(path, name, **dataset_kwargs)[split]` gives them."""
    try:
        import datasets
    except ImportError:
        raise HubDataError("dataset_path", "reading it from the hub needs the 'datasets' package "
                           "(pip install 'llmassay[lmeval]')") from None
    try:
        data = datasets.load_dataset(path, name, split=split, **kwargs)
    except ConnectionError as exc:  # no network, or HF_HUB_OFFLINE / HF_DATASETS_OFFLINE and not cached
        raise HubDataError("dataset_path", f"cannot be fetched from the hub ({_first_line(exc)}): it needs a "
                           "network, or a local copy") from None
    except datasets.exceptions.DatasetNotFoundError as exc:
        raise HubDataError("dataset_path", f"is not on the hub ({_first_line(exc)})") from None
    except ValueError as exc:
        if "split" in str(exc).lower():  # 'Unknown split "x". Should be one of [...]'
            raise HubDataError("test_split", _first_line(exc)) from None
        if "config" in str(exc).lower():  # 'BuilderConfig 'x' not found. Available: [...]'
            raise HubDataError("dataset_name", _first_line(exc)) from None
        raise HubDataError("dataset_path", f"datasets cannot load it ({_first_line(exc)})") from None
    except (OSError, TypeError) as exc:  # a dataset_kwargs key load_dataset does not take, a bad cache
        raise HubDataError("dataset_kwargs" if isinstance(exc, TypeError) else "dataset_path",
                           f"datasets cannot load it ({type(exc).__name__}: {_first_line(exc)})") from None
    return [dict(row) for row in data]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
