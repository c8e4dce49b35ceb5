"""Images in: conversion conventions, folders and zips, ids, clear errors."""

from __future__ import annotations

import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.image_files import list_images, read_images
from compactrig.engine.models.preprocess import to_model_image


def test_grayscale_is_replicated_and_alpha_dropped():
    gray = np.arange(112 * 112, dtype=np.uint32).reshape(112, 112) % 256
    out = to_model_image(gray.astype(np.uint8))
    assert out.shape == (112, 112, 3) and out.dtype == np.uint8
    assert (out[..., 0] == gray).all() and (out[..., 1] == gray).all() and (out[..., 2] == gray).all()
    rgba = np.zeros((112, 112, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    assert (to_model_image(rgba) == [200, 0, 0]).all()


def test_non_square_is_centre_cropped_then_resized():
    wide = np.zeros((224, 448, 3), dtype=np.uint8)
    wide[:, 112:336] = 255  # the central square is white, the sides black
    out = to_model_image(wide)
    assert out.shape == (112, 112, 3)
    assert out.min() == 255, "only the central square remains"
    ramp = np.tile(np.linspace(0, 255, 224).astype(np.uint8)[None, :, None], (224, 1, 3))
    half = to_model_image(ramp)[0, :, 0].astype(float)
    np.testing.assert_allclose(half, np.linspace(0, 255, 224)[1::2], atol=2.5)


def _write(folder, names, size=(112, 112)):
    for index, name in enumerate(names):
        Image.new("RGB", size, (index * 20, 0, 0)).save(folder / name)


def test_folder_and_zip_give_the_same_ids_in_file_name_order(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    _write(folder, ["image0002.png", "image0010.png", "image0001.png"])
    (folder / "notes.txt").write_text("ignored: not an image")
    collection = read_images(folder)
    assert collection.ids == ["image0001", "image0002", "image0010"]
    assert [int(p[0, 0, 0]) for p in collection.pixels] == [40, 0, 20]
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for name in ["image0010.png", "image0001.png", "image0002.png"]:
            bundle.write(folder / name, f"images_x/{name}")
    zipped = read_images(archive)
    assert zipped.ids == collection.ids and (zipped.pixels == collection.pixels).all()


def test_tar_shards_stream_in_ranges_with_the_ids_and_pixels_of_the_folder(tmp_path):
    """A folder of WebDataset-style .tar shards (shards, then members, in name order) lists the same ids as
    the images themselves, and any range read alone gives the same pixels as the whole collection."""
    folder = tmp_path / "set"
    folder.mkdir()
    names = [f"img{k:03d}.png" for k in range(7)]
    _write(folder, names)
    shards = tmp_path / "shards"
    shards.mkdir()
    for shard, members in (("part-000001.tar", names[4:]), ("part-000000.tar", names[:4])):
        with tarfile.open(shards / shard, "w") as bundle:
            for name in reversed(members):
                bundle.add(folder / name, arcname=name)
    whole = read_images(folder)
    listing = list_images(shards)
    assert listing.ids == whole.ids and listing.where[5] == f"{shards / 'part-000001.tar'}:img005.png"
    for start, stop in ((0, 3), (3, 6), (6, 7), (2, 5)):
        assert (listing.read(start, stop) == whole.pixels[start:stop]).all()
    assert (list_images(shards / "part-000000.tar").read() == whole.pixels[:4]).all()


def test_published_zip_keeps_stems_and_pixels(shared_data):
    collection = read_images(shared_data / "data_V4_responses" / "images" / "images_210325.zip")
    assert len(collection) == 640 and collection.ids[:2] == ["image0001", "image0002"]
    with zipfile.ZipFile(shared_data / "data_V4_responses" / "images" / "images_210325.zip") as bundle:
        with bundle.open("image0007.jpg") as handle:
            direct = np.asarray(Image.open(handle).convert("RGB"))
    assert (collection.pixels[6] == direct).all()


@pytest.mark.parametrize("setup, message", [
    (lambda p: p / "missing", "no such file or folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "holds no images"),
    (lambda p: (p / "a.txt").write_text("x") and p / "a.txt", "not a folder, a .zip or a .tar"),
])
def test_bad_paths_name_the_path(tmp_path, setup, message):
    path = setup(tmp_path)
    with pytest.raises(CompactRigError, match=message) as error:
        read_images(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_corrupt_image_is_named(tmp_path):
    _write(tmp_path, ["image0001.png"])
    (tmp_path / "image0002.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(CompactRigError, match="image0002.jpg: not a readable image"):
        read_images(tmp_path)
