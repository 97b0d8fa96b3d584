#!/usr/bin/python3
"""Converts a user's PyTorch checkpoint into an Ear model file (../shared/spec/model-format.md).

    /usr/bin/python3 tools/convert.py CHECKPOINT -o model.safetensors \\
        --audio-encoder audio_net --audio-head audio_proj \\
        --image-encoder backbone --image-head image_proj [--config CONFIG.json]

CHECKPOINT is what torch.save wrote or a .safetensors file: a state_dict, or a dict holding
one under "state_dict", "model_state_dict" or "model"; other entries (optimizer, epoch, ...)
are ignored. It is read with torch.load(weights_only=True) or, where that refuses it (torch
1.13 refuses a plain float such as an optimizer's lr), by an unpickler that builds tensors and
containers only; a pickle naming any other class is refused unless --allow-pickle (which runs
code from the file: trusted files only). Each prefix names a module of the checkpoint (a trailing "." is
added): an encoder is torchvision's ResNet layout (conv1, bn1, layer1..., downsample; its `fc`
is dropped), a head is either a Linear (PREFIX.weight, PREFIX.bias) or Linear-ReLU-Linear
(PREFIX.0.*, PREFIX.2.*). Either tower may be absent; a tower needs its encoder and its head.
When a tensor matches two prefixes, the longer prefix wins.

The original's own model file (../shared/spec/original.md) converts with --original:

    /usr/bin/python3 tools/convert.py best_audio_visual_clip.pt -o model.safetensors \\
        --original [--dtype bf16] [--heads N] [--layer-norm-first yes|no]

Its tensors keep their names and the configuration is {"family": "wav2vec2", "heads": ...,
"layer_norm_first": ...}; `ear` reads the rest from the shapes, as it does from the .pt.

Without --config everything the weights determine is inferred from the tensor shapes (block
type, layer counts, widths, input channels, head type and hidden width, embed_dim) and printed;
the rest (mel parameters, segment length, image size and normalisation) is the spec's example.
--config (a file, or a JSON object inline) gives any part of the spec's configuration; what it
says about the weights must agree with the shapes. Every problem is one line on stderr naming
the tensor, prefix or key, exit status 1 (2 for bad usage), and no output file: the model is
written to a temporary file and renamed.
"""
import argparse
import copy
import json
import math
import os
import pickle
import struct
import sys
import types
import zipfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

FORMAT, VERSION = "avclip", "1"
NESTED_KEYS = ("state_dict", "model_state_dict", "model")

# The spec's example settings for what the weights do not determine.
AUDIO_DEFAULTS = {
    "sample_rate": 16000, "n_fft": 512, "win_length": 400, "hop_length": 160,
    "n_mels": 64, "f_min": 0.0, "f_max": 8000.0,
    "log_offset": 1e-6, "mean": -4.0, "std": 4.0, "segment_seconds": 5.0,
}
IMAGE_DEFAULTS = {"size": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
AUDIO_INTS = ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels")
TOWER_CHANNELS = {"audio": 1, "image": 3}  # a log-mel; RGB


class ConvertError(Exception):
    """A problem with the user's input: reported as one line, exit status 1."""


class UsageError(Exception):
    """Bad options: reported by argparse, exit status 2."""


def one_line(error):
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."


def shape_text(shape):
    return "[%s]" % ", ".join(str(int(s)) for s in shape)


# ---------------------------------------------------------------------------------------------
# Reading the checkpoint


def is_safetensors(path):
    """True when the file starts like safetensors: a sane header length, then '{'."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    return struct.unpack("<Q", head[:8])[0] < (1 << 27) and head[8:9] == b"{"


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle names a class or function that RestrictedUnpickler does not build."""


class RestrictedUnpickler(pickle.Unpickler):
    """Builds tensors and plain containers only: any other class or function named in the
    pickle (which unpickling would import and call) is refused."""
    ALLOWED = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
               ("torch._utils", "_rebuild_parameter"), ("torch", "Size"), ("torch", "device"),
               ("builtins", "set"), ("builtins", "frozenset"), ("_codecs", "encode"),
               ("__builtin__", "set"), ("__builtin__", "frozenset")}  # protocol 2's names

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED or (
                module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)):
            return super().find_class(module, name)
        raise RefusedGlobal("it names %s.%s" % (module, name))


RESTRICTED_PICKLE = types.ModuleType("restricted_pickle")
RESTRICTED_PICKLE.Unpickler = RestrictedUnpickler
RESTRICTED_PICKLE.load = lambda f, **kw: RestrictedUnpickler(f, **kw).load()


def restricted_load(path):
    """torch.load through RestrictedUnpickler. torch 1.13's weights_only reader refuses plain
    floats (an optimizer's lr, say) and its torch.load ignores pickle_module unless
    weights_only, so this calls the readers torch.load itself calls."""
    serialization = torch.serialization
    with open(path, "rb") as f:
        if zipfile.is_zipfile(f):
            f.seek(0)
            with serialization._open_zipfile_reader(f) as archive:
                return serialization._load(archive, "cpu", RESTRICTED_PICKLE, encoding="utf-8")
        f.seek(0)
        return serialization._legacy_load(f, "cpu", RESTRICTED_PICKLE, encoding="utf-8")


def load_checkpoint(path, allow_pickle):
    """The object in the file; never imports what a pickle names unless allow_pickle."""
    try:
        if is_safetensors(path):
            return safetensors_io.load(path)[0]
    except OSError as e:
        raise ConvertError("%s: cannot read: %s" % (path, e.strerror or e))
    except Exception as e:  # a file that only looked like safetensors
        raise ConvertError("%s: not a readable safetensors file (%s)" % (path, one_line(e)))
    if allow_pickle:
        readers = [lambda: torch.load(path, map_location="cpu")]
    else:
        readers = [lambda: torch.load(path, map_location="cpu", weights_only=True),
                   lambda: restricted_load(path)]
    for i, read in enumerate(readers):
        try:
            return read()
        except RefusedGlobal as e:
            raise ConvertError("%s: holds more than tensors and containers (%s); if you trust "
                               "the file, rerun with --allow-pickle" % (path, e))
        except Exception as e:
            if i + 1 < len(readers) and isinstance(e, pickle.UnpicklingError):
                continue
            raise ConvertError("%s: not a PyTorch checkpoint (%s)" % (
                path, one_line(getattr(e, "strerror", None) or e)))


def tensor_dict(obj):
    """obj as name -> tensor when it is a (non-empty) state_dict or a module, else None."""
    if isinstance(obj, torch.nn.Module):
        return dict(obj.state_dict())
    if isinstance(obj, dict) and obj and all(isinstance(k, str) and torch.is_tensor(v)
                                             for k, v in obj.items()):
        return dict(obj)
    return None


def find_state_dict(obj, path):
    """(name -> tensor, where it was found, the other top-level keys)."""
    state = tensor_dict(obj)
    if state is not None:
        return state, "the file itself", []
    if isinstance(obj, dict):
        for key in NESTED_KEYS:
            if key in obj:
                state = tensor_dict(obj[key])
                if state is not None:
                    return state, "key %r" % key, [str(k) for k in obj if k != key]
        keys = ", ".join(repr(str(k)) for k in list(obj)[:8]) or "none"
        raise ConvertError("%s: no state_dict: expected a dict of tensors, or one under %s; "
                           "the top-level keys are %s" % (
                               path, ", ".join(repr(k) for k in NESTED_KEYS), keys))
    raise ConvertError("%s: no state_dict: the file holds a %s, not a dict of tensors"
                       % (path, type(obj).__name__))


def split_by_prefix(state, prefixes):
    """{role: {name after the prefix: tensor}} with each tensor under the longest prefix that
    matches it, and the names under none."""
    parts = {role: {} for role in prefixes}
    unused = []
    ordered = sorted(prefixes.items(), key=lambda item: -len(item[1]))
    for name, tensor in state.items():
        for role, prefix in ordered:
            if name.startswith(prefix):
                parts[role][name[len(prefix):]] = tensor
                break
        else:
            unused.append(name)
    return parts, unused


# ---------------------------------------------------------------------------------------------
# Inferring the configuration from the shapes


def infer_encoder(t, prefix, option, tower):
    """A spec encoder configuration from a torchvision-style ResNet's tensors."""
    def need(key, why):
        if key not in t:
            raise ConvertError("missing tensor %r (%s, %s %r)" % (prefix + key, why, option,
                                                                  prefix))
        return t[key]

    conv1 = need("conv1.weight", "the stem convolution")
    if conv1.dim() != 4 or tuple(conv1.shape[2:]) != (7, 7):
        raise ConvertError("tensor %r has shape %s: a ResNet stem is a 7x7 convolution "
                           "[out, in, 7, 7]" % (prefix + "conv1.weight", shape_text(conv1.shape)))
    if conv1.shape[1] != TOWER_CHANNELS[tower]:
        raise ConvertError("tensor %r takes %d input channels; the %s encoder takes %d (%s)" % (
            prefix + "conv1.weight", conv1.shape[1], tower, TOWER_CHANNELS[tower],
            "one log-mel" if tower == "audio" else "RGB"))
    stages = 0
    while any(k.startswith("layer%d." % (stages + 1)) for k in t):
        stages += 1
    if stages == 0:
        raise ConvertError("no tensor starts with %r: %s %r is not a ResNet encoder" % (
            prefix + "layer1.", option, prefix))
    bottleneck = "layer1.0.conv3.weight" in t
    layers, widths = [], []
    for i in range(1, stages + 1):
        indices = set()
        for k in t:
            if k.startswith("layer%d." % i):
                index = k.split(".")[1]
                if not index.isdigit():
                    raise ConvertError("unexpected tensor %r under %s %r (not a ResNet block)"
                                       % (prefix + k, option, prefix))
                indices.add(int(index))
        layers.append(max(indices) + 1)
        width = need("layer%d.0.conv1.weight" % i, "the first block of layer%d" % i)
        if width.dim() != 4:
            raise ConvertError("tensor %r has shape %s: not a convolution" % (
                prefix + "layer%d.0.conv1.weight" % i, shape_text(width.shape)))
        widths.append(int(width.shape[0]))
    if stages > 8:
        raise ConvertError("%s %r has %d stages (layer1...layer%d); Ear takes at most 8" % (
            option, prefix, stages, stages))
    return {"type": "resnet", "block": "bottleneck" if bottleneck else "basic",
            "layers": layers, "widths": widths, "in_channels": int(conv1.shape[1])}


def top_names(state):
    """The state_dict's first name components, to show next to a prefix that matches nothing."""
    names = []
    for key in state:
        first = key.split(".")[0]
        if first not in names:
            names.append(first)
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")


def infer_head(t, prefix, option, state):
    """(head configuration, in_features, embed_dim) from a Linear or Linear-ReLU-Linear."""
    def need(key):
        if key not in t:
            raise ConvertError("missing tensor %r (%s %r)" % (prefix + key, option, prefix))
        value = t[key]
        if value.dim() != (2 if key.endswith("weight") else 1):
            raise ConvertError("tensor %r has shape %s: not a Linear's %s" % (
                prefix + key, shape_text(value.shape), key.rsplit(".", 1)[-1]))
        return value

    if not t:
        raise ConvertError("no tensor starts with %r (%s); the state_dict's names start with %s"
                           % (prefix, option, top_names(state)))
    if "weight" in t or "bias" in t:
        weight = need("weight")
        need("bias")
        return {"type": "linear"}, int(weight.shape[1]), int(weight.shape[0])
    if "0.weight" in t:
        first, last = need("0.weight"), need("2.weight")
        need("0.bias")
        need("2.bias")
        return ({"type": "mlp", "hidden": int(first.shape[0])}, int(first.shape[1]),
                int(last.shape[0]))
    found = ", ".join(repr(prefix + k) for k in list(t)[:4])
    raise ConvertError("%s %r is not a head: expected %r and %r (a Linear) or %r, %r (Linear, "
                       "ReLU, Linear); found %s" % (option, prefix, prefix + "weight",
                                                    prefix + "bias", prefix + "0.weight",
                                                    prefix + "2.weight", found))


def encoder_features(encoder):
    return encoder["widths"][-1] * (4 if encoder["block"] == "bottleneck" else 1)


def describe_encoder(e):
    return "resnet, %s blocks %s, widths %s, %d input channel%s -> %d features" % (
        e["block"], e["layers"], e["widths"], e["in_channels"],
        "" if e["in_channels"] == 1 else "s", encoder_features(e))


def describe_head(h, features, embed_dim):
    if h["type"] == "linear":
        return "linear %d -> %d" % (features, embed_dim)
    return "mlp %d -> %d -> ReLU -> %d" % (features, h["hidden"], embed_dim)


# ---------------------------------------------------------------------------------------------
# The configuration: what --config says, checked against and completed by what was inferred


def read_config(text):
    if text is None:
        return {}
    try:
        if text.lstrip().startswith("{"):
            config = json.loads(text)
        else:
            with open(text) as f:
                config = json.load(f)
    except OSError as e:
        raise ConvertError("--config %s: cannot read: %s" % (text, e.strerror or e))
    except ValueError as e:
        raise ConvertError("--config: not JSON (%s)" % one_line(e))
    if not isinstance(config, dict):
        raise ConvertError("--config: must be a JSON object")
    return config


def check_keys(section, allowed, where):
    if not isinstance(section, dict):
        raise ConvertError("--config: %s must be an object" % where)
    for key in section:
        if key not in allowed:
            raise ConvertError("--config: unknown key %s%s (allowed: %s)" % (
                where + "." if where else "", key, ", ".join(allowed)))


def agree(given, inferred, where, source):
    """Each field --config gives must equal the inferred one; returns the merged section."""
    if not isinstance(given, dict):
        raise ConvertError("--config: %s must be an object" % where)
    merged = dict(inferred)
    for key, value in given.items():
        if key not in inferred:
            raise ConvertError("--config: unknown key %s.%s (allowed: %s)" % (
                where, key, ", ".join(inferred)))
        if value != inferred[key]:
            raise ConvertError("--config: %s.%s is %s but the checkpoint's %r has %s" % (
                where, key, json.dumps(value), source, json.dumps(inferred[key])))
    return merged


def number(section, key, where, integer=False):
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConvertError("--config: %s.%s must be a number" % (where, key))
    if integer and (value != int(value) or value < 1):
        raise ConvertError("--config: %s.%s must be a positive integer" % (where, key))
    return value


def tower_settings(given, tower):
    """The tower's settings other than encoder and head: --config's, else the spec's."""
    if tower == "audio":
        settings = dict(AUDIO_DEFAULTS)
        settings.update({k: v for k, v in given.items() if k in AUDIO_DEFAULTS})
        for key in AUDIO_DEFAULTS:
            number(settings, key, "audio", key in AUDIO_INTS)
        if settings["win_length"] > settings["n_fft"]:
            raise ConvertError("--config: audio.win_length must be at most audio.n_fft")
        if not 0 <= settings["f_min"] < settings["f_max"] <= settings["sample_rate"] / 2:
            raise ConvertError("--config: audio needs 0 <= f_min < f_max <= sample_rate / 2")
        if settings["std"] == 0 or settings["log_offset"] <= 0 or settings["segment_seconds"] <= 0:
            raise ConvertError("--config: audio.std must be non-zero, log_offset and "
                               "segment_seconds positive")
        return settings
    settings = dict(IMAGE_DEFAULTS)
    settings.update({k: v for k, v in given.items() if k in IMAGE_DEFAULTS})
    number(settings, "size", "image", True)
    for key in ("mean", "std"):
        value = settings[key]
        if not isinstance(value, list) or len(value) != 3:
            raise ConvertError("--config: image.%s must be a list of 3 numbers" % key)
        for i in range(3):
            number({key: value[i]}, key, "image")
    if 0 in settings["std"]:
        raise ConvertError("--config: image.std must be non-zero")
    return settings


# ---------------------------------------------------------------------------------------------
# Mapping the tensors onto the model and checking every one


def place(target_prefix, expected, given, prefix, option, dropped):
    """{model name: tensor} for one module, every expected tensor present with its shape and
    nothing left over (num_batches_tracked may be absent: the engine does not use it)."""
    out = {}
    for key, model_tensor in expected.items():
        if key not in given:
            if key.endswith("num_batches_tracked"):
                continue
            raise ConvertError("missing tensor %r (%s %r)" % (prefix + key, option, prefix))
        tensor = given[key]
        if tuple(tensor.shape) != tuple(model_tensor.shape):
            raise ConvertError("tensor %r has shape %s, expected %s (%s %r)" % (
                prefix + key, shape_text(tensor.shape), shape_text(model_tensor.shape), option,
                prefix))
        if model_tensor.is_floating_point():
            if not tensor.is_floating_point():
                raise ConvertError("tensor %r is %s, expected floating point" % (
                    prefix + key, str(tensor.dtype).replace("torch.", "")))
            if not bool(torch.isfinite(tensor).all()):
                raise ConvertError("tensor %r holds NaN or infinite values" % (prefix + key))
        out[target_prefix + key] = tensor
    for key in given:
        if key not in expected and key not in dropped:
            raise ConvertError("unexpected tensor %r under %s %r: no place for it in this %s" % (
                prefix + key, option, prefix,
                "encoder" if "encoder" in option else "head"))
    return out


def convert(args):
    roles = {}
    for tower in ("audio", "image"):
        for part in ("encoder", "head"):
            value = getattr(args, "%s_%s" % (tower, part))
            if value is not None:
                roles[(tower, part)] = value + "." if value and not value.endswith(".") else value
    towers = [t for t in ("audio", "image") if (t, "encoder") in roles or (t, "head") in roles]
    if not towers:
        raise UsageError("give the prefixes of at least one tower (--audio-encoder and "
                         "--audio-head, or --image-encoder and --image-head)")
    for tower in towers:
        for part in ("encoder", "head"):
            if (tower, part) not in roles:
                raise UsageError("--%s-%s is missing: the %s tower needs an encoder and a head"
                                 % (tower, part, tower))
    seen = {}
    for role, prefix in roles.items():
        if prefix in seen:
            raise UsageError("--%s-%s and --%s-%s are the same prefix %r" % (
                seen[prefix] + role + (prefix,)))
        seen[prefix] = role

    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):  # said now rather than after reading the checkpoint
        raise ConvertError("%s: cannot write: no folder %s" % (args.output, folder))
    config_given = read_config(args.config)
    check_keys(config_given, ("embed_dim", "audio", "image"), "")
    for tower in ("audio", "image"):
        if tower in config_given and tower not in towers:
            raise ConvertError("--config has an %s tower but --%s-encoder and --%s-head are not "
                               "given" % (tower, tower, tower))
        if tower in config_given:
            allowed = (list(AUDIO_DEFAULTS) if tower == "audio" else list(IMAGE_DEFAULTS))
            check_keys(config_given[tower], allowed + ["encoder", "head"], tower)

    state, where, others = find_state_dict(load_checkpoint(args.checkpoint, args.allow_pickle),
                                           args.checkpoint)
    print("checkpoint %s: state_dict from %s, %d tensors%s" % (
        args.checkpoint, where, len(state),
        "; ignored: " + ", ".join(others) if others else ""))
    parts, unused = split_by_prefix(state, {r: p for r, p in roles.items()})

    config = {}
    embed_dims = {}
    dropped = {}
    for tower in towers:
        enc_prefix, head_prefix = roles[(tower, "encoder")], roles[(tower, "head")]
        enc_option, head_option = "--%s-encoder" % tower, "--%s-head" % tower
        enc_tensors = parts[(tower, "encoder")]
        if not enc_tensors:
            raise ConvertError("no tensor starts with %r (%s); the state_dict's names start "
                               "with %s" % (enc_prefix, enc_option, top_names(state)))
        dropped[tower] = sorted(k for k in enc_tensors if k.startswith("fc."))
        encoder = infer_encoder(enc_tensors, enc_prefix, enc_option, tower)
        head, in_features, embed_dim = infer_head(parts[(tower, "head")], head_prefix,
                                                  head_option, state)
        given = config_given.get(tower, {})
        encoder = agree(given.get("encoder", {}), encoder, tower + ".encoder", enc_prefix)
        head = agree(given.get("head", {}), head, tower + ".head", head_prefix)
        features = encoder_features(encoder)
        if in_features != features:
            first = "weight" if head["type"] == "linear" else "0.weight"
            raise ConvertError("tensor %r takes %d features but the %s encoder %r gives %d" % (
                head_prefix + first, in_features, tower, enc_prefix, features))
        embed_dims[tower] = embed_dim
        settings = tower_settings(given, tower)
        settings.update({"encoder": encoder, "head": head})
        config[tower] = settings
        print("%s encoder %r: %s%s" % (tower, enc_prefix, describe_encoder(encoder),
                                       " (--config agrees)" if "encoder" in given else
                                       " (inferred)"))
        if dropped[tower]:
            print("%s encoder %r: dropped %s (torchvision's classifier, not part of an Ear "
                  "encoder)" % (tower, enc_prefix,
                                ", ".join(repr(enc_prefix + k) for k in dropped[tower])))
        print("%s head %r: %s%s" % (tower, head_prefix,
                                    describe_head(head, features, embed_dim),
                                    " (--config agrees)" if "head" in given else " (inferred)"))
        source = "--config" if any(k in given for k in settings
                                   if k not in ("encoder", "head")) else "the spec's defaults"
        keys = list(AUDIO_DEFAULTS if tower == "audio" else IMAGE_DEFAULTS)
        print("%s settings (%s): %s" % (tower, source, ", ".join(
            "%s %s" % (k, json.dumps(settings[k])) for k in keys)))
    if len(set(embed_dims.values())) != 1:
        raise ConvertError("the heads disagree on embed_dim: %r gives %d, %r gives %d" % (
            roles[("audio", "head")], embed_dims["audio"], roles[("image", "head")],
            embed_dims["image"]))
    embed_dim = next(iter(embed_dims.values()))
    if "embed_dim" in config_given and config_given["embed_dim"] != embed_dim:
        raise ConvertError("--config: embed_dim is %s but the heads give %d" % (
            json.dumps(config_given["embed_dim"]), embed_dim))
    config = dict({"embed_dim": embed_dim}, **config)
    print("embed_dim %d" % embed_dim)

    import avclip  # here: torchaudio and torchvision take a while to import, refusals need neither
    model = avclip.AvClip(copy.deepcopy(config))
    expected = model.state_dict()
    tensors = {}
    for tower in towers:
        for part, target in (("encoder", "encoder."), ("head", "proj.")):
            target = "%s.%s" % (tower, target)
            module = {k[len(target):]: v for k, v in expected.items() if k.startswith(target)}
            tensors.update(place(target, module, parts[(tower, part)], roles[(tower, part)],
                                 "--%s-%s" % (tower, part),
                                 dropped[tower] if part == "encoder" else []))
    if args.logit_scale is not None:
        if args.logit_scale not in state:
            raise ConvertError("missing tensor %r (--logit-scale)" % args.logit_scale)
        scale = state[args.logit_scale]
        if scale.numel() != 1 or not scale.is_floating_point():
            raise ConvertError("tensor %r has shape %s: --logit-scale takes one number" % (
                args.logit_scale, shape_text(scale.shape)))
        tensors["logit_scale"] = scale.reshape(())
        if args.logit_scale in unused:
            unused.remove(args.logit_scale)
    if unused:
        print("not converted: %d tensor%s outside the given prefixes (%s%s)" % (
            len(unused), "" if len(unused) == 1 else "s", ", ".join(unused[:3]),
            ", ..." if len(unused) > 3 else ""))

    # The model's own order (encoder before head, as export.py writes it), float32 values.
    ordered = {k: tensors[k] for k in list(expected) + ["logit_scale"] if k in tensors}
    if args.no_num_batches_tracked:
        ordered = {k: v for k, v in ordered.items() if not k.endswith(".num_batches_tracked")}
    metadata = {"ear.format": FORMAT, "ear.version": VERSION,
                "ear.config": json.dumps(config, separators=(",", ":"))}
    try:
        safetensors_io.save(args.output, ordered, metadata, args.dtype.upper())
    except OSError as e:
        raise ConvertError("%s: cannot write: %s" % (args.output, e.strerror or e))
    print("wrote %s (%d tensors, %d bytes, %s)" % (args.output, len(ordered),
                                                   os.path.getsize(args.output), args.dtype))


# ---------------------------------------------------------------------------------------------
# The original's model (../shared/spec/original.md): AudioVisualCLIP, kept as it is

ORIGINAL_AUDIO = "audio_encoder.model.feature_extractor.conv_layers.0.conv.weight"
ORIGINAL_IMAGE = "image_encoder.0.weight"
ORIGINAL_PREFIXES = ("audio_encoder.model.", "audio_proj.proj.", "image_encoder.",
                     "image_proj.proj.", "logit_scale")


def convert_original(args):
    """The original's state_dict, its tensors under their own names (Ear reads the architecture
    from them, as it does from the .pt itself), with a configuration that names the family and
    what the shapes do not show: the head count (torchaudio's convention: width / 64) and
    whether the layers are pre-LN (torchaudio's: exactly with a layer_norm extractor)."""
    state, where, _ = find_state_dict(load_checkpoint(args.checkpoint, args.allow_pickle),
                                      args.checkpoint)
    if ORIGINAL_AUDIO not in state and ORIGINAL_IMAGE not in state:
        raise ConvertError("%s: not the original's AudioVisualCLIP: neither %s nor %s in %s" % (
            args.checkpoint, ORIGINAL_AUDIO, ORIGINAL_IMAGE, where))
    config = {"family": "wav2vec2"}
    if ORIGINAL_AUDIO in state:
        proj = state.get("audio_encoder.model.encoder.feature_projection.projection.weight")
        if proj is None or proj.dim() != 2:
            raise ConvertError("tensor audio_encoder.model.encoder.feature_projection.projection."
                               "weight is missing or not 2-D")
        width = int(proj.shape[0])
        heads = args.heads if args.heads else width // 64
        if heads < 1 or width % heads:
            raise ConvertError("wav2vec2 width %d: %d heads do not divide it; give --heads" % (
                width, heads))
        layer_norm = "audio_encoder.model.feature_extractor.conv_layers.1.layer_norm.weight" \
            in state
        first = {"yes": True, "no": False}.get(args.layer_norm_first, layer_norm)
        config.update({"heads": heads, "layer_norm_first": first})
        print("wav2vec2: width %d, %d heads%s, %s layers" % (
            width, heads, "" if args.heads else " (width / 64)",
            "pre-LN" if first else "post-LN"))
    kept = {k: v for k, v in state.items() if k.startswith(ORIGINAL_PREFIXES)}
    left = [k for k in state if k not in kept]
    if left:
        print("not converted: %d tensor%s outside the model (%s%s)" % (
            len(left), "" if len(left) == 1 else "s", ", ".join(left[:3]),
            ", ..." if len(left) > 3 else ""))
    if args.no_num_batches_tracked:
        kept = {k: v for k, v in kept.items() if not k.endswith(".num_batches_tracked")}
    metadata = {"ear.format": FORMAT, "ear.version": VERSION,
                "ear.config": json.dumps(config, separators=(",", ":"))}
    try:
        safetensors_io.save(args.output, kept, metadata, args.dtype.upper())
    except OSError as e:
        raise ConvertError("%s: cannot write: %s" % (args.output, e.strerror or e))
    print("wrote %s (%d tensors, %d bytes, %s)" % (args.output, len(kept),
                                                   os.path.getsize(args.output), args.dtype))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="torch.save'd checkpoint or .safetensors file")
    p.add_argument("-o", "--output", required=True, help="the Ear model file to write")
    p.add_argument("--audio-encoder", metavar="PREFIX", help="the audio ResNet's prefix")
    p.add_argument("--audio-head", metavar="PREFIX", help="the audio head's prefix")
    p.add_argument("--image-encoder", metavar="PREFIX", help="the image ResNet's prefix")
    p.add_argument("--image-head", metavar="PREFIX", help="the image head's prefix")
    p.add_argument("--config", metavar="JSON",
                   help="configuration: a file, or an inline JSON object (any part of the "
                        "spec's; the rest is inferred or the spec's default)")
    p.add_argument("--logit-scale", metavar="KEY", help="a scalar tensor to keep as logit_scale")
    p.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16"])
    p.add_argument("--no-num-batches-tracked", action="store_true",
                   help="leave BatchNorm's num_batches_tracked out (the engine ignores it)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="unpickle the checkpoint fully (runs code from it: trusted files only)")
    p.add_argument("--original", action="store_true",
                   help="the original's best_audio_visual_clip.pt (wav2vec2 + torchvision "
                        "ResNet): tensors kept under their names, family \"wav2vec2\"")
    p.add_argument("--heads", type=int, help="--original: wav2vec2's head count (default: "
                                             "width / 64)")
    p.add_argument("--layer-norm-first", choices=["yes", "no"],
                   help="--original: pre-LN layers (default: exactly with a layer_norm "
                        "extractor)")
    args = p.parse_args()
    try:
        if args.original:
            convert_original(args)
        else:
            convert(args)
    except UsageError as e:
        p.error(str(e))
    except ConvertError as e:
        print("convert.py: error: %s" % one_line(e), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
