"""A sample's pair settings (rocksr.config.pair_settings): one typed object from the sample sheet
through the workflow's command line to the readers."""

from __future__ import annotations

import pytest

from rocksr.cli import main
from rocksr.config.pair_settings import UNSET, PairSettings
from rocksr.config.samples import OPTIONAL_COLUMNS, REGISTRATION_COLUMNS


def test_the_settings_are_the_sample_sheets_optional_columns() -> None:
    names = set(PairSettings.__dataclass_fields__)
    assert names == set(OPTIONAL_COLUMNS) | set(REGISTRATION_COLUMNS)


def test_a_sample_gives_its_settings_and_they_survive_json() -> None:
    sample = {"name": "a", "mct": "a.tif", "sem": "b.tif", "mct_page": 2, "crop": [0, 0, 64, 64]}
    s = PairSettings.of_sample(sample)
    assert s == PairSettings(mct_page=2, crop=[0, 0, 64, 64])
    assert PairSettings.from_json(s.to_json()) == s
    assert PairSettings.of_sample({"name": "b", "synthetic": {}}) == UNSET
    assert PairSettings.from_json("") == UNSET


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"mct_pages": 1}', "unknown pair setting(s) mct_pages"),
        ("[1, 2]", "must be a JSON object"),
        ("{not json", "Expecting property name"),
    ],
)
def test_bad_settings_are_refused_in_one_line(tmp_path, capsys, text, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PairSettings.from_json(text)
    argv = ["normalize", "--mct", "m.tif", "--sem", "s.tif", "--pair-settings", text]
    argv += ["--out-mct", str(tmp_path / "m"), "--out-sem", str(tmp_path / "s")]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--report", str(tmp_path / "r.json")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--pair-settings" in err and message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())
