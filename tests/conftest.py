import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("WANDB_MODE", "offline")
# the GPU code path (entropy_engine/gpu) runs in numba's CUDA simulator unless NUMBA_ENABLE_CUDASIM=0 is set
# (on a machine with an NVIDIA GPU): read by numba when it is first imported, so set before any test imports it
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
