"""Records the calls that tests/replay/replay.cpp replays: every fastloss op call of the bitwise cases
(tests/bitwise.py), with its arguments and the results this machine's loaded CPU kernels gave (its
returned tensors and the arguments it wrote).

    python tests/replay/record.py OUT_FILE

The file (little-endian), read by replay.cpp:
    "FLCALLS1" u32 calls
    per call: str op, u32 args, args, u32 results, tensors, u32 written, (u32 arg index, tensor) each
    arg:    u8 kind (0 None, 1 Tensor, 2 int, 3 float, 4 bool), u8 optional (schema `T?`), value
    Tensor: i32 dtype (c10::ScalarType's code), u32 dim, i64 sizes[dim], i64 strides[dim],
            u64 bytes, the storage from the first element to the last (so strides keep their meaning)
    str:    u32 length, bytes
"""

import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

# c10::ScalarType's codes (torch/headeronly/core/ScalarType.h)
DTYPE_CODE = {
    torch.uint8: 0,
    torch.int8: 1,
    torch.int16: 2,
    torch.int32: 3,
    torch.int64: 4,
    torch.float16: 5,
    torch.float32: 6,
    torch.float64: 7,
    torch.bool: 11,
    torch.bfloat16: 15,
}


def tensor_bytes(t):
    if t.numel() == 0:
        return b""
    extent = sum((s - 1) * st for s, st in zip(t.shape, t.stride())) + 1
    window = t.as_strided((extent,), (1,), t.storage_offset())
    return window.contiguous().view(torch.uint8).numpy().tobytes()


def write_str(f, s):
    data = s.encode()
    f.write(struct.pack("<I", len(data)) + data)


def write_tensor(f, t):
    t = t.detach().cpu()
    f.write(struct.pack("<iI", DTYPE_CODE[t.dtype], t.dim()))
    f.write(struct.pack(f"<{t.dim()}q", *t.shape) + struct.pack(f"<{t.dim()}q", *t.stride()))
    data = tensor_bytes(t)
    f.write(struct.pack("<Q", len(data)) + data)


def write_arg(f, value, spec):
    optional = isinstance(spec.type, torch.OptionalType)
    if value is None:
        f.write(struct.pack("<BB", 0, optional))
    elif isinstance(value, torch.Tensor):
        f.write(struct.pack("<BB", 1, optional))
        write_tensor(f, value)
    elif isinstance(value, bool):
        f.write(struct.pack("<BBB", 4, optional, value))
    elif isinstance(value, int):
        f.write(struct.pack("<BBq", 2, optional, value))
    elif isinstance(value, float):
        f.write(struct.pack("<BBd", 3, optional, value))
    else:
        raise TypeError(f"{spec.name}: cannot record a {type(value).__name__}")


def main(path):
    import bitwise

    calls = bitwise.recorded_calls()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"FLCALLS1" + struct.pack("<I", len(calls)))
        for call in calls:
            write_str(f, call.op._schema.name.split("::")[-1])
            specs = call.op._schema.arguments
            args = list(call.args) + [spec.default_value for spec in specs[len(call.args) :]]  # (all, as boxed)
            f.write(struct.pack("<I", len(args)))
            for value, spec in zip(args, specs):
                write_arg(f, value, spec)
            f.write(struct.pack("<I", len(call.results)))
            for t in call.results:
                write_tensor(f, t)
            f.write(struct.pack("<I", len(call.written)))
            for i, t in call.written:
                f.write(struct.pack("<I", i))
                write_tensor(f, t)
    print(
        f"recorded {len(calls)} calls with the {bitwise.flavour()} kernels into {path} "
        f"({os.path.getsize(path) / 2**20:.1f} MiB)"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
