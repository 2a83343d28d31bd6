"""Upload a checkpoint folder and its model card to the Hugging Face Hub (``huggingface_hub``).

The folder that is uploaded is built first (the checkpoint's top-level files, without optimizer state,
Trainer pickles or sub-folders, plus ``README.md``); ``dry_run`` stops there, so what it writes is
exactly what would be uploaded. Nothing uploaded names a local path: ``training_summary.json`` names a
local base model by its folder, ``skipped_samples.json`` keeps its counts only (its entries name local
data and media files), and a LoRA adapter whose base is a local folder is refused unless ``base_model``
gives the base's Hub id (written into the uploaded ``adapter_config.json``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from ..errors import ConfigError
from ..model.load import detect_format
from ..model.lora import ADAPTER_CONFIG
from ..train.summary import SUMMARY_NAME
from ..train.trainer import SKIP_REPORT
from .card import local_path, model_card, public_name

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


def check_base_model(model_dir: Path, fmt: str, base_model: str | None) -> None:
    """``base_model`` must be a Hub id; a LoRA adapter on a local base needs one (or a merge first)."""
    if base_model and local_path(base_model):
        raise ConfigError(f"--base_model {base_model}: give the base model's Hub id (owner/name), not a local folder")
    if fmt != "lora" or base_model:
        return
    base = json.loads((model_dir / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if local_path(base):
        raise ConfigError(
            f"{model_dir} is a LoRA adapter on a local base model ({base}), which nobody else can load: pass "
            f"--base_model OWNER/NAME (the base's Hub id), or merge it first: fastvlm-video export {model_dir} "
            f"{model_dir}-merged --merge_lora, then push {model_dir}-merged"
        )


def public_copy(path: Path, base_model: str | None) -> dict | None:
    """The uploaded content of a file that names local paths (``None``: upload the file as it is)."""
    if path.name == SKIP_REPORT:
        report = json.loads(path.read_text())
        keep = ("used", "skipped", "dataset_size", "counts")
        evaluation = {k: v for k, v in (report.get("eval") or {}).items() if k != "samples"}
        return {**{k: report[k] for k in keep if k in report}, "truncated_samples": len(report.get("truncated", [])),
                **({"eval": evaluation} if evaluation else {}),
                "note": "per-sample entries (local data and media paths) are kept in the local checkpoint only"}
    if path.name == SUMMARY_NAME:
        summary = json.loads(path.read_text())
        return {**summary, "base_model": base_model or public_name(summary.get("base_model"))}
    if path.name == ADAPTER_CONFIG and base_model:
        return {**json.loads(path.read_text()), "base_model_name_or_path": base_model}
    return None


def stage(model_dir: str | Path, out: str | Path, repo: str, base_model: str | None = None) -> Path:
    """Write the upload folder ``out``: the checkpoint's files (hard links where possible, local paths
    removed from the few files that hold them) and ``README.md``."""
    model_dir, out = Path(model_dir), Path(out)
    fmt = detect_format(model_dir)  # a clear error for a folder that is no checkpoint
    check_base_model(model_dir, fmt, base_model)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty: choose another --out or remove it")
    out.mkdir(parents=True, exist_ok=True)
    for path in files_to_upload(model_dir):
        content = public_copy(path, base_model)
        if content is not None:  # a new file: a hard link would change the checkpoint's own copy
            (out / path.name).write_text(json.dumps(content, indent=2) + "\n")
            continue
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
