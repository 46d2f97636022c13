"""Typed records that also read like the dicts they replace.

A :class:`Record` is a dataclass whose fields are the only keys it knows. It is written and
read by attribute (``config.seeds``, checked by type checkers and editors), and, for code and
JSON written against the dict it replaces, also as a mutable mapping: ``config["seeds"]``,
``"layer_names" in config``, ``config.get("run_id")``, ``dict(config)``. A field that was never
set is absent from the mapping view (``KeyError``, not ``None``: ``None`` can be a real
value). A key that is not a field is refused with the list of fields, so a typo never writes
a value nobody reads.

Example:
  >>> import dataclasses
  >>> from typing import Any
  >>> from jinit._core._record import UNSET, Record
  >>> @dataclasses.dataclass(eq=False, repr=False)
  ... class Point(Record):
  ...     x: Any = UNSET
  ...     y: Any = UNSET
  >>> p = Point(x=1)
  >>> p["y"] = 2
  >>> dict(p), p.y, "z" in p
  ({'x': 1, 'y': 2}, 2, False)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any


class _Unset:
    """The value of a field that was never set (absent from the mapping view)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNSET"


#: The default of every :class:`Record` field: "not set".
UNSET: Any = _Unset()


class Record(MutableMapping[str, Any]):
    """Base of typed records: subclasses are ``@dataclasses.dataclass(eq=False, repr=False)``
    classes whose fields all default to :data:`UNSET`; see the module docstring."""

    @classmethod
    def keys_known(cls) -> tuple[str, ...]:
        """The field names, in declaration order (the order of the mapping view and JSON)."""
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str) -> Any:
        """A record holding ``values`` (a record of this class is returned as it is).

        Raises:
          TypeError: ``values`` is not a mapping, or has keys that are not fields (``where``
            names the caller in the message).
        """
        if isinstance(values, cls):
            return values
        if not isinstance(values, Mapping):
            raise TypeError(
                f"{where} needs a mapping of {cls.__name__} fields; got {values!r} of type "
                f"{type(values).__name__}."
            )
        unknown = [k for k in values if k not in cls.keys_known()]
        if unknown:
            raise TypeError(
                f"{where} got unknown {cls.__name__} key(s) {unknown}; the fields are "
                f"{list(cls.keys_known())}."
            )
        return cls(**values)

    def _check_key(self, key: Any) -> str:
        if key not in self.keys_known():
            raise KeyError(
                f"{type(self).__name__} has no field {key!r}; the fields are "
                f"{list(self.keys_known())}."
            )
        return key

    def __getitem__(self, key: str) -> Any:
        value = getattr(self, self._check_key(key))
        if value is UNSET:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, self._check_key(key), value)

    def __delitem__(self, key: str) -> None:
        if self[key] is not UNSET:  # KeyError when unknown or unset, as dict does
            setattr(self, key, UNSET)

    def __iter__(self) -> Iterator[str]:
        return (k for k in self.keys_known() if getattr(self, k) is not UNSET)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        return key in self.keys_known() and getattr(self, key) is not UNSET  # type: ignore[arg-type]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in self)
        return f"{type(self).__name__}({inner})"
