"""device: the ``--device`` choice (auto | cpu | cuda), checked before any work starts."""

from __future__ import annotations

from uimdata.errors import UimError

DEVICES = ("auto", "cpu", "cuda")


def check_device(device: str) -> str:
    """Refuse an unknown device, and ``cuda`` where torch sees no CUDA device."""
    if device not in DEVICES:
        raise UimError("--device", expected=" | ".join(DEVICES), got=repr(device))
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UimError("--device cuda: no CUDA device is available", expected="a GPU that torch can see",
                           got=f"torch {torch.__version__} without CUDA devices",
                           hint="pass --device cpu (or auto), or install a CUDA build of torch")
    return device
