"""Ship a fine-tuned model: Apple's original layout, MLX (mlx-vlm), the Hugging Face Hub, and a setup check."""
