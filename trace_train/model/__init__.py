"""The tiny VLM: a stock LLaVA (CLIP tower + projector + Qwen2 decoder) built from a config."""
