"""Typed configurations of results (SweepConfig, TrainConfig): fields by attribute, the mapping
view that code written against the old dicts uses, refusal of unknown keys, and the types the
sweeps really write."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import types
import typing

import numpy as np
import pytest

import jinit
from jinit import SweepConfig, TrainConfig
from jinit._core._record import UNSET

CONFIGS = [SweepConfig, TrainConfig]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_mapping_view_holds_exactly_the_set_fields_in_field_order(cls):
    names = cls.keys_known()
    assert names == tuple(f.name for f in dataclasses.fields(cls))
    last, first = names[-1], names[0]
    c = cls(**{last: "z"})
    c[first] = "a"  # set later, listed first: field order, not insertion order
    assert list(c) == [first, last] and len(c) == 2
    assert dict(c) == {first: "a", last: "z"} and c == {first: "a", last: "z"}
    assert getattr(c, names[1]) is UNSET and names[1] not in c
    with pytest.raises(KeyError):
        c[names[1]]
    assert c.get(names[1], "default") == "default"
    del c[first]
    assert first not in c and getattr(c, first) is UNSET
    with pytest.raises(KeyError):
        del c[first]
    c[names[1]] = None  # None is a value, not "unset"
    assert names[1] in c and c[names[1]] is None


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("op", ["get", "set", "setdefault"])
def test_unknown_keys_are_refused_with_the_field_list(cls, op):
    c = cls()
    with pytest.raises(KeyError, match=rf"{cls.__name__} has no field 'nope'; the fields are"):
        if op == "get":
            c["nope"]
        elif op == "set":
            c["nope"] = 1
        else:
            c.setdefault("nope", 1)
    assert "nope" not in c and c.get("nope") is None


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_round_trips(cls):
    names = cls.keys_known()
    c = cls(**{names[0]: [1, 2], names[3]: 0.5})
    for twin in (pickle.loads(pickle.dumps(c)), copy.deepcopy(c), copy.copy(c)):
        assert twin == c and type(twin) is cls and getattr(twin, names[1]) is UNSET
    assert cls.from_mapping(dict(c), "here") == c
    assert cls.from_mapping(c, "here") is c
    assert repr(c) == f"{cls.__name__}({names[0]}=[1, 2], {names[3]}=0.5)"


@pytest.mark.parametrize(
    ("make", "where"),
    [
        (lambda cfg: jinit.SweepResult(cfg, {}, {}), "SweepResult"),
        (lambda cfg: jinit.TrainResult(cfg, np.zeros(1), {}, {}), "TrainResult"),
    ],
    ids=["sweep", "train"],
)
def test_results_convert_dicts_and_refuse_unknown_keys(make, where):
    r = make({"seeds": 3})
    assert r.config.seeds == 3 and isinstance(r.config, (SweepConfig, TrainConfig))
    with pytest.raises(TypeError, match=rf"`jinit.{where}`'s `config` got unknown .*\['seedz'\]"):
        make({"seedz": 3})
    with pytest.raises(TypeError, match=rf"`jinit.{where}`'s `config` needs a mapping"):
        make([("seeds", 3)])


def test_train_result_from_dict_refuses_a_foreign_config():
    d = {"config": {"bogus": 1}, "steps": [0], "specs": {}, "curves": {}}
    with pytest.raises(ValueError, match="TrainResult.from_dict` needs the keys"):
        jinit.TrainResult.from_dict(d)


def _matches(value, annotation: str) -> bool:
    """``value`` has the type written in the field's annotation."""
    hint = eval(annotation, {"Any": typing.Any})  # noqa: S307 (our own annotations)
    if hint is typing.Any:
        return True
    if isinstance(hint, types.UnionType):  # unions of plain classes only
        return isinstance(value, hint)
    origin = typing.get_origin(hint) or hint
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin)


@pytest.fixture(scope="module")
def real_configs():
    sw = jinit.sweep(jinit.mlp(8, 2), jinit.he_normal(), seeds=2, batch=4)
    data = jinit.digits()
    tr = jinit.train_sweep(jinit.mlp(8, 1), jinit.he_normal(), data, seeds=1, steps=4, batch_size=8)
    return {"sweep": sw.config, "train": tr.config}


@pytest.mark.parametrize("which", ["sweep", "train"])
def test_real_runs_write_the_declared_types(real_configs, which):
    c = real_configs[which]
    unset = {"sweep": {"layer_names", "elapsed_seconds", "run_id"}, "train": {"run_id"}}[which]
    assert set(c.keys_known()) - set(c) == unset
    wrong = {
        f.name: (type(getattr(c, f.name)).__name__, f.type)
        for f in dataclasses.fields(c)
        if f.name in c and not _matches(getattr(c, f.name), f.type)
    }
    assert not wrong, wrong
    assert json.loads(json.dumps(dict(c))).keys() == set(c)
