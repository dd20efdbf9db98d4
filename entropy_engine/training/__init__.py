"""Training: native recurrent PPO (default), the SB3 RecurrentPPO path, evaluation and benchmarks."""
