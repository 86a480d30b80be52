#!/usr/bin/env python3
"""Converts a CTranslate2 (faster-whisper) Whisper model to whisper.cpp's ggml file.

    python3 convert_whisper.py CT2_DIR ASSETS_DIR OUT_FILE

CT2_DIR holds CTranslate2's `model.bin`; ASSETS_DIR holds openai-whisper's
`mel_filters.npz`, `gpt2.tiktoken` and `multilingual.tiktoken`. The output is the file
whisper.cpp's `models/convert-pt-to-ggml.py` writes for the same model: magic, hyper-parameters,
the mel filter bank, the tokenizer vocabulary, then every tensor under openai-whisper's name,
matrices in fp16 and biases, norms, conv biases and positional embeddings in fp32.

How CTranslate2 stores Whisper, and what this undoes:
  - the encoder's and decoder's self-attention Q, K and V are fused into `linear_0` (rows
    q | k | v); cross-attention keeps Q in `linear_0` and fuses K and V into `linear_1`;
  - Whisper's key projection has no bias; CTranslate2 stores zeros for it in the fused bias,
    which are dropped (whisper.cpp has no key-bias tensor; a key bias would not change the
    attention anyway, as it adds the same amount to every score of a query);
  - conv weights keep PyTorch's [out, in, kernel] layout, as whisper.cpp expects;
  - the output projection is an alias of the token embedding (whisper.cpp ties them too).

Needs Python 3.11+ and numpy. The output is written to a temporary file and renamed, and it is
byte-for-byte deterministic (same input, same output).
"""

from __future__ import annotations

import base64
import os
import re
import struct
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

GGML_MAGIC = 0x67676D6C  # "ggml"
FTYPE_F32 = 0
FTYPE_F16 = 1

# CTranslate2's DataType enum (include/ctranslate2/types.h).
CT2_DTYPES = {
    0: np.dtype("<f4"),  # FLOAT32
    1: np.dtype("i1"),  # INT8
    2: np.dtype("<i2"),  # INT16
    3: np.dtype("<i4"),  # INT32
    4: np.dtype("<f2"),  # FLOAT16
    5: np.dtype("<u2"),  # BFLOAT16 (raw bits; widened below)
}
CT2_BFLOAT16 = 5


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# CTranslate2's model.bin


class Reader:
    def __init__(self, f: BinaryIO, path: Path):
        self.f = f
        self.path = path

    def take(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise ConvertError(f"{self.path}: truncated (wanted {n} more bytes)")
        return data

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def u8(self) -> int:
        return self.unpack("B")[0]

    def u16(self) -> int:
        return self.unpack("H")[0]

    def u32(self) -> int:
        return self.unpack("I")[0]

    def string(self) -> str:
        # uint16 length including the terminating NUL, then the bytes.
        n = self.u16()
        raw = self.take(n)
        return raw.rstrip(b"\0").decode("utf-8")


def read_ct2(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """The spec name and every variable (aliases resolved) of a CTranslate2 model.bin."""
    with open(path, "rb") as f:
        r = Reader(f, path)
        version = r.u32()
        if not 4 <= version <= 6:
            raise ConvertError(
                f"{path}: CTranslate2 model format version {version} is not supported (4 to 6 are)"
            )
        spec = r.string()
        r.u32()  # spec revision
        variables: dict[str, np.ndarray] = {}
        for _ in range(r.u32()):
            name = r.string()
            rank = r.u8()
            shape = r.unpack(f"{rank}I") if rank else ()
            dtype_id = r.u8()
            num_bytes = r.u32()
            if dtype_id not in CT2_DTYPES:
                raise ConvertError(f"{path}: variable {name} has unknown data type {dtype_id}")
            dtype = CT2_DTYPES[dtype_id]
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            if count * dtype.itemsize != num_bytes:
                raise ConvertError(
                    f"{path}: variable {name} has {num_bytes} bytes, not {count} x {dtype.itemsize}"
                )
            array = np.frombuffer(r.take(num_bytes), dtype=dtype).reshape(shape)
            if dtype_id == CT2_BFLOAT16:
                array = (array.astype(np.uint32) << 16).view(np.float32)
            variables[name] = array
        for _ in range(r.u32()):
            alias = r.string()
            target = r.string()
            if target in variables:
                variables[alias] = variables[target]
        if f.read(1):
            raise ConvertError(f"{path}: unexpected data after the variables and aliases")
    return spec, variables


# ---------------------------------------------------------------------------------------------
# Mapping to openai-whisper's (and so whisper.cpp's) tensors


def float_matrix(variables: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in variables:
        raise ConvertError(f"model.bin has no variable {name}")
    if name + "_scale" in variables:
        raise ConvertError(f"{name} is quantized (int8); convert an fp16 or fp32 model")
    value = variables[name]
    if value.dtype.kind != "f":
        raise ConvertError(f"{name} has data type {value.dtype}, not floating point")
    return value


def split_rows(value: np.ndarray, parts: int, name: str) -> list[np.ndarray]:
    if value.shape[0] % parts:
        raise ConvertError(f"{name}: {value.shape[0]} rows do not split into {parts}")
    return np.split(value, parts, axis=0)


def layer_count(variables: dict[str, np.ndarray], side: str) -> int:
    found = {int(m.group(1)) for k in variables if (m := re.match(rf"{side}/layer_(\d+)/", k))}
    if not found or found != set(range(len(found))):
        raise ConvertError(f"model.bin has no contiguous {side} layers ({sorted(found)})")
    return len(found)


def map_tensors(v: dict[str, np.ndarray]) -> tuple[dict[str, int], list[tuple[str, np.ndarray]]]:
    """whisper.cpp's hyper-parameters and its tensors, in openai-whisper's state_dict order."""
    get = lambda name: float_matrix(v, name)  # noqa: E731
    out: list[tuple[str, np.ndarray]] = []

    def norm(dst: str, src: str) -> None:
        out.append((f"{dst}.weight", get(f"{src}/gamma")))
        out.append((f"{dst}.bias", get(f"{src}/beta")))

    def linear(dst: str, weight: np.ndarray, bias: np.ndarray | None) -> None:
        out.append((f"{dst}.weight", weight))
        if bias is not None:
            out.append((f"{dst}.bias", bias))

    def self_attention(dst: str, src: str) -> None:
        w = split_rows(get(f"{src}/linear_0/weight"), 3, src)
        b = split_rows(get(f"{src}/linear_0/bias"), 3, src)
        linear(f"{dst}.query", w[0], b[0])
        linear(f"{dst}.key", w[1], None)
        linear(f"{dst}.value", w[2], b[2])
        linear(f"{dst}.out", get(f"{src}/linear_1/weight"), get(f"{src}/linear_1/bias"))

    def cross_attention(dst: str, src: str) -> None:
        linear(f"{dst}.query", get(f"{src}/linear_0/weight"), get(f"{src}/linear_0/bias"))
        w = split_rows(get(f"{src}/linear_1/weight"), 2, src)
        b = split_rows(get(f"{src}/linear_1/bias"), 2, src)
        linear(f"{dst}.key", w[0], None)
        linear(f"{dst}.value", w[1], b[1])
        linear(f"{dst}.out", get(f"{src}/linear_2/weight"), get(f"{src}/linear_2/bias"))

    def mlp(dst: str, src: str) -> None:
        linear(f"{dst}.mlp.0", get(f"{src}/linear_0/weight"), get(f"{src}/linear_0/bias"))
        linear(f"{dst}.mlp.2", get(f"{src}/linear_1/weight"), get(f"{src}/linear_1/bias"))

    n_audio_layer = layer_count(v, "encoder")
    n_text_layer = layer_count(v, "decoder")

    # Encoder.
    out.append(("encoder.positional_embedding", get("encoder/position_encodings/encodings")))
    for i in (1, 2):
        out.append((f"encoder.conv{i}.weight", get(f"encoder/conv{i}/weight")))
        out.append((f"encoder.conv{i}.bias", get(f"encoder/conv{i}/bias")))
    for i in range(n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        self_attention(f"{dst}.attn", f"{src}/self_attention")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        mlp(dst, f"{src}/ffn")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    norm("encoder.ln_post", "encoder/layer_norm")

    # Decoder.
    out.append(("decoder.positional_embedding", get("decoder/position_encodings/encodings")))
    out.append(("decoder.token_embedding.weight", get("decoder/embeddings/weight")))
    for i in range(n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        self_attention(f"{dst}.attn", f"{src}/self_attention")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        cross_attention(f"{dst}.cross_attn", f"{src}/attention")
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        mlp(dst, f"{src}/ffn")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    norm("decoder.ln", "decoder/layer_norm")

    def scalar(name: str) -> int:
        if name not in v:
            raise ConvertError(f"model.bin has no variable {name}")
        return int(np.asarray(v[name]).reshape(-1)[0])

    audio_pe = get("encoder/position_encodings/encodings")
    text_pe = get("decoder/position_encodings/encodings")
    embed = get("decoder/embeddings/weight")
    conv1 = get("encoder/conv1/weight")
    hparams = {
        "n_vocab": embed.shape[0],
        "n_audio_ctx": audio_pe.shape[0],
        "n_audio_state": audio_pe.shape[1],
        "n_audio_head": scalar("encoder/num_heads"),
        "n_audio_layer": n_audio_layer,
        "n_text_ctx": text_pe.shape[0],
        "n_text_state": text_pe.shape[1],
        "n_text_head": scalar("decoder/num_heads"),
        "n_text_layer": n_text_layer,
        "n_mels": conv1.shape[1],
    }
    check_shapes(hparams, out)
    return hparams, out


def check_shapes(h: dict[str, int], tensors: list[tuple[str, np.ndarray]]) -> None:
    """Every tensor has the shape whisper.cpp will ask for (so a wrong mapping fails here)."""
    a, t, mels = h["n_audio_state"], h["n_text_state"], h["n_mels"]
    if a != t:
        raise ConvertError(f"encoder width {a} differs from decoder width {t}")
    want = {
        "encoder.positional_embedding": (h["n_audio_ctx"], a),
        "encoder.conv1.weight": (a, mels, 3),
        "encoder.conv2.weight": (a, a, 3),
        "decoder.positional_embedding": (h["n_text_ctx"], t),
        "decoder.token_embedding.weight": (h["n_vocab"], t),
    }
    for name, value in tensors:
        if name in want:
            expected = want[name]
        elif name.endswith("mlp.0.weight"):
            expected = (4 * a, a)
        elif name.endswith("mlp.0.bias"):
            expected = (4 * a,)
        elif name.endswith("mlp.2.weight"):
            expected = (a, 4 * a)
        elif name.endswith(".weight") and value.ndim == 2:
            expected = (a, a)
        else:
            expected = (a,)
        if tuple(value.shape) != expected:
            raise ConvertError(f"{name} has shape {tuple(value.shape)}, expected {expected}")


# ---------------------------------------------------------------------------------------------
# whisper.cpp's ggml file

F32_NAMES = {
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
}


def read_vocab(path: Path) -> list[bytes]:
    """tiktoken lines `base64(token) rank`, as token bytes in rank order."""
    ranked: dict[int, bytes] = {}
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        token, rank = line.split()
        ranked[int(rank)] = base64.b64decode(token)
    if sorted(ranked) != list(range(len(ranked))):
        raise ConvertError(f"{path}: token ranks are not 0..{len(ranked) - 1}")
    return [ranked[i] for i in range(len(ranked))]


def write_ggml(
    f: BinaryIO,
    hparams: dict[str, int],
    filters: np.ndarray,
    vocab: list[bytes],
    tensors: list[tuple[str, np.ndarray]],
) -> None:
    i32 = lambda *xs: f.write(struct.pack(f"<{len(xs)}i", *xs))  # noqa: E731
    i32(GGML_MAGIC)
    for key in (
        "n_vocab",
        "n_audio_ctx",
        "n_audio_state",
        "n_audio_head",
        "n_audio_layer",
        "n_text_ctx",
        "n_text_state",
        "n_text_head",
        "n_text_layer",
        "n_mels",
    ):
        i32(hparams[key])
    i32(FTYPE_F16)

    i32(*filters.shape)
    f.write(np.ascontiguousarray(filters, dtype="<f4").tobytes())

    i32(len(vocab))
    for token in vocab:
        i32(len(token))
        f.write(token)

    for name, value in tensors:
        if name in {"encoder.conv1.bias", "encoder.conv2.bias"}:
            value = value.reshape(value.shape[0], 1)
        if value.ndim < 2 or name in F32_NAMES:
            ftype, data = FTYPE_F32, np.ascontiguousarray(value, dtype="<f4")
        else:
            ftype, data = FTYPE_F16, np.ascontiguousarray(value, dtype="<f2")
        raw_name = name.encode("utf-8")
        i32(data.ndim, len(raw_name), ftype)
        i32(*reversed(data.shape))  # ggml lists the fastest-moving dimension first
        f.write(raw_name)
        f.write(data.tobytes())


def convert(ct2_dir: Path, assets: Path, out: Path) -> None:
    spec, variables = read_ct2(ct2_dir / "model.bin")
    if spec != "WhisperSpec":
        raise ConvertError(f"{ct2_dir / 'model.bin'} is a {spec}, not a WhisperSpec")
    hparams, tensors = map_tensors(variables)

    # Multilingual models have one more token (51865+: the language tokens start at 50259).
    multilingual = hparams["n_vocab"] >= 51865
    vocab = read_vocab(assets / ("multilingual.tiktoken" if multilingual else "gpt2.tiktoken"))
    with np.load(assets / "mel_filters.npz") as npz:
        key = f"mel_{hparams['n_mels']}"
        if key not in npz.files:
            raise ConvertError(f"{assets / 'mel_filters.npz'} has no {key}")
        filters = npz[key]

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=out.name + ".", suffix=".partial", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            write_ggml(f, hparams, filters, vocab, tensors)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    kind = "multilingual" if multilingual else "English-only"
    print(
        f"wrote {out} ({out.stat().st_size} bytes): {kind}, {hparams['n_audio_layer']} layers, "
        f"width {hparams['n_audio_state']}, {len(tensors)} tensors"
    )


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        convert(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    except (ConvertError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
