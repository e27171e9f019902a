"""Bad input through the CLI: every command, dozens of kinds of bad files and folders.

For each case the command (run in this process through typer's test runner) must exit
with code 1, or the documented code when the input is usable with a warning; print no
traceback; name the file at fault (and the row or column where one applies); and where
rows flow through, account for every input row: rows in = rows out + rows in the
error / excluded file.

The shared material (a run folder with random weights, images, an embeddings folder and
its index, a labels file) is made once per module; each case writes its own bad file.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from cxrembed.embeddings import EmbeddingSet
from cxrlabel.cli import app

from .cxrembed._runs import make_run, tiny_train_argv, write_pngs

runner = CliRunner()

REPORTS = [
    "No pneumothorax.",
    "Small left pleural effusion.",
    "Heart size is normal.",
    "Possible right lower lobe pneumonia.",
    "Lungs are clear.",
]
N_IMAGES = 12


@dataclass
class World:
    """Files every case may read (never write: cases copy what they damage)."""

    root: Path
    run: Path
    images: Path
    table: Path  # file, finding, patient for the N_IMAGES good images
    embeddings: Path
    index: Path
    reports: Path  # id,text
    labels: Path  # cxr label's output for reports


def _cli(*args: object) -> object:
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=True)
    return result


def _prepare(table: Path, images: Path, out: Path, *extra: object) -> list:
    """``cxr prepare`` argv for a table whose ``file`` column names the images (quiet)."""
    return ["prepare", table, "--images", images, "--image-col", "file", "-o", out, "-q", *extra]


def _embed(run: Path, out: Path, table: Path, images: Path, *extra: object) -> list:
    """``cxr embed`` argv for a table's ``file`` column, on the CPU (quiet)."""
    where = ["--labels", table, "--images", images, "--image-col", "file"]
    return ["embed", run, "-o", out, *where, "--device", "cpu", "-q", *extra]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("bad_input")
    run = make_run(root / "run")
    names = [f"i{k}.png" for k in range(N_IMAGES)]
    write_pngs(root / "images", names)
    table = root / "table.csv"
    pd.DataFrame(
        {
            "file": names,
            "finding": ["ab"[k % 2] for k in range(N_IMAGES)],
            "patient": [f"p{k // 2}" for k in range(N_IMAGES)],
        }
    ).to_csv(table, index=False)
    reports = root / "reports.csv"
    pd.DataFrame({"id": [f"r{k}" for k in range(5)], "text": REPORTS}).to_csv(reports, index=False)
    labels = root / "labels.csv"
    done = _cli("label", reports, "-o", labels, "-q")
    assert done.exit_code == 0, done.output
    done = _cli(
        *_embed(
            run,
            root / "emb",
            table,
            root / "images",
            "--shard-size",
            "5",
            "--index",
            root / "index",
        )
    )
    assert done.exit_code == 0, done.output
    return World(root, run, root / "images", table, root / "emb", root / "index", reports, labels)


@dataclass
class Case:
    """A command line and what its output must show."""

    argv: list[object]
    code: int = 1
    mentions: list[str] = field(default_factory=list)  # in the output, e.g. the file name
    rows: Callable[[], None] | None = None  # rows in = rows out + rows in the error file
    absent: list[str] = field(default_factory=list)  # must not be in the output


CASES: dict[str, Callable[[World, Path], Case]] = {}


def case(fn: Callable[[World, Path], Case]) -> Callable[[World, Path], Case]:
    CASES[fn.__name__] = fn
    return fn


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


def _copy(src: Path, dst: Path) -> Path:
    (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return dst


def _label_rows(src: Path, out: Path, n_in: int) -> Callable[[], None]:
    def check() -> None:
        assert len(pd.read_csv(out, keep_default_na=False)) == n_in

    return check


def _excluded_rows(n_in: int, *tables: Path, excluded: Path) -> Callable[[], None]:
    def check() -> None:
        kept = sum(len(pd.read_csv(t)) for t in tables)
        assert kept + len(pd.read_csv(excluded)) == n_in, (kept, pd.read_csv(excluded))

    return check


# --------------------------------------------------------------------------- cxr label


def _label(
    src: Path,
    tmp: Path,
    *extra: object,
    code: int = 1,
    mentions: list[str] | None = None,
    rows: int | None = None,
) -> Case:
    out = tmp / "labels.csv"
    check = _label_rows(src, out, rows) if rows is not None else None
    return Case(
        ["label", src, "-o", out, "-q", *extra],
        code,
        [src.name] if mentions is None else mentions,
        check,
    )


@case
def label_empty_file(w: World, tmp: Path) -> Case:
    return _label(_write(tmp / "empty.csv", ""), tmp)


@case
def label_header_only(w: World, tmp: Path) -> Case:
    return _label(
        _write(tmp / "header.csv", "id,text\n"),
        tmp,
        code=0,
        mentions=["warning: the input holds no reports"],
        rows=0,
    )


@case
def label_nan_and_blank_cells(w: World, tmp: Path) -> Case:
    src = _write(tmp / "nan.csv", "id,text\na,No pneumothorax.\nb,\nc,NaN\nd,   \n")
    return _label(src, tmp, code=0, mentions=["4 reports", "labelled"], rows=4)


@case
def label_binary_file(w: World, tmp: Path) -> Case:
    return _label(_write(tmp / "binary.csv", bytes(range(256)) * 8), tmp)


@case
def label_missing_text_column(w: World, tmp: Path) -> Case:
    src = _write(tmp / "cols.csv", "id,report\na,No pneumothorax.\n")
    return _label(src, tmp, "--text-col", "text", mentions=["cols.csv", "text"])


@case
def label_missing_id_column(w: World, tmp: Path) -> Case:
    src = _write(tmp / "ids.csv", "uid,text\na,No pneumothorax.\n")
    return _label(src, tmp, "--id-col", "accession", mentions=["ids.csv", "accession"])


@case
def label_duplicate_column_names(w: World, tmp: Path) -> Case:
    src = _write(tmp / "dup.csv", "id,text,text\na,No pneumothorax.,Effusion.\n")
    return _label(src, tmp, mentions=["dup.csv", "text"])


@case
def label_duplicate_ids(w: World, tmp: Path) -> Case:
    src = _write(tmp / "dupid.csv", "id,text\na,No pneumothorax.\na,Effusion.\nb,Clear.\n")
    return _label(src, tmp, code=0, mentions=["1 duplicate ids"], rows=3)


@case
def label_blank_ids_are_missing_not_duplicate(w: World, tmp: Path) -> Case:
    src = _write(tmp / "blankid.csv", "id,text\n,No pneumothorax.\n,Effusion.\nb,Clear.\n")
    check = _label(src, tmp, code=0, mentions=["2 rows have no id"], rows=3)
    check.absent = ["duplicate"]
    return check


@case
def label_utf16_file(w: World, tmp: Path) -> Case:
    src = _write(tmp / "utf16.csv", "id,text\na,No pneumothorax.\n".encode("utf-16"))
    return _label(src, tmp, mentions=["utf16.csv", "UTF-16"])


@case
def label_tsv_named_csv(w: World, tmp: Path) -> Case:
    src = _write(tmp / "tabs.csv", "id\ttext\na\tNo pneumothorax.\nb\tClear.\n")
    return _label(src, tmp, mentions=["tabs.csv", "tab"])


@case
def label_invalid_utf8_bytes(w: World, tmp: Path) -> Case:
    src = _write(
        tmp / "latin1.csv", "id,text\na,No pneumothorax \xe9.\nb,Clear.\n".encode("latin-1")
    )
    return _label(src, tmp, code=0, mentions=["undecodable bytes"], rows=2)


@case
def label_unknown_schema(w: World, tmp: Path) -> Case:
    return _label(w.reports, tmp, "--schema", "chexprt", mentions=["chexprt", "chexpert"])


@case
def label_malformed_lexicon_yaml(w: World, tmp: Path) -> Case:
    shutil.copytree(Path(__file__).resolve().parents[1] / "lexicons", tmp / "lex")
    _write(tmp / "lex" / "cues" / "negation_pre.yaml", "list: negation_pre\ncues: [unclosed\n")
    return _label(w.reports, tmp, "--lexicon", tmp / "lex", mentions=["negation_pre.yaml"])


@case
def label_garbage_parquet(w: World, tmp: Path) -> Case:
    return _label(_write(tmp / "reports.parquet", b"PAR1" + b"\x07" * 300), tmp)


@case
def label_output_inside_a_file(w: World, tmp: Path) -> Case:
    blocker = _write(tmp / "not_a_folder", "x")
    return Case(["label", w.reports, "-o", blocker / "labels.csv", "-q"], 1, ["not_a_folder"])


# --------------------------------------------------------------------------- cxr validate


def _gold(tmp: Path, text: str, name: str = "gold.csv") -> Path:
    return _write(tmp / name, text)


@case
def validate_gold_without_id_column(w: World, tmp: Path) -> Case:
    gold = _gold(tmp, "report,Pneumothorax\nr0,0\n")
    return Case(["validate", w.labels, gold, "-o", tmp / "v", "-q"], 1, ["gold.csv", "id"])


@case
def validate_gold_bad_values(w: World, tmp: Path) -> Case:
    gold = _gold(tmp, "id,Pneumothorax\nr0,0\nr1,yes please\nr2,1\n")
    return Case(
        ["validate", w.labels, gold, "-o", tmp / "v", "-q"],
        1,
        ["gold.csv", "Pneumothorax", "yes please"],
    )


@case
def validate_no_common_ids(w: World, tmp: Path) -> Case:
    gold = _gold(tmp, "id,Pneumothorax\nx0,0\nx1,1\n")
    return Case(["validate", w.labels, gold, "-o", tmp / "v", "-q"], 1, ["gold.csv"])


@case
def validate_empty_gold(w: World, tmp: Path) -> Case:
    return Case(["validate", w.labels, _gold(tmp, ""), "-o", tmp / "v", "-q"], 1, ["gold.csv"])


@case
def validate_binary_predictions(w: World, tmp: Path) -> Case:
    pred = _write(tmp / "pred.csv", bytes(range(256)) * 4)
    gold = _gold(tmp, "id,Pneumothorax\nr0,0\n")
    return Case(["validate", pred, gold, "-o", tmp / "v", "-q"], 1, ["pred.csv"])


@case
def validate_unknown_map(w: World, tmp: Path) -> Case:
    gold = _gold(tmp, "id,Pneumothorax\nr0,0\n")
    return Case(
        ["validate", w.labels, gold, "-o", tmp / "v", "--map", "no_such_map", "-q"],
        1,
        ["no_such_map"],
    )


# --------------------------------------------------------------------------- cxr prepare


def _bad_images(tmp: Path) -> tuple[Path, list[str], int]:
    """A folder with good, corrupt, empty, missing, DICOM-garbage and outside paths."""
    folder = tmp / "imgs"
    good = [f"g{k}.png" for k in range(4)]
    write_pngs(folder, good)
    _write(folder / "corrupt.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    _write(folder / "empty.png", b"")
    _write(folder / "corrupt.dcm", b"\x00" * 128 + b"DICM" + b"\x02\x00" * 20)
    png = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(png, format="PNG")
    _write(folder / "truncated.png", png.getvalue()[:30])
    _write(tmp / "outside.png", png.getvalue())
    rows = [
        *good,
        "corrupt.png",
        "empty.png",
        "corrupt.dcm",
        "truncated.png",
        "absent.png",
        "../outside.png",
        str(tmp / "outside.png"),
    ]
    return folder, rows, len(good)


def _image_table(tmp: Path, rows: list[str]) -> Path:
    table = tmp / "t.csv"
    pd.DataFrame(
        {
            "file": rows,
            "finding": ["ab"[k % 2] for k in range(len(rows))],
            "patient": [f"p{k}" for k in range(len(rows))],
        }
    ).to_csv(table, index=False)
    return table


@case
def prepare_unusable_images_are_excluded(w: World, tmp: Path) -> Case:
    folder, rows, good = _bad_images(tmp)
    table, cache = _image_table(tmp, rows), tmp / "cache"

    def check() -> None:
        excluded = pd.read_csv(cache / "excluded.csv")
        index = pd.read_csv(cache / "index.csv")  # every image tried; failures: slot -1
        assert (index["slot"] >= 0).sum() + len(excluded) == len(rows)
        assert len(excluded) == len(rows) - good
        assert {"outside-images", "missing"} <= set(excluded["kind"])

    return Case(
        _prepare(table, folder, cache, "--size", "16"),
        0,
        ["excluded: 7"],
        check,
    )


def _degenerate(tmp: Path) -> tuple[Path, Path]:
    """Images of 1 x 1, 3000 x 3 and 40 x 40 pixels, and their table."""
    folder = tmp / "imgs"
    folder.mkdir()
    for name, shape in {"dot.png": (1, 1), "sliver.png": (3000, 3), "ok.png": (40, 40)}.items():
        Image.fromarray(np.full(shape, 90, np.uint8)).save(folder / name)
    return folder, _image_table(tmp, ["dot.png", "sliver.png", "ok.png"])


@case
def embed_degenerate_shapes_warn(w: World, tmp: Path) -> Case:
    folder, table = _degenerate(tmp)
    return Case(
        _embed(w.run, tmp / "emb", table, folder),
        0,
        ["2 image(s) have a degenerate shape", "dot.png", "embedded now: 3"],
    )


@case
def prepare_degenerate_shapes_warn(w: World, tmp: Path) -> Case:
    folder, table = _degenerate(tmp)
    cache = tmp / "cache"
    return Case(
        _prepare(table, folder, cache, "--size", "16"),
        0,
        ["2 image(s) have a degenerate shape", "dot.png"],
        _excluded_rows(3, cache / "index.csv", excluded=cache / "excluded.csv"),
    )


@case
def prepare_missing_image_column(w: World, tmp: Path) -> Case:
    return Case(
        ["prepare", w.table, "--images", w.images, "--image-col", "path", "-o", tmp / "c", "-q"],
        1,
        ["table.csv", "path"],
    )


@case
def prepare_header_only_table(w: World, tmp: Path) -> Case:
    table = _write(tmp / "head.csv", "file,finding\n")
    return Case(
        _prepare(table, w.images, tmp / "c"),
        1,
        ["head.csv"],
    )


@case
def prepare_output_inside_a_file(w: World, tmp: Path) -> Case:
    blocker = _write(tmp / "blocker", "x")
    return Case(
        _prepare(w.table, w.images, blocker / "cache"),
        1,
        ["blocker"],
    )


@pytest.fixture()
def small_disk(tmp_path: Path):
    """A 1 MB tmpfs (root only; skips elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_prepare_on_a_full_disk_is_one_error_and_leaves_nothing(
    world: World, small_disk: Path
) -> None:
    out = small_disk / "cache"
    result = _cli(*_prepare(world.table, world.images, out, "--size", "512"))
    _assert_clean(result, 1, ["images.u8", "no space left"])
    assert not out.exists() or not (out / "images.u8").exists(), "stray images.u8"
    again = _cli(
        *_prepare(world.table, world.images, out, "--size", "16")
    )  # fits: the re-run works
    assert again.exit_code == 0, again.output


def _fill(folder: Path) -> Path:
    """Fill the disk of ``folder`` to the last block; return the filler file."""
    filler = folder / "filler"
    with open(filler, "wb") as f, pytest.raises(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


@pytest.mark.parametrize("command", ["label", "embed", "evaluate"])
def test_full_disk_is_one_error_and_the_rerun_works(
    world: World, small_disk: Path, command: str
) -> None:
    out = small_disk / "out"
    argv = {
        "label": ["label", world.reports, "-o", out / "labels.csv", "-q"],
        "embed": ["embed", world.run, "-o", out, "--images", world.images, "--device", "cpu", "-q"],
        "evaluate": [
            "evaluate",
            world.embeddings,
            _eval_labels(world, small_disk.parent),
            "-o",
            out,
            "--label-col",
            "finding",
            "--no-projection",
            "-q",
        ],
    }[command]
    filler = _fill(small_disk)
    _assert_clean(_cli(*argv), 1, ["no space left"])
    left = [p.name for p in small_disk.rglob("*") if p.is_file() and p != filler]
    assert not [n for n in left if "partial" in n or n.startswith(".")], left
    filler.unlink()
    again = _cli(*argv)
    assert again.exit_code == 0, again.output


def test_read_only_output_is_one_error(world: World, small_disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = _cli("label", world.reports, "-o", small_disk / "labels.csv", "-q")
    _assert_clean(result, 1, ["labels.csv", "read-only"])


# --------------------------------------------------------------------------- cxr train


def _train(
    table: Path,
    images: Path,
    out: Path,
    *extra: object,
    code: int = 1,
    mentions: list[str] | None = None,
    rows: Callable[[], None] | None = None,
) -> Case:
    return Case(
        ["train", *tiny_train_argv(table, images, out), *extra],
        code,
        mentions or [],
        rows,
    )


# --config files: kind -> (file name, content, what the message must name)
_CONFIGS: dict[str, tuple[str, str | bytes, list[str]]] = {
    "malformed_yaml": (
        "bad.yaml",
        "training:\n  epochs: [1\n  lr: 0.1\n",
        ["bad.yaml:3", "not valid YAML"],
    ),
    "binary": ("binary.yaml", bytes(range(256)), ["binary.yaml"]),
    "unknown_key": ("typo.yaml", "training:\n  epoks: 3\n", ["typo.yaml", "epoks"]),
    "not_a_mapping": ("list.yaml", "- 1\n- 2\n", ["list.yaml"]),
}


def _config_case(kind: str) -> Callable[[World, Path], Case]:
    name, content, mentions = _CONFIGS[kind]

    def make(w: World, tmp: Path) -> Case:
        config = _write(tmp / name, content)
        return _train(w.table, w.images, tmp / "run", "--config", config, mentions=mentions)

    return make


for _kind in _CONFIGS:
    CASES[f"train_config_{_kind}"] = _config_case(_kind)


@case
def train_missing_label_column(w: World, tmp: Path) -> Case:
    table = _write(tmp / "nolabel.csv", "file,patient\ni0.png,p0\n")
    return _train(table, w.images, tmp / "run", mentions=["nolabel.csv", "finding"])


@case
def train_unusable_images_land_in_excluded_csv(w: World, tmp: Path) -> Case:
    folder, rows, good = _bad_images(tmp)
    write_pngs(folder, [f"more{k}.png" for k in range(8)], seed=3)
    rows = rows + [f"more{k}.png" for k in range(8)]
    run = tmp / "run"
    # 12 usable images, batch size 8 (fewer images than... no: 12 >= 8) and 7 unusable ones
    return _train(
        _image_table(tmp, rows),
        folder,
        run,
        code=0,
        mentions=["excluded"],
        rows=_excluded_rows(len(rows), run / "split.csv", excluded=run / "excluded.csv"),
    )


@case
def train_images_folder_missing(w: World, tmp: Path) -> Case:
    return _train(w.table, tmp / "no_images", tmp / "run", mentions=["no_images"])


@case
def train_fewer_images_than_the_batch_size_warns(w: World, tmp: Path) -> Case:
    return _train(
        w.table,
        w.images,
        tmp / "run",
        "--batch-size",
        "16",
        code=0,
        mentions=["fewer than the batch size"],
    )


# --------------------------------------------------------------------------- cxr embed


@case
def embed_truncated_shard_is_redone_on_resume(w: World, tmp: Path) -> Case:
    emb = _copy(w.embeddings, tmp / "emb")
    shard = emb / "vectors-00001.npy"
    shard.write_bytes(shard.read_bytes()[:100])

    def check() -> None:
        loaded = EmbeddingSet.load(emb)
        assert len(loaded.ids) == N_IMAGES  # every image once, the shard made again

    return Case(
        _embed(w.run, emb, w.table, w.images, "--shard-size", "5"),
        0,
        ["vectors-00001.npy", "damaged", "already done: 7"],
        check,
    )


@case
def embed_deleted_best_weights_suggests_the_option(w: World, tmp: Path) -> Case:
    run = _copy(w.run, tmp / "run")
    shutil.copy(run / "model.safetensors", run / "last.safetensors")
    (run / "model.safetensors").unlink()
    return Case(
        ["embed", run, "-o", tmp / "emb", "--images", w.images, "--device", "cpu", "-q"],
        1,
        ["model.safetensors", "--checkpoint last"],
    )


@case
def embed_run_without_config(w: World, tmp: Path) -> Case:
    run = _copy(w.run, tmp / "run")
    (run / "config.yaml").unlink()
    return Case(
        ["embed", run, "-o", tmp / "emb", "--images", w.images, "--device", "cpu", "-q"],
        1,
        ["config.yaml"],
    )


@case
def embed_run_config_not_yaml(w: World, tmp: Path) -> Case:
    run = _copy(w.run, tmp / "run")
    (run / "config.yaml").write_text("model: {embedding_dim: 8\n")
    return Case(
        ["embed", run, "-o", tmp / "emb", "--images", w.images, "--device", "cpu", "-q"],
        1,
        ["config.yaml"],
    )


@case
def embed_images_folder_missing(w: World, tmp: Path) -> Case:
    return Case(
        ["embed", w.run, "-o", tmp / "emb", "--images", tmp / "no_images", "--device", "cpu", "-q"],
        1,
        ["no_images"],
    )


@case
def embed_garbage_weights(w: World, tmp: Path) -> Case:
    run = _copy(w.run, tmp / "run")
    (run / "model.safetensors").write_bytes(b"not a safetensors file" * 10)
    return Case(
        ["embed", run, "-o", tmp / "emb", "--images", w.images, "--device", "cpu", "-q"],
        1,
        ["model.safetensors"],
    )


@case
def embed_unusable_images_are_excluded(w: World, tmp: Path) -> Case:
    folder, rows, good = _bad_images(tmp)
    emb = tmp / "emb"

    def check() -> None:
        excluded = pd.read_csv(emb / "excluded.csv")
        assert len(EmbeddingSet.load(emb).ids) + len(excluded) == len(rows)

    return Case(
        _embed(w.run, emb, _image_table(tmp, rows), folder),
        0,
        ["excluded: 7"],
        check,
    )


# --------------------------------------------------------------------------- cxr search


def _search(w: World, index: Path, query: Path | None = None, run: Path | None = None) -> list:
    return ["search", run or w.run, index, query or w.images / "i0.png", "-k", "2"]


@case
def search_byte_flipped_index(w: World, tmp: Path) -> Case:
    index = _copy(w.index, tmp / "index")
    data = bytearray((index / "index.faiss").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (index / "index.faiss").write_bytes(bytes(data))
    return Case(_search(w, index), 1, ["index.faiss", "checksum"])


@case
def search_swapped_ids(w: World, tmp: Path) -> Case:
    index = _copy(w.index, tmp / "index")
    ids = json.loads((index / "ids.json").read_text())
    ids[0], ids[1] = ids[1], ids[0]
    (index / "ids.json").write_text(json.dumps(ids))
    return Case(_search(w, index), 1, ["ids.json"])


@case
def search_garbage_meta_parquet(w: World, tmp: Path) -> Case:
    index = _copy(w.index, tmp / "index")
    size = (index / "meta.parquet").stat().st_size
    (index / "meta.parquet").write_bytes(b"\x00" * size)  # same size: only the checksum knows
    return Case(_search(w, index), 1, ["meta.parquet"])


@case
def search_garbage_index_json(w: World, tmp: Path) -> Case:
    index = _copy(w.index, tmp / "index")
    (index / "index.json").write_text("{not json")
    return Case(_search(w, index), 1, ["index.json"])


@case
def search_index_of_other_weights(w: World, tmp: Path) -> Case:
    other = make_run(tmp / "other", seed=7)
    return Case(_search(w, w.index, run=other), 1, ["weights"])


@case
def search_corrupt_query_image(w: World, tmp: Path) -> Case:
    query = _write(tmp / "query.png", b"\x89PNG\r\n\x1a\n" + b"\x01" * 64)
    return Case(_search(w, w.index, query), 1, ["query.png"])


@case
def search_missing_index_folder(w: World, tmp: Path) -> Case:
    return Case(_search(w, tmp / "nowhere"), 1, ["nowhere"])


# --------------------------------------------------------------------------- cxr evaluate


def _evaluate(emb: Path, labels: Path, tmp: Path, *extra: object) -> list:
    return [
        "evaluate",
        emb,
        labels,
        "-o",
        tmp / "report",
        "--label-col",
        "finding",
        "--no-projection",
        "-q",
        *extra,
    ]


def _eval_labels(w: World, tmp: Path) -> Path:
    table = pd.read_csv(w.table)
    table["id"] = table["file"]
    return _write(tmp / "eval.csv", table.to_csv(index=False))


@case
def evaluate_tampered_vectors_shard(w: World, tmp: Path) -> Case:
    emb = _copy(w.embeddings, tmp / "emb")
    shard = emb / "vectors-00000.npy"
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0x55
    shard.write_bytes(bytes(data))
    return Case(_evaluate(emb, _eval_labels(w, tmp), tmp), 1, ["vectors-00000.npy"])


@case
def evaluate_garbage_embeddings_json(w: World, tmp: Path) -> Case:
    emb = _copy(w.embeddings, tmp / "emb")
    (emb / "embeddings.json").write_text("[1, 2")
    return Case(_evaluate(emb, _eval_labels(w, tmp), tmp), 1, ["embeddings.json"])


@case
def evaluate_edited_ids_shard(w: World, tmp: Path) -> Case:
    emb = _copy(w.embeddings, tmp / "emb")
    ids = (emb / "ids-00001.txt").read_text().splitlines()
    ids[0], ids[1] = ids[1], ids[0]
    (emb / "ids-00001.txt").write_text("\n".join(ids) + "\n")
    return Case(_evaluate(emb, _eval_labels(w, tmp), tmp), 1, ["ids-00001.txt"])


@case
def evaluate_ids_file_of_another_length(w: World, tmp: Path) -> Case:
    np.save(tmp / "v.npy", np.eye(4, 8, dtype=np.float32))
    ids = _write(tmp / "ids.txt", "a\nb\nc\n")
    labels = _write(tmp / "l.csv", "id,finding\na,x\nb,y\nc,x\n")
    return Case(_evaluate(tmp / "v.npy", labels, tmp, "--ids", ids), 1, ["ids.txt"])


@case
def evaluate_nan_vectors(w: World, tmp: Path) -> Case:
    vectors = np.ones((4, 8), np.float32)
    vectors[2, 3] = np.nan
    np.save(tmp / "v.npy", vectors)
    ids = _write(tmp / "ids.txt", "a\nb\nc\nd\n")
    labels = _write(tmp / "l.csv", "id,finding\na,x\nb,y\nc,x\nd,y\n")
    return Case(_evaluate(tmp / "v.npy", labels, tmp, "--ids", ids), 1, ["NaN"])


@case
def evaluate_labels_without_shared_ids(w: World, tmp: Path) -> Case:
    labels = _write(tmp / "other.csv", "id,finding\nzz1,a\nzz2,b\n")
    return Case(_evaluate(w.embeddings, labels, tmp), 1, ["other.csv"])


@case
def evaluate_utf16_labels(w: World, tmp: Path) -> Case:
    labels = _write(tmp / "wide.csv", _eval_labels(w, tmp).read_text().encode("utf-16"))
    return Case(_evaluate(w.embeddings, labels, tmp), 1, ["wide.csv", "UTF-16"])


@case
def evaluate_missing_label_column(w: World, tmp: Path) -> Case:
    labels = _eval_labels(w, tmp)
    return Case(
        [
            "evaluate",
            w.embeddings,
            labels,
            "-o",
            tmp / "r",
            "--label-col",
            "diagnosis",
            "--no-projection",
            "-q",
        ],
        1,
        ["eval.csv", "diagnosis"],
    )


# --------------------------------------------------------------------------- the checks


def _assert_clean(result: object, code: int, mentions: list[str]) -> str:
    output = result.output  # stdout and stderr
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), f"uncaught {exc!r}\n{output}"
    assert "Traceback" not in output, output
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}\n{output}"
    for text in mentions:
        assert text in output, f"{text!r} not in the output:\n{output}"
    return output


def test_at_least_thirty_kinds() -> None:
    assert len(CASES) >= 30, len(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, world: World, tmp_path: Path) -> None:
    check = CASES[name](world, tmp_path)
    result = _cli(*check.argv)
    output = _assert_clean(result, check.code, check.mentions)
    assert not [text for text in check.absent if text in output], output
    if check.code == 1:
        assert result.output.count("error:") >= 1, result.output
    if check.rows is not None:
        check.rows()
