"""The config's ``samples`` as a TSV/CSV sample sheet or as a pair of globs (rocksr.config.samples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rocksr.config.merge import ConfigError
from rocksr.config.samples import expand_samples


def touch(*paths: Path) -> None:
    """Small placeholder image files (only their existence is checked)."""
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"\x00")


def sheet(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """``tmp_path/sheets/img/{a,b}_{mct,sem}.tif``, next to where the sheets go."""
    folder = tmp_path / "sheets" / "img"
    touch(*(folder / f"{s}_{m}.tif" for s in "ab" for m in ("mct", "sem")))
    return folder


def error(value: object, base: Path) -> str:
    with pytest.raises(ConfigError) as e:
        expand_samples(value, base)
    message = str(e.value)
    assert "\n" not in message
    return message


# --- sheets ------------------------------------------------------------------------------------


def test_tsv_relative_paths_resolve_against_the_sheet_folder(tmp_path: Path, images: Path) -> None:
    sheet(
        tmp_path / "sheets" / "pairs.tsv",
        "# two pairs\nname\tmct\tsem\n\na\timg/a_mct.tif\timg/a_sem.tif\n"
        "# b comes next\nb\timg/b_mct.tif\timg/b_sem.tif\n",
    )
    assert expand_samples("sheets/pairs.tsv", tmp_path) == [
        {"name": "a", "mct": str(images / "a_mct.tif"), "sem": str(images / "a_sem.tif")},
        {"name": "b", "mct": str(images / "b_mct.tif"), "sem": str(images / "b_sem.tif")},
    ]


def test_csv_with_optional_page_columns_and_absolute_paths(tmp_path: Path, images: Path) -> None:
    sheet(
        tmp_path / "sheets" / "pairs.csv",
        "name,mct,sem,mct_page,sem_series\n"
        f"a,{images / 'a_mct.tif'},img/a_sem.tif,3,\n"
        "b,img/b_mct.tif,img/b_sem.tif,,1\n",
    )
    a, b = expand_samples(str(tmp_path / "sheets" / "pairs.csv"), tmp_path / "elsewhere")
    assert a == {
        "name": "a",
        "mct": str(images / "a_mct.tif"),
        "sem": str(images / "a_sem.tif"),
        "mct_page": 3,
    }
    assert b == {
        "name": "b",
        "mct": str(images / "b_mct.tif"),
        "sem": str(images / "b_sem.tif"),
        "sem_series": 1,
    }


def test_txt_is_tab_separated(tmp_path: Path, images: Path) -> None:
    sheet(tmp_path / "sheets" / "s.txt", "name\tsem\tmct\na\timg/a_sem.tif\timg/a_mct.tif\n")
    (a,) = expand_samples("sheets/s.txt", tmp_path)
    assert a["mct"] == str(images / "a_mct.tif")


def test_list_passes_through_unchanged(tmp_path: Path) -> None:
    samples = [
        {"name": "a", "mct": "rel/a.tif", "sem": "rel/b.tif"},
        {"name": "s", "synthetic": {}},
    ]
    assert expand_samples(samples, tmp_path) is samples
    assert samples[0]["mct"] == "rel/a.tif"


def test_missing_sheet(tmp_path: Path) -> None:
    msg = error("nope.tsv", tmp_path)
    assert (
        msg == f"config: samples: sheet {tmp_path / 'nope.tsv'} does not exist (or is not a file)"
    )


def test_unknown_extension(tmp_path: Path) -> None:
    sheet(tmp_path / "s.xlsx", "")
    assert "unknown extension '.xlsx'; use .tsv or .txt" in error("s.xlsx", tmp_path)


def test_unknown_column_is_named_with_the_allowed_ones(tmp_path: Path, images: Path) -> None:
    sheet(tmp_path / "sheets" / "s.tsv", "# c\nname\tmct\tsem\tmct_pages\n")
    msg = error("sheets/s.tsv", tmp_path)
    assert msg.startswith(f"config: samples: sheet {tmp_path / 'sheets' / 's.tsv'}: line 2: ")
    assert "unknown column 'mct_pages' (did you mean 'mct_page'?)" in msg
    assert msg.endswith(
        "allowed columns: name, mct, sem, mct_page, sem_page, mct_series, sem_series, mct_scale, crop, "
        "mask"
    )


def test_missing_required_column(tmp_path: Path) -> None:
    sheet(tmp_path / "s.csv", "name,mct\na,x.tif\n")
    msg = error("s.csv", tmp_path)
    assert "s.csv: line 1: missing required column(s) 'sem'; the header must name" in msg


def test_empty_sheet(tmp_path: Path) -> None:
    sheet(tmp_path / "s.tsv", "# only a comment\nname\tmct\tsem\n\n")
    assert "s.tsv has no samples" in error("s.tsv", tmp_path)


def test_empty_name(tmp_path: Path, images: Path) -> None:
    sheet(tmp_path / "sheets" / "s.csv", "name,mct,sem\n,img/a_mct.tif,img/a_sem.tif\n")
    assert "s.csv: line 2: empty name; every sample needs a name" in error("sheets/s.csv", tmp_path)


def test_duplicate_names_are_named_with_their_lines(tmp_path: Path, images: Path) -> None:
    sheet(
        tmp_path / "sheets" / "s.tsv",
        "name\tmct\tsem\na\timg/a_mct.tif\timg/a_sem.tif\nb\timg/b_mct.tif\timg/b_sem.tif\n"
        "a\timg/b_mct.tif\timg/b_sem.tif\n",
    )
    msg = error("sheets/s.tsv", tmp_path)
    assert "s.tsv: duplicate sample name(s) 'a' (lines 2, 4); sample names must be unique" in msg


def test_non_integer_page(tmp_path: Path, images: Path) -> None:
    sheet(
        tmp_path / "sheets" / "s.csv",
        "name,mct,sem,sem_page\na,img/a_mct.tif,img/a_sem.tif,two\n",
    )
    msg = error("sheets/s.csv", tmp_path)
    assert "s.csv: line 2 (sample 'a'): sem_page 'two' is not a non-negative integer" in msg


def test_missing_image_file_is_named(tmp_path: Path, images: Path) -> None:
    sheet(
        tmp_path / "sheets" / "s.tsv",
        "name\tmct\tsem\na\timg/a_mct.tif\timg/a_sem.tif\nb\timg/b_mct.tif\timg/c_sem.tif\n",
    )
    msg = error("sheets/s.tsv", tmp_path)
    assert (
        "s.tsv: line 3 (sample 'b'): sem image 'img/c_sem.tif' does not exist "
        f"(looked for {images / 'c_sem.tif'})"
    ) in msg


def test_too_many_cells(tmp_path: Path, images: Path) -> None:
    sheet(tmp_path / "s.tsv", "name\tmct\tsem\na\tx\ty\tz\n")
    assert "line 2: 4 cells but the header has 3 columns" in error("s.tsv", tmp_path)


# --- globs -------------------------------------------------------------------------------------


def test_globs_pair_by_stem_across_extensions(tmp_path: Path) -> None:
    touch(tmp_path / "txm" / "s2.tif", tmp_path / "txm" / "s1.tif")
    touch(tmp_path / "sem" / "s2.png", tmp_path / "sem" / "s1.ome.png")
    (tmp_path / "sem" / "s3.png").mkdir()  # a folder is not a file
    assert expand_samples({"mct": "txm/*.tif", "sem": "sem/*.png"}, tmp_path) == [
        {
            "name": "s1",
            "mct": str(tmp_path / "txm/s1.tif"),
            "sem": str(tmp_path / "sem/s1.ome.png"),
        },
        {"name": "s2", "mct": str(tmp_path / "txm/s2.tif"), "sem": str(tmp_path / "sem/s2.png")},
    ]


def test_unpaired_files_are_listed_per_side(tmp_path: Path) -> None:
    touch(*(tmp_path / "m" / f"x{i:02d}.tif" for i in range(13)), tmp_path / "m" / "both.tif")
    touch(tmp_path / "s" / "both.png", tmp_path / "s" / "lonely.png")
    msg = error({"mct": "m/*.tif", "sem": "s/*.png"}, tmp_path)
    listed = ", ".join(f"m/x{i:02d}.tif" for i in range(10))
    assert msg == (
        "config: samples: unpaired files: 13 mct file(s) ('m/*.tif') without a sem file of the "
        f"same stem ('s/*.png'): {listed} and 3 more; 1 sem file(s) ('s/*.png') without a mct "
        "file of the same stem ('m/*.tif'): s/lonely.png"
    )


def test_glob_matching_nothing(tmp_path: Path) -> None:
    touch(tmp_path / "m" / "a.tif")
    msg = error({"mct": "m/*.tif", "sem": "s/*.png"}, tmp_path)
    assert msg == f"config: samples: sem glob 's/*.png' matches no file (in {tmp_path})"


def test_duplicate_stems_within_one_side(tmp_path: Path) -> None:
    touch(tmp_path / "m" / "a.tif", tmp_path / "m" / "a.png", tmp_path / "s" / "a.png")
    msg = error({"mct": "m/*", "sem": "s/*"}, tmp_path)
    assert "mct glob 'm/*' matches several files with the same stem ('a': m/a.png, m/a.tif)" in msg


def test_names_are_made_safe(tmp_path: Path) -> None:
    touch(tmp_path / "m" / "core 1+top.tif", tmp_path / "s" / "core 1+top.png")
    (sample,) = expand_samples({"mct": "m/*.tif", "sem": "s/*.png"}, tmp_path)
    assert sample["name"] == "core_1_top"
    assert sample["mct"] == str(tmp_path / "m" / "core 1+top.tif")


def test_safe_name_clash(tmp_path: Path) -> None:
    touch(*(tmp_path / d / f"{n}.tif" for d in "ms" for n in ("a b", "a_b", "a+b")))
    msg = error({"mct": "m/*", "sem": "s/*"}, tmp_path)
    assert msg.startswith(
        "config: samples: file stems clash once made safe sample names ('a b' and 'a+b' and "
        "'a_b' -> 'a_b'); rename the files"
    )


def test_glob_form_keys(tmp_path: Path) -> None:
    assert "unknown key 'names_from' (did you mean 'name_from'?)" in error(
        {"mct": "*", "sem": "*", "names_from": "stem"}, tmp_path
    )
    assert "give 'sem' as a glob string" in error({"mct": "*"}, tmp_path)
    assert "name_from 'index' is not supported; use 'stem'" in error(
        {"mct": "*", "sem": "*", "name_from": "index"}, tmp_path
    )


def test_other_values_are_refused(tmp_path: Path) -> None:
    assert "give a list of samples, the path of a TSV/CSV sample sheet" in error(None, tmp_path)
    assert "give a list of samples" in error("  ", tmp_path)


def test_the_workflow_takes_a_sample_sheet(tmp_path: Path) -> None:
    """`samples: pairs.tsv` in the config: the workflow plans one normalize job per sheet row."""
    import numpy as np
    import tifffile
    import yaml
    from helpers_workflow import REPO, snakemake

    (tmp_path / "imgs").mkdir()
    # four different images: identical ones are refused (leak-free splits need distinct pixels)
    for i, name in enumerate(("a_mct.tif", "a_sem.tif", "b_mct.tif", "b_sem.tif")):
        tifffile.imwrite(tmp_path / "imgs" / name, np.full((128, 128), i, np.uint8))
    (tmp_path / "pairs.tsv").write_text(
        "name\tmct\tsem\nrockA\timgs/a_mct.tif\timgs/a_sem.tif\nrockB\timgs/b_mct.tif\timgs/b_sem.tif\n"
    )
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["samples"] = "pairs.tsv"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    r = snakemake(tmp_path, "-n", timeout=300)
    assert "results/tiny/normalized/rockA/mct.tif" in r.stdout
    assert "results/tiny/normalized/rockB/mct.tif" in r.stdout


def test_a_sheet_carries_registration_columns(tmp_path: Path) -> None:
    (tmp_path / "a.tif").write_bytes(b"")
    (tmp_path / "s.tsv").write_text(
        "name\tmct\tsem\tmct_scale\tcrop\nr1\ta.tif\ta.tif\tauto\t0 0 64 64\nr2\ta.tif\ta.tif\t4\t\n"
    )
    samples = expand_samples("s.tsv", tmp_path)
    assert samples[0]["mct_scale"] == "auto" and samples[0]["crop"] == [0, 0, 64, 64]
    assert samples[1]["mct_scale"] == 4 and "crop" not in samples[1]


def test_a_sheet_carries_the_mask_column(tmp_path: Path) -> None:
    """``mask``: none / auto_fov kept as words, a mask image resolved against the sheet folder
    (and required to exist)."""
    (tmp_path / "sheets" / "masks").mkdir(parents=True)
    for name in ("a.tif", "masks/a_mask.png"):
        (tmp_path / "sheets" / name).write_bytes(b"")
    sheet(
        tmp_path / "sheets" / "s.tsv",
        "name\tmct\tsem\tmask\nr1\ta.tif\ta.tif\tauto_fov\nr2\ta.tif\ta.tif\tmasks/a_mask.png\n"
        "r3\ta.tif\ta.tif\tnone\nr4\ta.tif\ta.tif\t\n",
    )
    samples = expand_samples("sheets/s.tsv", tmp_path)
    assert [s.get("mask") for s in samples] == [
        "auto_fov",
        str(tmp_path / "sheets" / "masks" / "a_mask.png"),
        "none",
        None,
    ]
    sheet(tmp_path / "sheets" / "bad.tsv", "name\tmct\tsem\tmask\nr1\ta.tif\ta.tif\tauto_fv\n")
    message = error("sheets/bad.tsv", tmp_path)
    assert "bad.tsv: line 2" in message and "(did you mean 'auto_fov'?)" in message
    sheet(tmp_path / "sheets" / "gone.tsv", "name\tmct\tsem\tmask\nr1\ta.tif\ta.tif\tm.png\n")
    assert "mask image 'm.png' does not exist" in error("sheets/gone.tsv", tmp_path)


def test_globs_carry_shared_registration_settings(tmp_path: Path) -> None:
    touch(tmp_path / "ct" / "a.tif", tmp_path / "sem" / "a.png", tmp_path / "m.png")
    spec = {"mct": "ct/*.tif", "sem": "sem/*.png", "mct_scale": "auto", "mask": "auto_fov"}
    (sample,) = expand_samples(spec, tmp_path)
    assert sample["mct_scale"] == "auto" and sample["mask"] == "auto_fov"
    (sample,) = expand_samples({**spec, "mask": "m.png", "crop": [0, 0, 8, 8]}, tmp_path)
    assert sample["mask"] == str(tmp_path / "m.png") and sample["crop"] == [0, 0, 8, 8]
    assert "(did you mean 'auto_fov'?)" in error({**spec, "mask": "autofov"}, tmp_path)
    assert "mask image 'gone.png' does not exist" in error({**spec, "mask": "gone.png"}, tmp_path)
