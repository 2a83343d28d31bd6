"""``budget`` for post-training: G (GRPO) or 2 (DPO) sequences per sample, the tower once per sample, a reference copy."""

from fastvlm_video.budget.memory import ModelShape, Setting, estimate

QWEN_05B = {
    "text_config": {"vocab_size": 151936, "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
                    "num_key_value_heads": 2, "intermediate_size": 4864, "tie_word_embeddings": True},
    "vision_config": {"architecture": "fastvit_mci3", "hidden_size": 3072, "model_args": {"layers": [1, 1, 1, 1, 1], "embed_dims": [8, 16, 32, 64, 128]}},
}  # fmt: skip


def test_grpo_holds_g_sequences_one_tower_pass_and_a_reference_copy():
    shape = ModelShape.from_config(QWEN_05B)
    sft = estimate(shape, Setting(seq_len=600, frames=8))
    grpo = estimate(shape, Setting(seq_len=600, frames=8, rows_per_sample=4, reference_copy=True))
    no_ref = estimate(shape, Setting(seq_len=600, frames=8, rows_per_sample=4))
    assert grpo.activations_tower == sft.activations_tower  # frames encoded once per prompt, shared by its G answers
    assert no_ref.activations_llm > 3.5 * sft.activations_llm  # G rows through the LLM
    assert grpo.weights - sft.weights == shape.tower_params * 2 + shape.projector_params * 2 + shape.llm_params * 2  # bf16 copy
    assert grpo.gradients == sft.gradients and grpo.optimizer == sft.optimizer  # the reference never trains
    assert grpo.total > no_ref.total > sft.total


def test_budget_command_plans_grpo(tiny_model_dir, capsys):
    from fastvlm_video.cli import main

    base = ["budget", "--model", str(tiny_model_dir / "config.json"), "--precision", "fp32"]
    assert main(base) == 0
    sft = capsys.readouterr().out
    assert main([*base, "--method", "grpo", "--num_generations", "8"]) == 0
    grpo = capsys.readouterr().out
    assert "8 sequences per sample, a frozen reference copy" in grpo and "sequences per sample" not in sft
    assert main([*base, "--method", "grpo", "--reference", "none"]) == 0
    assert "reference" not in capsys.readouterr().out.split("\n")[0]
