"""Grounding stages of the tiny LLaVA: dense vision-tower pretraining, then localization."""
