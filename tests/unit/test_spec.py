from __future__ import annotations

import re

import os

import pytest

from squall.errors import InvalidInput
from squall.spec import JobSpec, json_schema, load_spec, parse_memory, parse_walltime, validate_spec

BASE = {"name": "t", "command": ["true"]}


def error_of(raw: dict) -> str:
    with pytest.raises(InvalidInput) as info:
        validate_spec(raw)
    return info.value.message


def test_the_example_loads_and_resolves_twelve_inputs(wind_example):
    resolved = load_spec(wind_example)
    assert resolved.spec.split == 4
    assert len(resolved.inputs) == 12
    assert all(i.rel.startswith("data/") and i.size > 0 for i in resolved.inputs)
    assert resolved.script and resolved.script.name == "wind_stats.py"


def test_unknown_top_level_key_gets_a_did_you_mean():
    message = error_of({**BASE, "spilt": 4})
    assert "spilt: unknown key; did you mean 'split'?" in message


def test_unknown_nested_key_names_its_path():
    message = error_of({**BASE, "resources": {"cpu": 2}})
    assert "resources.cpu: unknown key; did you mean 'cpus'?" in message


def test_wrong_type_names_the_field():
    assert "resources.cpus" in error_of({**BASE, "resources": {"cpus": "two"}})
    assert "split" in error_of({**BASE, "split": "4"})


@pytest.mark.parametrize("split", [0, -1])
def test_split_must_be_positive(split):
    assert "split: Input should be greater than or equal to 1" in error_of({**BASE, "split": split})


def test_exactly_one_payload():
    assert "exactly one of 'command' or 'script'" in error_of({"name": "t"})
    assert "exactly one" in error_of({**BASE, "script": "x.sh"})


def test_image_needs_a_runtime_and_the_reverse():
    assert "runtime" in error_of({**BASE, "image": "docker://python:3.11"})
    assert "no 'image'" in error_of({**BASE, "runtime": "podman"})
    assert "runtime" in error_of({**BASE, "image": "x", "runtime": "lxc"})


@pytest.mark.parametrize("glob", ["../x", "/etc/*", "a/../../b"])
def test_output_globs_cannot_escape(glob):
    assert "outputs[0]" in error_of({**BASE, "outputs": [glob]})


def test_input_with_dotdot_is_refused():
    assert "inputs[1]" in error_of({**BASE, "inputs": ["a.csv", "../secret"]})


def test_missing_input_is_named(make_spec):
    path = make_spec({**BASE, "inputs": ["present.txt", "absent*.csv"]}, {"present.txt": "x"})
    with pytest.raises(InvalidInput, match=r"inputs\[1\]: 'absent\*.csv' matches no file"):
        load_spec(path)


def test_symlink_escaping_the_spec_folder_is_refused(make_spec, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    path = make_spec({**BASE, "inputs": ["data/*"]}, {"data/ok.txt": "fine"})
    os.symlink(outside, path.parent / "data" / "link.txt")
    with pytest.raises(InvalidInput, match=r"inputs\[0\]: 'data/link.txt' resolves to .*outside the spec folder"):
        load_spec(path)


def test_directories_expand_to_their_files(make_spec):
    path = make_spec({**BASE, "inputs": ["d"]}, {"d/a.txt": "a", "d/sub/b.txt": "bb"})
    assert [i.rel for i in load_spec(path).inputs] == ["d/a.txt", "d/sub/b.txt"]


def test_unreadable_yaml_and_non_mapping(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_spec(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(InvalidInput, match="must be a mapping"):
        load_spec(bad)
    with pytest.raises(InvalidInput, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")


def test_sizes_and_walltimes():
    assert parse_memory("2G") == 2 << 30
    assert parse_memory("512M") == 512 << 20
    assert parse_memory("1.5GiB") == 3 << 29
    assert parse_walltime("00:10:00") == 600
    assert parse_walltime("1-00:00:01") == 86401
    assert "resources.memory" in error_of({**BASE, "resources": {"memory": "lots"}})
    assert "resources.walltime" in error_of({**BASE, "resources": {"walltime": "10 minutes"}})
    assert "resources.walltime" in error_of({**BASE, "resources": {"walltime": "00:00:00"}})


@pytest.mark.parametrize("text, seconds", [("90", 5400), ("90:30", 5430), ("25:30:00", 91800), ("1-12", 129600),
                                           ("1-12:30", 131400), ("1-12:30:15", 131415)])
def test_every_slurm_walltime_form(text, seconds):
    assert parse_walltime(text) == seconds


@pytest.mark.parametrize("text, named", [("25:61:00", "61 minutes"), ("1-25", "25 hours"), ("61:61", "61 seconds"),
                                         ("1-2:3:4:5", "Slurm's forms"), ("1:2:3:4", "Slurm's forms")])
def test_walltime_fields_out_of_range_are_named(text, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        parse_walltime(text)


def test_defaults():
    spec = validate_spec(BASE)
    assert (spec.site, spec.project, spec.split, spec.runtime) == ("local", "default", 1, "none")
    assert spec.resources.walltime_seconds == 3600


def test_schema_names_every_field():
    schema = json_schema()
    assert set(schema["properties"]) == set(JobSpec.model_fields)
    assert schema["additionalProperties"] is False
