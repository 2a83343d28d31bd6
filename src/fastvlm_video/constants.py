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
