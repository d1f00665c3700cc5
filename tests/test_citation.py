"""CITATION.cff is valid CFF 1.2.0 and references.bib defines every key that modecov's
registries cite (variants, datasets, metrics), each entry well formed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from modecov.data import DATASETS
from modecov.metrics import METRICS
from modecov.variants import REFERENCES, VARIANTS

REPO = Path(__file__).resolve().parents[1]
ENTRY = re.compile(r"@(\w+)\s*\{\s*([^,\s]+)\s*,(.*?)\n\}", re.S)
FIELD = re.compile(r"^\s*(\w+)\s*=\s*\{(.*)\},?\s*$", re.M)
REQUIRED = {
    "inproceedings": {"author", "title", "booktitle", "year"},
    "article": {"author", "title", "journal", "year"},
    "book": {"author", "title", "publisher", "year"},
    "misc": {"author", "title", "year"},
}


def bib_entries() -> dict[str, tuple[str, dict[str, str]]]:
    text = (REPO / "references.bib").read_text(encoding="utf-8")
    entries = {}
    for kind, key, body in ENTRY.findall(text):
        assert key not in entries, f"duplicate key {key}"
        entries[key] = (kind.lower(), dict(FIELD.findall(body)))
    assert len(entries) == text.count("\n@") + text.startswith("@"), "an entry did not parse"
    return entries


def cited_keys() -> set[str]:
    refs = [v.reference for v in (*VARIANTS.values(), *REFERENCES.values())]
    refs += [d.reference for d in DATASETS.values()]
    refs += [m.reference for m in METRICS.values()]
    return {k.strip() for r in refs for k in r.split(",") if k.strip()}


def test_every_cited_key_is_in_references_bib():
    missing = sorted(cited_keys() - set(bib_entries()))
    assert not missing, f"references.bib lacks {missing}"


@pytest.mark.parametrize(
    "key",
    ["zhao2017energy", "donahue2017adversarial", "dumoulin2017adversarially", "sharma2018no",
     "srivastava2017veegan", "salimans2016improved", "miyato2018spectral",
     "naeem2020reliable", "kynkaanniemi2019improved", "heusel2017gans", "che2017mode",
     "dziugaite2015training", "agarwal2021deep", "binkowski2018demystifying",
     "friedman2023vendi", "jalali2023information", "richardson2018gans"],
)  # fmt: skip
def test_methods_named_in_the_design_are_in_references_bib(key):
    assert key in bib_entries()


def test_every_bib_entry_has_its_required_fields_and_balanced_braces():
    for key, (kind, fields) in bib_entries().items():
        assert kind in REQUIRED, (key, kind)
        assert REQUIRED[kind] <= set(fields), (key, REQUIRED[kind] - set(fields))
        assert re.fullmatch(r"\d{4}", fields["year"]), key
        for name, value in fields.items():
            assert value.count("{") == value.count("}"), (key, name)
        assert re.fullmatch(r"[a-z]+\d{4}[a-z]*|modecov", key), key


def test_citation_cff_is_valid_cff_1_2_0():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    try:  # the official schema, when cffconvert (which bundles it) is installed
        import json
        from importlib.resources import files

        import jsonschema

        schema = json.loads((files("cffconvert") / "schemas/1.2.0/schema.json").read_text())
        jsonschema.Draft7Validator(schema).validate(cff)
    except ModuleNotFoundError:
        pass
    # The schema's required keys and types, checked without it.
    assert cff["cff-version"] == "1.2.0"
    assert isinstance(cff["message"], str) and cff["message"].strip()
    assert isinstance(cff["title"], str) and "modecov" in cff["title"]
    assert cff["type"] in ("software", "dataset")
    assert isinstance(cff["version"], str)
    assert cff["license"] == "MIT"
    assert cff["authors"] and all(
        isinstance(a, dict) and (a.get("name") or a.get("family-names")) for a in cff["authors"]
    )
    allowed = {"cff-version", "message", "title", "type", "version", "license", "authors",
               "abstract", "keywords", "references", "repository-code", "url", "doi",
               "date-released", "preferred-citation", "identifiers", "contact"}  # fmt: skip
    assert set(cff) <= allowed, set(cff) - allowed
    for ref in cff.get("references", []):
        assert {"type", "title", "authors"} <= set(ref)
        assert all(a.get("family-names") or a.get("name") for a in ref["authors"])
