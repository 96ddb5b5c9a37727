"""Any network as an arm: torchvision classification builders and a user's own builder.

An arm spec (config `studies.<study>.arms.<arm>`) of these kinds:

- ``architecture: torchvision``, ``name:`` a classification builder of ``torchvision.models``
  (``resnet18``, ``efficientnet_b0``, ``densenet121``, ``convnext_tiny``, ``vit_b_16`` with
  ``options: {image_size: ...}`` where the input is square, ...), ``weights: imagenet | none |
  <path of a state dict>``. The classifier head (the last linear layer: ``fc``,
  ``classifier[-1]``, ``heads.head``, ...; squeezenet's final 1x1 convolution) is replaced by a
  2-class one after the weights are loaded. ``imagenet`` is the builder's ``IMAGENET1K_V1``
  weights (its ``DEFAULT`` where it has no V1), loaded by torchvision itself
  (``Weights.get_state_dict`` with ``check_hash``, from the torch hub cache when the file is there).
- ``architecture: python``, ``builder: "package.module:function"``: a function, importable in the
  run's environment (installed, or on PYTHONPATH), that returns an ``nn.Module`` giving 2 logits
  for a (N, 3, H, W) batch; ``weights: none | <path of a state dict>`` (the whole network's keys).

``options`` (a mapping) are keyword arguments of the builder. The input is the grey image
repeated to 3 channels, as for the papers' arms. `check_arm` finds a bad spec before any job
starts (it runs when the workflow is parsed).
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from mskdx.errors import ConfigError

log = logging.getLogger(__name__)

TORCHVISION, PYTHON = "torchvision", "python"
ARCHITECTURES = (TORCHVISION, PYTHON)
NUM_CLASSES = 2


def torchvision_names() -> list[str]:
    """The classification builders of torchvision.models (no detection, video, ...)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _check_name(name: object) -> str:
    names = torchvision_names()
    if name in names:
        return str(name)
    close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.5)
    hint = f"close matches: {', '.join(close)}" if close else f"e.g. {', '.join(names[:6])}, ..."
    raise ConfigError(
        f"name={name!r}: not a torchvision classification model; {hint} "
        "(all: torchvision.models.list_models(module=torchvision.models))"
    )


def head_path(model: nn.Module) -> str:
    """Dotted path of the classifier head: the last nn.Linear (squeezenet: the last 1x1 conv)."""
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linear:
        return linear[-1]
    convs = [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)
    ]
    if convs:
        return convs[-1]
    raise ConfigError(f"{type(model).__name__}: no linear layer or 1x1 convolution as a head")


def replace_head(model: nn.Module, num_classes: int = NUM_CLASSES) -> str:
    """Replace the classifier head by a freshly initialised `num_classes` one; return its path."""
    path = head_path(model)
    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    old = getattr(parent, attr)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, 1, bias=old.bias is not None)
    setattr(parent, attr, new)
    return path


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state dict from a file (also one saved as {"state_dict": ...} or {"model": ...})."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"weights={str(path)!r}: no such file; expected imagenet, none or a path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: not a readable torch state dict ({exc})") from exc
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ConfigError(f"{path}: not a state dict; expected a mapping of names to tensors")
    return state


def load_fitting(model: nn.Module, state: Mapping, source: str, skip: str | None = None) -> None:
    """Load `state` into `model`, every key fitting (those under `skip`, the head, left out);
    else raise ConfigError naming the first key that does not fit."""

    def kept(key: str) -> bool:
        return skip is None or not (key == skip or key.startswith(skip + "."))

    own = {k: v for k, v in model.state_dict().items() if kept(k)}
    given = {k: v for k, v in state.items() if kept(k)}
    problems = [
        (k, "missing from the file" if k not in given else f"shape {tuple(given[k].shape)}")
        for k, v in own.items()
        if k not in given or tuple(given[k].shape) != tuple(v.shape)
    ]
    problems += [(k, "not in the network") for k in given if k not in own]
    if problems:
        key, why = problems[0]
        expected = f"shape {tuple(own[key].shape)}" if key in own and key in given else ""
        raise ConfigError(
            f"{source}: weights do not fit {type(model).__name__}: first mismatching key {key!r} "
            f"({why}{'; expected ' + expected if expected else ''}; {len(problems)} mismatching "
            "keys in all); expected a state dict of this network"
        )
    model.load_state_dict(given, strict=False)


def imagenet_weights(name: str):
    """The torchvision weights enum member `weights: imagenet` means for builder `name`."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"name={name!r}: torchvision has no pretrained weights ({exc})") from exc
    return getattr(enum, "IMAGENET1K_V1", None) or enum.DEFAULT


def _weights_cache_file(weights) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def build_torchvision(spec: Mapping, *, load: bool = True) -> nn.Module:
    """A torchvision classification network with its weights and a 2-class head."""
    import torchvision

    name = _check_name(spec.get("name"))
    options = dict(spec.get("options") or {})
    weights = str(spec.get("weights", "none"))
    builder = torchvision.models.get_model_builder(name)
    try:
        if weights == "imagenet" and load:
            from mskdx.learn.models import WeightsUnavailableError

            enum = imagenet_weights(name)
            cache_file = _weights_cache_file(enum)
            log.info("%s: ImageNet weights %s (%s)", name, enum, cache_file)
            try:
                # torchvision's own loading: Weights.get_state_dict(check_hash=True) with the
                # builder's key fix-ups (densenet), from the hub cache or by download
                model = builder(weights=enum, progress=False, **options)
            except (OSError, RuntimeError) as exc:
                if isinstance(exc, RuntimeError) and "state_dict" in str(exc):
                    raise
                raise WeightsUnavailableError(
                    f"ImageNet weights {enum} for torchvision {name} are not available "
                    f"({type(exc).__name__}: {exc}). Put the file {cache_file.name} at "
                    f"{cache_file} (from {enum.url}; the folder follows TORCH_HOME), give the "
                    "arm `weights: <path of that file>`, or set `weights: none`."
                ) from exc
        else:
            model = builder(weights=None, **options)
    except TypeError as exc:
        raise ConfigError(
            f"torchvision {name}: options {options} are not accepted ({exc})"
        ) from exc
    if weights not in ("imagenet", "none") and load:
        state = read_state_dict(weights)
        head = head_path(model)
        load_fitting(model, state, f"weights={weights!r}", skip=head)
        path = replace_head(model)
        fresh = model.get_submodule(path).state_dict()
        given = {k[len(path) + 1 :]: v for k, v in state.items() if k.startswith(path + ".")}
        if given.keys() == fresh.keys() and all(given[k].shape == fresh[k].shape for k in fresh):
            model.get_submodule(path).load_state_dict(given)  # a 2-class head of its own
        return model
    replace_head(model)
    return model


def load_builder(ref: object) -> Callable[..., object]:
    """The function named by "package.module:function" (importable in this environment)."""
    expected = "expected 'package.module:function', importable in the run's environment"
    module_name, sep, attr = str(ref).partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"builder={ref!r}: {expected}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"builder={ref!r}: module {module_name!r} cannot be imported "
            f"({type(exc).__name__}: {exc}); {expected} (installed, or on PYTHONPATH)"
        ) from exc
    obj: object = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"builder={ref!r}: {module_name} has no {attr!r}; {expected}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"builder={ref!r}: {attr} is a {type(obj).__name__}; {expected}")
    return obj


def build_python(spec: Mapping, *, load: bool = True) -> nn.Module:
    """A user's network from `builder` (+ `options`), with the whole state dict of `weights`."""
    ref = spec.get("builder")
    model = load_builder(ref)(**dict(spec.get("options") or {}))
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"builder={ref!r} returned a {type(model).__name__}; expected a torch.nn.Module"
        )
    weights = str(spec.get("weights", "none"))
    if weights == "imagenet":
        raise ConfigError(
            f"builder={ref!r}: weights imagenet is for torchvision arms; expected none or a path"
        )
    if weights != "none" and load:
        load_fitting(model, read_state_dict(weights), f"weights={weights!r}")
    return model


def build_arm(spec: Mapping, *, load: bool = True) -> nn.Module:
    """Build a torchvision or python arm (`load=False`: random weights, for counts and checks)."""
    if spec.get("architecture") == TORCHVISION:
        return build_torchvision(spec, load=load)
    if spec.get("architecture") == PYTHON:
        return build_python(spec, load=load)
    raise ConfigError(f"architecture={spec.get('architecture')!r}; expected one of {ARCHITECTURES}")


def describe(spec: Mapping) -> str:
    if spec.get("architecture") == TORCHVISION:
        return f"torchvision {spec.get('name')}"
    if spec.get("architecture") == PYTHON:
        return f"builder {spec.get('builder')}"
    return str(spec.get("architecture"))


def check_arm(
    spec: Mapping,
    input_shape: tuple[int, int, int],
    where: str = "arm",
    gradcam_layer: str = "last",
) -> None:
    """Raise ConfigError (prefixed with `where`) for a spec that cannot train: an unknown name,
    a builder that cannot be imported or returns no module, weights whose keys do not fit, a
    network whose output for one image of `input_shape` (C, H, W) is not 2 logits, or a
    Grad-CAM layer it does not have.

    Pretrained ImageNet weights are not loaded here (a download); a local weights file is."""
    from mskdx.learn import models

    spec = dict(spec)
    kind, weights = spec.get("architecture"), str(spec.get("weights", "none"))
    try:
        if kind == TORCHVISION and weights == "imagenet":
            imagenet_weights(_check_name(spec.get("name")))
        if kind in ARCHITECTURES:
            model = build_arm(spec, load=weights != "imagenet")
        else:  # the papers' arms, for their Grad-CAM layer
            model = models.build({**spec, "weights": "none"} if kind == "resnet50" else spec)
        model.eval()
        check_output(model, input_shape, describe(spec))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except Exception as exc:  # the user's builder, a torchvision option: any error, named
        raise ConfigError(
            f"{where}: {describe(spec)} cannot be built ({type(exc).__name__}: {exc})"
        ) from None
    try:
        models.cam_layer(model, gradcam_layer, input_shape)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: gradcam.layer={gradcam_layer!r}: {exc}") from None


def check_output(model: nn.Module, input_shape: tuple[int, ...], what: str) -> None:
    """One forward pass of one image: the output must be (1, 2) logits."""
    shape = "x".join(str(int(s)) for s in input_shape)
    try:
        with torch.inference_mode():
            out = model(torch.zeros(1, *input_shape))
    except Exception as exc:
        raise ConfigError(
            f"{what} fails on one {shape} image, the study's input ({type(exc).__name__}: {exc})"
        ) from exc
    if not torch.is_tensor(out) or tuple(out.shape) != (1, NUM_CLASSES):
        got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise ConfigError(
            f"{what} gives {got} for one {shape} image; expected (1, 2): two logits "
            "(negative, positive)"
        )


def last_conv_stage(model: nn.Module, input_shape: tuple[int, ...] = (3, 224, 224)) -> nn.Module:
    """The last module (in execution order) that holds a convolution and gives a (N, C, H, W)
    map: the outermost of those ending with the last feature map (efficientnet/densenet/convnext:
    `features`; vit: the patch embedding `conv_proj`, its only convolution)."""
    convs = {
        name
        for name, m in model.named_modules()
        if name and any(isinstance(c, nn.modules.conv._ConvNd) for c in m.modules())
    }
    order: list[str] = []
    handles = [
        m.register_forward_hook(
            lambda mod, i, out, name=name: (
                order.append(name) if torch.is_tensor(out) and out.ndim == 4 else None
            )
        )
        for name, m in model.named_modules()
        if name in convs
    ]
    from mskdx.learn.models import forward_once

    forward_once(model, input_shape, handles)
    if not order:
        raise TypeError(f"{type(model).__name__}: no convolution gives a (N, C, H, W) map")
    return model.get_submodule(order[-1])


def module_by_path(model: nn.Module, path: str) -> nn.Module:
    """The submodule at a dotted path (`features.7`); the error lists close paths."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        close = difflib.get_close_matches(path, names, n=5, cutoff=0.5)
        raise ValueError(
            f"Grad-CAM layer {path!r}: {type(model).__name__} has no such module; expected 'last' "
            f"or a module path{' such as ' + ', '.join(close) if close else ''}"
        ) from None
