"""Greedy answers from vLLM for prepared prompts: run with the Python of a vLLM environment (see docs/serving.md).

    VLLM_PY scripts/vllm_answer.py --model runs/demo/model --inputs inputs.json --out answers.json

``inputs.json`` (written by tests/test_vllm.py or scripts/vllm_check.sh from ``fastvlm-video``'s own
Predictor): a list of {"prompt": text with one <image> per frame, "frames": [PNG paths, S x S], "max_tokens"}.
The frames are already the model's S x S frames, so vLLM's image processor (pad to square, resize to S)
leaves them as they are and the model sees predict's pixels.
"""

import argparse
import json

from PIL import Image
from vllm import LLM, SamplingParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    items = json.load(open(args.inputs))
    most = max(len(item["frames"]) for item in items)
    llm = LLM(model=args.model, dtype="float32", enforce_eager=True, max_model_len=4096, gpu_memory_utilization=0.1,
              limit_mm_per_prompt={"image": most}, seed=0)  # fmt: skip
    requests = [{"prompt": item["prompt"], "multi_modal_data": {"image": [Image.open(p).convert("RGB") for p in item["frames"]]}}
                for item in items]  # fmt: skip
    params = [SamplingParams(temperature=0.0, max_tokens=item["max_tokens"]) for item in items]
    outputs = llm.generate(requests, params)
    with open(args.out, "w") as f:
        json.dump({"answers": [o.outputs[0].text.strip() for o in outputs],
                   "token_ids": [list(o.outputs[0].token_ids) for o in outputs]}, f)  # fmt: skip


if __name__ == "__main__":
    main()
