"""Upload a checkpoint folder and its model card to the Hugging Face Hub (``huggingface_hub``).

The folder that is uploaded is built first (the checkpoint's top-level files, without optimizer state,
Trainer pickles or sub-folders, plus ``README.md``); ``dry_run`` stops there, so what it writes is
exactly what would be uploaded.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..errors import ConfigError
from ..model.load import detect_format
from .card import model_card

logger = logging.getLogger(__name__)

LEFT_OUT = ("training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json")


def files_to_upload(model_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in model_dir.iterdir()
        if p.is_file()
        and p.name not in LEFT_OUT
        and not p.name.startswith(("rng_state", "."))
        and p.name != "README.md"
    )


def stage(model_dir: str | Path, out: str | Path, repo: str, base_model: str | None = None) -> Path:
    """Write the upload folder ``out``: the checkpoint's files (hard links where possible) and ``README.md``."""
    model_dir, out = Path(model_dir), Path(out)
    detect_format(model_dir)  # a clear error for a folder that is no checkpoint
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty: choose another --out or remove it")
    out.mkdir(parents=True, exist_ok=True)
    for path in files_to_upload(model_dir):
        try:
            os.link(path, out / path.name)
        except OSError:
            shutil.copy2(path, out / path.name)
    (out / "README.md").write_text(model_card(model_dir, repo, base_model))
    return out


def require_token() -> None:
    from huggingface_hub import get_token

    if not get_token():
        raise ConfigError(
            "no Hugging Face token: run `hf auth login` or set HF_TOKEN (a token with write access), then push again"
        )


def upload(folder: Path, repo: str, private: bool) -> str:
    """Create ``repo`` (if needed) and upload ``folder``; one clear ``ConfigError`` for a missing token or network."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    require_token()
    api = HfApi()
    try:
        url = api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            folder_path=str(folder),
            repo_id=repo,
            repo_type="model",
            commit_message="Upload with fastvlm-video push",
        )
    except OfflineModeIsEnabled as exc:
        raise ConfigError(
            f"cannot upload {repo}: HF_HUB_OFFLINE is set ({exc}); unset it and push again"
        ) from exc
    except HfHubHTTPError as exc:
        raise ConfigError(
            f"cannot upload {repo}: the Hub refused ({str(exc).splitlines()[0]}); check the token's write access and the repo name"
        ) from exc
    except (OSError, *_transport_errors()) as exc:
        raise ConfigError(
            f"cannot upload {repo}: no connection to the Hub ({exc}); check the network and push again"
        ) from exc
    return str(url)


def _transport_errors() -> tuple[type[Exception], ...]:
    """The HTTP client's connection errors (huggingface_hub uses httpx, or its fork httpx2)."""
    import importlib.util

    return tuple(
        importlib.import_module(m).TransportError for m in ("httpx2", "httpx") if importlib.util.find_spec(m)
    )
