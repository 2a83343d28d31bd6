"""Peak memory per GPU of a fine-tune, as a formula of the checkpoint's config and the run's settings.

    peak = weights + gradients + optimizer states + activations (vision tower at S, projector, LLM at L)

Parameters are counted from ``config.json``: the Qwen2 LLM and the projector by formula, the timm
vision tower by building it on PyTorch's ``meta`` device (no memory, no weights, ~1 s). Bytes per
parameter follow the precision and what trains (full, frozen parts, LoRA, QLoRA at 4 bits) and the
ZeRO stage (optimizer states from stage 1, gradients from 2, weights at 3 are split over the GPUs;
DeepSpeed keeps fp32 master weights and Adam moments: 12 bytes per trained parameter).

Activations are what autograd saves for the backward pass, from the layer shapes:
- LLM, per token and layer (Qwen2: RMSNorm, GQA attention with SDPA, SwiGLU MLP), counting the
  tensors each op keeps: 2d (norm) + d + 2kv (q, k, v after RoPE) + 2d (attention output, its
  reshaped copy) + 2d (norm) + 4I (gate, up, SiLU, product) = 7d + 2kv + 4I elements; plus the
  embeddings (2d) and the logits with the loss (float32 logits, log-softmax and their gradient:
  3 x 4 bytes x vocab per token); LoRA adds each adapter's A output and, with dropout, a dropped copy
  of its input (+ mask). With gradient checkpointing only each layer's input (d) is kept,
  plus one layer recomputed during the backward pass.
- Projector, per image token: its input (the tower's 3072 channels) and two d-wide outputs.
- Vision tower: a ``meta``-device forward at S gives every layer's output shape. Trained, it keeps
  them all (their sum); frozen, nothing is kept and the peak is the largest layer's input + output.
Validated against measured peaks in ``benchmarks/bench_budget.py`` (docs/performance.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from ..constants import DTYPE_BYTES, TRAIN_MODES  # noqa: F401  (TRAIN_MODES re-exported)

BYTES = DTYPE_BYTES
QLORA_BYTES = 0.5 + 4 / 64 * 0.25  # nf4 + double-quantized absmax per 64 weights (~0.52 bytes)
GiB = 1024**3
SHAPE_PROBE = 256  # px of the meta-device forward that measures the tower's layer shapes


@dataclass(frozen=True)
class ModelShape:
    """What the memory model needs from a FastVLM config."""

    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    tied: bool
    vision_hidden: int
    vision_arch: str = "fastvit_mci3"
    vision_args: str = "{}"  # JSON of timm model_args (hashable)
    max_positions: int | None = None

    @classmethod
    def from_config(cls, config: dict) -> ModelShape:
        """From a ``fast_vlm`` config.json (as a dict); an original ``llava_qwen2`` one works too."""
        text = config.get("text_config", config)
        vision = config.get("vision_config", {})
        hidden = text["hidden_size"]
        args = dict(vision.get("model_args") or {})
        args.pop("inference_mode", None)  # reparameterised or not: the same tensors flow
        return cls(
            vocab=text["vocab_size"],
            hidden=hidden,
            layers=text["num_hidden_layers"],
            heads=text["num_attention_heads"],
            kv_heads=text.get("num_key_value_heads") or text["num_attention_heads"],
            intermediate=text["intermediate_size"],
            tied=bool(text.get("tie_word_embeddings", config.get("tie_word_embeddings", False))),
            vision_hidden=vision.get("hidden_size", 3072),
            vision_arch=vision.get("architecture", "fastvit_mci3"),
            vision_args=json.dumps(args, sort_keys=True),
            max_positions=text.get("max_position_embeddings"),
        )

    @classmethod
    def from_path(cls, path: str | Path) -> ModelShape:
        """A checkpoint directory, a LoRA adapter directory (its base) or a config.json file."""
        from ..model import lora

        path = Path(path)
        if path.is_dir() and (path / lora.ADAPTER_CONFIG).is_file():
            return cls.from_path(lora.adapter_base(path))
        return cls.from_config(json.loads((path / "config.json" if path.is_dir() else path).read_text()))

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    # ---- parameters ----
    @property
    def llm_linear_params(self) -> int:
        d, kv, i = self.hidden, self.kv_dim, self.intermediate
        per_layer = d * d + d + 2 * (d * kv + kv) + d * d + 3 * d * i  # q (bias), k, v (bias), o, gate/up/down
        return self.layers * per_layer

    @property
    def llm_other_params(self) -> int:
        """Embeddings, lm_head (unless tied) and norms: what QLoRA keeps unquantized."""
        return self.vocab * self.hidden * (1 if self.tied else 2) + (2 * self.layers + 1) * self.hidden

    @property
    def llm_params(self) -> int:
        return self.llm_linear_params + self.llm_other_params

    @property
    def projector_params(self) -> int:
        return self.vision_hidden * self.hidden + self.hidden + self.hidden * self.hidden + self.hidden

    @property
    def tower_params(self) -> int:
        return _tower(self.vision_arch, self.vision_args)[0]

    def lora_params(self, r: int) -> int:
        d, kv, i = self.hidden, self.kv_dim, self.intermediate
        return self.layers * r * ((d + d) * 2 + (d + kv) * 2 + (d + i) * 2 + (i + d))  # q, o, k, v, gate, up, down

    # ---- activations (elements) ----
    def llm_layer_elements(self) -> int:
        """Saved per token and decoder layer."""
        return 7 * self.hidden + 2 * self.kv_dim + 4 * self.intermediate

    def tower_elements(self, image_size: int) -> tuple[int, int]:
        """(saved when trained, peak when frozen) per frame at ``image_size``.

        Every layer's output is (S / stride)^2 x channels, so both scale with S^2: one meta forward
        at ``SHAPE_PROBE`` px gives them for any S that is a multiple of 64.
        """
        saved, peak = _tower_activations(self.vision_arch, self.vision_args, SHAPE_PROBE)
        scale = (image_size / SHAPE_PROBE) ** 2
        return int(saved * scale), int(peak * scale)


@lru_cache(maxsize=8)
def _tower(arch: str, args_json: str):
    import timm

    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False, num_classes=0, **json.loads(args_json))
    return sum(p.numel() for p in model.parameters()), model


@lru_cache(maxsize=8)
def _tower_activations(arch: str, args_json: str, image_size: int) -> tuple[int, int]:
    """Shapes from a meta-device forward: the sum of every leaf layer's output, and the largest input + output."""
    model = _tower(arch, args_json)[1].train()
    saved, peak = [0], [0]

    def hook(module, inputs, output):
        out = output.numel() if isinstance(output, torch.Tensor) else 0
        inp = sum(t.numel() for t in inputs if isinstance(t, torch.Tensor))
        saved[0] += out
        peak[0] = max(peak[0], inp + out)

    leaves = [m for m in model.modules() if not list(m.children()) and not isinstance(m, torch.nn.Identity)]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model.forward_features(torch.empty(1, 3, image_size, image_size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return saved[0], peak[0]


@dataclass
class Setting:
    """What a run does: per-GPU batch, sequence length, frames, precision, what trains, memory savers."""

    batch_size: int = 1
    seq_len: int = 2048  # tokens per sample, image tokens included (the padded batch length)
    frames: int = 8  # frames per sample (all media)
    image_size: int = 1024
    precision: str = "bf16"  # fp32 | bf16 | fp16
    train: str = "full"  # full | frozen_llm (projector + tower if trained) | projector | lora | qlora
    train_vision_tower: bool = False
    lora_r: int = 64
    lora_dropout: float = 0.05  # > 0: every adapted linear keeps its dropped-out input and mask
    gradient_checkpointing: bool = False
    zero_stage: int = 0  # 0: plain DDP / one GPU; 1, 2, 3: DeepSpeed ZeRO
    num_gpus: int = 1
    optimizer_bytes: float | None = None  # per trained parameter; default: AdamW (2 moments)
    rows_per_sample: int = 1  # sequences per sample in the LLM: DPO 2 (chosen, rejected), GRPO G (sampled answers)
    reference_copy: bool = False  # DPO / GRPO: a frozen copy of the model is held beside it


@dataclass
class Estimate:
    """Bytes per GPU by part."""

    weights: float
    gradients: float
    optimizer: float
    activations_tower: float
    activations_llm: float  # projector, embeddings, decoder layers, logits and loss
    trainable_params: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def activations(self) -> float:
        return self.activations_tower + self.activations_llm

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations

    def rows(self) -> list[tuple[str, float]]:
        return [
            ("weights", self.weights),
            ("gradients", self.gradients),
            ("optimizer states", self.optimizer),
            ("activations: vision tower", self.activations_tower),
            ("activations: projector + LLM", self.activations_llm),
            ("total (peak)", self.total),
        ]


def estimate(shape: ModelShape, s: Setting) -> Estimate:
    """The peak memory per GPU of one training step of ``s`` on a model of ``shape``."""
    if s.train not in TRAIN_MODES:
        raise ValueError(f"train must be one of {TRAIN_MODES}, got {s.train!r}")
    b = BYTES[s.precision]
    n = max(1, s.num_gpus)
    tower, projector, llm = shape.tower_params, shape.projector_params, shape.llm_params
    lora = shape.lora_params(s.lora_r) if s.train in ("lora", "qlora") else 0

    llm_bytes = llm * b
    if s.train == "qlora":
        llm_bytes = shape.llm_linear_params * QLORA_BYTES + shape.llm_other_params * b
    weights = tower * b + projector * b + llm_bytes + lora * b
    reference = (tower + projector) * b + llm_bytes if s.reference_copy else 0.0  # frozen: no gradients, no optimizer
    trainable = projector + (tower if s.train_vision_tower else 0)
    trainable += {"full": llm, "lora": lora, "qlora": lora}.get(s.train, 0)
    grads = trainable * b
    if s.zero_stage >= 1:  # DeepSpeed: fp32 master weights + Adam moments, partitioned
        optimizer = trainable * (s.optimizer_bytes or (8 if s.precision == "fp32" else 12)) / n
    else:  # torch AdamW: two moments in the parameters' dtype
        optimizer = trainable * (s.optimizer_bytes or 2 * b)
    if s.zero_stage >= 2:
        grads /= n
    if s.zero_stage >= 3:
        weights /= n
    weights += reference

    saved, transient = shape.tower_elements(s.image_size)
    frames = s.batch_size * s.frames  # once per sample: its rows share the tower's output
    act_tower = frames * (saved if s.train_vision_tower else transient) * b
    tokens = s.batch_size * max(1, s.rows_per_sample) * s.seq_len
    image_tokens = frames * (s.image_size // 64) ** 2
    d = shape.hidden
    # Gradients flow back through the LLM whenever anything before it trains (projector, tower).
    per_layer = shape.llm_layer_elements()
    if s.train in ("lora", "qlora"):  # adapters keep their A outputs (r) and, with dropout, a dropped copy of each input
        inputs = 6 * d + shape.intermediate  # q, k, v, o, gate, up: d each; down: I
        per_layer += 7 * s.lora_r + (inputs * (b + 1) // b if s.lora_dropout > 0 else 0)
    layers = (shape.layers * d + per_layer) if s.gradient_checkpointing else shape.layers * per_layer
    act_llm = tokens * (layers + 4 * d) * b  # decoder layers + embeddings, image merge, final norm
    act_llm += tokens * shape.vocab * (b + 3 * 4)  # logits (+ float32 copy for the loss, log-softmax, its gradient)
    act_llm += image_tokens * (shape.vision_hidden + 2 * d) * b  # projector
    if s.reference_copy:  # the reference's no-grad forward of the same rows: its logits, while the policy's are held
        act_llm += tokens * shape.vocab * (b + 4)
    return Estimate(weights, grads, optimizer, act_tower, act_llm, trainable)


def parse_size(text: str) -> float:
    """'24GB' / '24GiB' / '80' (GiB) -> bytes (GB is read as GiB, as GPU makers mean it)."""
    t = text.strip().upper().replace(" ", "")
    for suffix, scale in (("GIB", GiB), ("GB", GiB), ("G", GiB), ("MIB", 1024**2), ("MB", 1024**2), ("TB", 1024 * GiB)):
        if t.endswith(suffix):
            return float(t[: -len(suffix)]) * scale
    return float(t) * GiB
