"""One ``C_SignInit`` + one ``C_Sign`` per signature, through the module's own function list.

python-pkcs11 (0.10) calls ``C_Sign`` twice per signature: a length query with a NULL buffer, then the
signature. The length of an RSA signature is the modulus length, known from the certificate, so the buffer is
sized up front and the card sees a single ``C_Sign`` (PKCS#11 v2.40 §5.2 and §5.11). The session and key
handles are python-pkcs11's: ``dlopen`` gives this module the same library instance, so they are valid here.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any, Final

import pkcs11

CKR_OK: Final = 0x000
CKR_BUFFER_TOO_SMALL: Final = 0x150
_SIGN_INIT, _SIGN = 42, 43   # positions in CK_FUNCTION_LIST (PKCS#11 v2.40 pkcs11f.h order)
_REMOVAL_RV: Final = {0x030: pkcs11.exceptions.DeviceError, 0x032: pkcs11.exceptions.DeviceRemoved,
                      0x0B0: pkcs11.exceptions.SessionClosed, 0x0B3: pkcs11.exceptions.SessionHandleInvalid,
                      0x0E0: pkcs11.exceptions.TokenNotPresent}
_PACK: Final = 1 if sys.platform == "win32" else 0   # Windows PKCS#11 structures are packed to 1 byte

class _Mechanism(ctypes.Structure):
    _pack_ = _PACK or 8
    _fields_ = [("mechanism", ctypes.c_ulong), ("parameter", ctypes.c_void_p), ("parameter_len", ctypes.c_ulong)]


class _FunctionList(ctypes.Structure):
    _pack_ = _PACK or 8
    _fields_ = [("version", ctypes.c_ubyte * 2)] + [(f"f{i}", ctypes.c_void_p) for i in range(_SIGN + 1)]


_SignInit = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_ulong, ctypes.POINTER(_Mechanism), ctypes.c_ulong)
_Sign = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p,
                         ctypes.POINTER(ctypes.c_ulong))


class DirectSigner:
    """Signs with ``key`` (a python-pkcs11 private key object) and ``mechanism``; signatures are
    ``signature_length`` bytes."""

    def __init__(self, module_path: str, key: Any, mechanism: pkcs11.Mechanism, signature_length: int) -> None:
        library = ctypes.CDLL(module_path)
        get_list = library.C_GetFunctionList
        get_list.argtypes = [ctypes.POINTER(ctypes.POINTER(_FunctionList))]
        get_list.restype = ctypes.c_ulong
        functions = ctypes.POINTER(_FunctionList)()
        rv = get_list(ctypes.byref(functions))
        if rv != CKR_OK or not functions:
            raise pkcs11.exceptions.FunctionFailed(f"C_GetFunctionList returned {rv:#x}")
        table = functions.contents
        self._sign_init = _SignInit(getattr(table, f"f{_SIGN_INIT}"))
        self._sign = _Sign(getattr(table, f"f{_SIGN}"))
        self._session = int(key.session.handle)
        self._key = int(key.handle)
        self._mechanism = _Mechanism(int(mechanism), None, 0)
        self._length = signature_length
        self._library = library   # keeps the handle open as long as the function pointers are used

    def sign(self, data: bytes) -> bytes:
        _check(self._sign_init(self._session, ctypes.byref(self._mechanism), self._key))
        out = ctypes.create_string_buffer(self._length)
        length = ctypes.c_ulong(self._length)
        rv = self._sign(self._session, data, len(data), out, ctypes.byref(length))
        if rv == CKR_BUFFER_TOO_SMALL:   # the operation stays active: ask again with the size the module gave
            out = ctypes.create_string_buffer(length.value)
            rv = self._sign(self._session, data, len(data), out, ctypes.byref(length))
        _check(rv)
        return out.raw[:length.value]


def _check(rv: int) -> None:
    if rv == CKR_OK:
        return
    error = _REMOVAL_RV.get(rv)
    if error is not None:
        raise error()
    raise pkcs11.exceptions.FunctionFailed(f"PKCS#11 signature failed with CKR {rv:#x}")
