"""Preference alignment: pure SoPo/DPO/SFT losses, preference data, the fine-tuning loop, experiments."""
