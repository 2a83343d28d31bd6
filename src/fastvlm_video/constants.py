"""Token strings and defaults shared across the package (Qwen2 ChatML, as FastVLM was trained)."""

IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"
ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
IGNORE_INDEX = -100
VISION_STRIDE = 64  # FastViTHD downsamples by 64: K = (S / 64) ** 2 tokens per frame
VIDEO_CONFIG_NAME = "video_config.json"

# Choices and defaults that command-line parsers need: kept here, away from torch / PIL / av, so that
# ``--help`` and a mistyped flag answer before any of those is imported (tests/test_cli_light.py).
FRAME_SAMPLING_MODES = ("uniform", "fps", "keyframe")
ASPECT_MODES = ("pad", "crop", "resize")
VIDEO_BACKENDS = ("auto", "pyav", "decord")
DEFAULT_FRAMES_FPS = 1.0  # a folder of frames without fps.txt / meta.json
CACHE_CODECS = ("raw", "png", "jpeg")  # frame cache storage
DEFAULT_JPEG_QUALITY = 95  # frame cache --codec jpeg
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}  # bytes per parameter, by precision
TRAIN_MODES = ("full", "frozen_llm", "projector", "lora", "qlora")  # what a fine-tune trains (budget)
