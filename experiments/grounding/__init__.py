"""Grounding pretraining for the tiny LLaVA: dense vision-tower supervision, then localization."""
