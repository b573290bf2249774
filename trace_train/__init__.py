"""Training and data for TRACE models: dataset pipeline, fine-tuning, evaluation."""
