"""``train --method dpo``: preference optimisation on ``VideoTrainer`` (our data path, checkpoints and skip rules).

One training step on B pairs (``PreferenceCollator``: 2B rows, chosen then rejected, frames once):
the vision tower runs once on the B prompts' frames (or reads the feature cache), the projector's output
is given to both rows of each pair (``mm_encoder_outputs``), one forward gives the policy's answer
log-probs; the reference's come from (``--reference``):

- ``copy``: a frozen copy of the starting weights (one more model in memory; any fine-tune);
- ``adapter_off``: the same model with its LoRA adapter disabled (no extra memory; LoRA only);
- ``precompute``: one pass over the data before training, stored in ``OUTPUT_DIR/reference_logps.json``
  (no reference in memory or per step; resume reads the file).

With the tower frozen, the reference reuses the policy's tower output (the tower is the same weights);
with a trained tower it runs its own. SimPO needs no reference.
"""

from __future__ import annotations

import copy
import json
import logging
from collections import defaultdict
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm
from transformers.modeling_outputs import BaseModelOutputWithPooling

from ..errors import ConfigError
from .preference_loss import PairLogps, answer_logps, preference_loss, reward_metrics
from .trainer import VideoTrainer

logger = logging.getLogger(__name__)

REFERENCE_FILE = "reference_logps.json"


def fastvlm_of(model):
    """The ``FastVlmForConditionalGeneration`` inside DDP / PEFT wrappers."""
    model = getattr(model, "module", model)  # DDP
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def tower_output(fastvlm, pixel_values) -> torch.Tensor:
    """The vision tower's output as (frames, tokens, channels): what the projector takes (as ``get_image_features``)."""
    hidden = fastvlm.model.vision_tower(pixel_values, return_dict=True).last_hidden_state
    return hidden.flatten(2).permute(0, 2, 1)


def pair_forward(model, fastvlm, hidden: torch.Tensor | None, inputs: dict) -> PairLogps:
    """Answer log-probs of the 2B rows, the B prompts' projected frames given to both rows of their pair."""
    extra = {}
    if hidden is not None:
        features = fastvlm.model.multi_modal_projector(hidden)
        extra["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=torch.cat([features, features]))}
    logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False, **extra).logits
    return PairLogps.from_rows(*answer_logps(logits, inputs["labels"]))


class DPOTrainer(VideoTrainer):
    """``VideoTrainer`` whose loss is a preference loss on pairs; logs rewards, reward accuracy and margin."""

    def __init__(self, *args, beta: float, loss_type: str, simpo_gamma: float = 0.0, reference: str | None = "copy",
                 ref_model=None, **kwargs):  # fmt: skip
        super().__init__(*args, **kwargs)
        self.beta, self.loss_type, self.simpo_gamma, self.reference = beta, loss_type, simpo_gamma, reference
        self.model_accepts_loss_kwargs = False  # our loss is a mean over pairs: the Trainer scales it for accumulation
        self.ref_model = ref_model
        if ref_model is not None:
            ref_model.requires_grad_(False).eval().to(self.args.device)
        self.reference_table: dict[str, list[float]] | None = None
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}
        tower = fastvlm_of(self.model).model.vision_tower
        self.tower_trains = any(p.requires_grad for p in tower.parameters())

    # --- the loss ---------------------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self.count_samples(model, inputs)
        fastvlm = fastvlm_of(model)
        pixel_values = inputs.get("pixel_values")
        hidden = tower_output(fastvlm, pixel_values) if pixel_values is not None else None  # once per pair
        policy = pair_forward(model, fastvlm, hidden, inputs)
        reference = self.reference_logps(model, inputs, hidden)
        losses, chosen_rewards, rejected_rewards = preference_loss(policy, reference, self.loss_type, self.beta, self.simpo_gamma)
        loss = losses.mean()
        metrics = self._metrics["train" if model.training else "eval"]
        for name, value in reward_metrics(chosen_rewards, rejected_rewards, policy).items():
            metrics[name].append(value)
        return (loss, {}) if return_outputs else loss

    @torch.no_grad()
    def reference_logps(self, model, inputs: dict, hidden: torch.Tensor | None) -> PairLogps | None:
        """The reference's answer log-probs for the batch (``None`` for reference-free losses)."""
        if self.reference is None:
            return None
        if self.reference == "precompute":
            return self.stored_reference(inputs["pair_keys"])
        shared = None if hidden is None else hidden.detach()
        if self.reference == "copy":
            ref = fastvlm_of(self.ref_model)
            if self.tower_trains and hidden is not None:
                shared = tower_output(ref, inputs["pixel_values"])
            return pair_forward(self.ref_model, ref, shared, inputs).detach()
        peft_model = getattr(model, "module", model)
        with peft_model.disable_adapter():  # LoRA off, the projector's (and tower's) saved copies off: the base weights
            if self.tower_trains and hidden is not None:
                shared = tower_output(fastvlm_of(model), inputs["pixel_values"])
            return pair_forward(peft_model, fastvlm_of(model), shared, inputs).detach()

    def stored_reference(self, keys: list[str]) -> PairLogps:
        missing = [k for k in keys if k not in self.reference_table]
        if missing:
            raise ConfigError(f"{REFERENCE_FILE} has no reference log-probs for {missing[0]}: the data changed since it was "
                              "computed; start a new run (a new --output_dir) or use --reference copy")  # fmt: skip
        rows = torch.tensor([self.reference_table[k] for k in keys], device=self.args.device, dtype=torch.float32)
        return PairLogps(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3])

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    # --- precomputed reference ---------------------------------------------------------------------------------
    def precompute_reference(self, datasets: list, output_dir: Path) -> None:
        """``--reference precompute``: the starting model's answer log-probs for every pair, once, stored in
        ``output_dir/reference_logps.json`` (read back, not recomputed, when the file is there: resume)."""
        path = output_dir / REFERENCE_FILE
        if path.is_file():
            self.reference_table = json.loads(path.read_text())
            logger.info("reference log-probs read from %s (%d pairs)", path, len(self.reference_table))
            return
        model = self.model.to(self.args.device)
        was_training = model.training
        model.eval()
        table: dict[str, list[float]] = {}
        with torch.no_grad():
            for dataset in datasets:
                loader = DataLoader(dataset, batch_size=self.args.per_device_eval_batch_size, collate_fn=self.data_collator,
                                    num_workers=self.args.dataloader_num_workers)  # fmt: skip
                for batch in tqdm(loader, desc="reference log-probs", unit="batch", disable=self.args.disable_tqdm):
                    batch = self._prepare_inputs(batch)
                    fastvlm = fastvlm_of(model)
                    hidden = tower_output(fastvlm, batch["pixel_values"]) if batch.get("pixel_values") is not None else None
                    logps = pair_forward(model, fastvlm, hidden, batch)
                    for i, key in enumerate(batch["pair_keys"]):
                        table[key] = [logps.chosen[i].item(), logps.rejected[i].item(),
                                      logps.chosen_tokens[i].item(), logps.rejected_tokens[i].item()]  # fmt: skip
        model.train(was_training)
        if self.is_world_process_zero():
            output_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(table) + "\n")
        self.reference_table = table
        logger.info("reference log-probs of %d pairs stored in %s", len(table), path)

    # --- logging -------------------------------------------------------------------------------------------------
    def take_means(self, mode: str, prefix: str = "") -> dict[str, float]:
        """The mean of each DPO metric recorded in ``mode`` since the last call (then forgotten)."""
        means = {f"{prefix}{name}": sum(values) / len(values) for name, values in self._metrics[mode].items() if values}
        self._metrics[mode].clear()
        return means

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Training logs carry the DPO metrics' means since the last log."""
        super().log({**logs, **(self.take_means("train") if self.model.training else {})}, start_time)

    def evaluation_loop(self, *args, metric_key_prefix: str = "eval", **kwargs):
        """Evaluation's metrics (logged and returned by ``evaluate``) carry the DPO metrics over the whole set."""
        self._metrics["eval"].clear()
        output = super().evaluation_loop(*args, metric_key_prefix=metric_key_prefix, **kwargs)
        output.metrics.update(self.take_means("eval", f"{metric_key_prefix}_"))
        return output


def frozen_copy(model):
    """``--reference copy``: the starting weights, frozen, in evaluation mode."""
    return copy.deepcopy(model).requires_grad_(False).eval()
