"""read_image: one pixel convention ([0, 1], bone bright) from DICOM, PNG and JPEG, and one
documented error for every kind of unreadable file."""

from __future__ import annotations

import io
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.pixels.processing import apply_modality_lut, apply_windowing
from pydicom.uid import RLELossless

from cxrembed import read_image
from cxrembed.errors import ImageReadError
from cxrembed.io.image import ImageMeta, xrv_scale
from cxrlabel.errors import CxrError

from .._images import BASIC_TEXT_SR, ramp, truncate, write_dicom, write_png


def _kind(path: Path, **kwargs) -> ImageReadError:
    with pytest.raises(ImageReadError) as info:
        read_image(path, **kwargs)
    assert str(path) in str(info.value)  # the message names the file
    return info.value


def _window_reference(value: float, center: float, width: float) -> float:
    """DICOM PS3.3 C.11.2.1.2.1 (LINEAR), written as the standard states it, output 0..1."""
    if value <= center - 0.5 - (width - 1) / 2:
        return 0.0
    if value > center - 0.5 + (width - 1) / 2:
        return 1.0
    return (value - (center - 0.5)) / (width - 1) + 0.5


# ----------------------------------------------------------------------------- DICOM


def test_dicom_8bit_full_range_is_value_over_255(tmp_path):
    pixels = ramp(top=255)
    image, meta = read_image(write_dicom(tmp_path / "a.dcm", pixels))
    assert image.dtype == np.float32 and image.shape == pixels.shape
    np.testing.assert_allclose(image, pixels / 255.0, atol=1e-6)
    assert meta == ImageMeta(6, 5, 8, "MONOCHROME2", "dicom", (0.2, 0.25), "PA", "full-range")
    assert meta.size == (6, 5)


def test_dicom_12bit_stored_in_16_uses_bits_stored(tmp_path):
    pixels = ramp(top=4095, dtype="uint16")
    image, meta = read_image(write_dicom(tmp_path / "a.dcm", pixels, bits_stored=12))
    np.testing.assert_allclose(image, pixels / 4095.0, atol=1e-6)
    assert meta.source_bits == 12


def test_dicom_signed_pixels_map_their_nominal_range(tmp_path):
    pixels = np.array([[-32768, -1, 0, 32767]], dtype=np.int16)
    image, _ = read_image(write_dicom(tmp_path / "s.dcm", pixels))
    np.testing.assert_allclose(image, (pixels + 32768.0) / 65535.0, atol=1e-6)


def test_monochrome1_is_the_inverse_of_monochrome2(tmp_path):
    pixels = ramp(top=4095, dtype="uint16")
    mono2, meta2 = read_image(write_dicom(tmp_path / "m2.dcm", pixels, bits_stored=12))
    mono1, meta1 = read_image(
        write_dicom(tmp_path / "m1.dcm", pixels, bits_stored=12, photometric="MONOCHROME1")
    )
    np.testing.assert_allclose(mono1 + mono2, 1.0, atol=1e-6)
    assert meta1.inverted and not meta2.inverted


def test_window_on_rescaled_values_matches_the_standard_and_pydicom(tmp_path):
    pixels = ramp(8, 8, top=4095, dtype="uint16")
    path = write_dicom(
        tmp_path / "w.dcm", pixels, bits_stored=12, rescale=(1.0, -1024.0), window=(40.0, 400.0)
    )
    image, meta = read_image(path)
    hu = pixels.astype(float) - 1024.0
    expected = np.vectorize(_window_reference)(hu, 40.0, 400.0)
    np.testing.assert_allclose(image, expected, atol=1e-5)
    assert meta.intensity == "window 40/400"
    # pydicom's own windowing, rescaled from its output range (0..4095 + intercept) to [0, 1]
    ds = pydicom.dcmread(path)
    theirs = apply_windowing(apply_modality_lut(ds.pixel_array, ds), ds)
    np.testing.assert_allclose(image, (theirs + 1024.0) / 4095.0, atol=1e-5)


def test_window_none_ignores_the_window_and_explicit_window_overrides_it(tmp_path):
    pixels = ramp(top=4095, dtype="uint16")
    path = write_dicom(tmp_path / "w.dcm", pixels, bits_stored=12, window=(100.0, 50.0))
    full, meta = read_image(path, window="none")
    np.testing.assert_allclose(full, pixels / 4095.0, atol=1e-6)
    assert meta.intensity == "full-range"
    mine, meta = read_image(path, window=(2048.0, 4096.0))
    expected = np.vectorize(_window_reference)(pixels.astype(float), 2048.0, 4096.0)
    np.testing.assert_allclose(mine, expected, atol=1e-6)
    stretched, meta = read_image(path, window="minmax")
    assert stretched.min() == 0.0 and stretched.max() == 1.0 and meta.intensity == "minmax"


def test_window_linear_exact_and_sigmoid_functions(tmp_path):
    pixels = ramp(top=255)
    exact, _ = read_image(
        write_dicom(tmp_path / "e.dcm", pixels, window=(128.0, 64.0), voi_function="LINEAR_EXACT")
    )
    np.testing.assert_allclose(exact, np.clip((pixels - 128.0) / 64.0 + 0.5, 0, 1), atol=1e-6)
    sig, meta = read_image(
        write_dicom(tmp_path / "s.dcm", pixels, window=(128.0, 64.0), voi_function="SIGMOID")
    )
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-4 * (pixels - 128.0) / 64.0)), atol=1e-6)
    assert meta.intensity.startswith("sigmoid")


def test_voi_lut_sequence_is_applied_and_scaled_by_the_table_range(tmp_path):
    pixels = ramp(top=255)
    table = [min(1000, 4 * v) for v in range(256)]  # 10-bit table, saturating at 1000
    image, meta = read_image(write_dicom(tmp_path / "l.dcm", pixels, voi_lut=(table, 0, 10)))
    expected = np.array([table[v] for v in pixels.ravel()]).reshape(pixels.shape) / 1000.0
    np.testing.assert_allclose(image, expected, atol=1e-6)
    assert meta.intensity == "voi-lut"


def test_compressed_rle_dicom_decodes_like_the_uncompressed_file(tmp_path):
    pixels = ramp(16, 16, top=4095, dtype="uint16")
    raw = write_dicom(tmp_path / "raw.dcm", pixels, bits_stored=12)
    ds = pydicom.dcmread(raw)
    ds.compress(RLELossless)
    ds.save_as(tmp_path / "rle.dcm")
    np.testing.assert_array_equal(read_image(tmp_path / "rle.dcm")[0], read_image(raw)[0])


def test_dicom_without_extension_preamble_or_file_meta_is_still_read(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", ramp())
    ds = pydicom.dcmread(path)
    del ds.file_meta
    ds.preamble = None
    buffer = io.BytesIO()  # a bare implicit-VR dataset, as old archives hold
    pydicom.dcmwrite(buffer, ds, enforce_file_format=False, implicit_vr=True, little_endian=True)
    for name in ("IM0001", "1.2.826.0.1.3680043.8.498.1"):  # no extension; named by UID
        plain = tmp_path / name
        plain.write_bytes(buffer.getvalue())
        np.testing.assert_array_equal(read_image(plain)[0], read_image(path)[0])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bits=st.integers(9, 16), seed=st.integers(0, 2**16), mono1=st.booleans())
def test_full_range_mapping_property(bits, seed, mono1):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 2**bits, size=(4, 3)).astype(np.uint16)
    with tempfile.TemporaryDirectory() as folder:
        photometric = "MONOCHROME1" if mono1 else "MONOCHROME2"
        image, _ = read_image(
            write_dicom(Path(folder) / "p.dcm", pixels, bits_stored=bits, photometric=photometric)
        )
    expected = pixels / float(2**bits - 1)
    np.testing.assert_allclose(image, 1 - expected if mono1 else expected, atol=1e-6)


# ----------------------------------------------------------------------------- PNG / JPEG


def test_png_8bit_16bit_and_rgb(tmp_path):
    gray = ramp(top=255)
    np.testing.assert_allclose(
        read_image(write_png(tmp_path / "g.png", gray))[0], gray / 255.0, atol=1e-6
    )
    deep = ramp(top=65535, dtype="uint16")
    image, meta = read_image(write_png(tmp_path / "d.png", deep))
    np.testing.assert_allclose(image, deep / 65535.0, atol=1e-7)
    assert meta.source_bits == 16 and meta.format == "png"
    rgb = np.stack([gray, gray[::-1], np.full_like(gray, 7)], axis=-1)
    image, meta = read_image(write_png(tmp_path / "c.png", rgb))
    luma = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255.0
    np.testing.assert_allclose(image, luma, atol=1e-5)
    assert meta.photometric == "RGB"


def test_jpeg_grayscale_reads_close_to_its_source(tmp_path):
    gray = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (32, 1))
    Image.fromarray(gray).save(tmp_path / "x.jpg", quality=95)
    image, meta = read_image(tmp_path / "x.jpg")
    assert meta.format == "jpeg" and image.shape == (32, 32)
    assert np.abs(image - gray / 255.0).max() < 0.05


def test_xrv_scale():
    np.testing.assert_allclose(xrv_scale(np.array([0.0, 0.25, 1.0])), [-1024.0, -512.0, 1024.0])


# ----------------------------------------------------------------------------- real data


def test_real_monochrome1_and_2_are_near_exact_inverses(cxr_dev):
    folder = cxr_dev / "dicom"
    mono2, meta2 = read_image(next(folder.glob("siim_*.dcm")))
    mono1, meta1 = read_image(folder / "Fake_MONOHR1.dcm")
    assert mono1.shape == mono2.shape == (1024, 1024)
    assert np.abs(mono1 + mono2 - 1.0).max() < 1e-6
    assert meta2.photometric == "MONOCHROME2" and meta1.photometric == "MONOCHROME1"
    assert meta1.view_position == "PA" and meta1.pixel_spacing == (0.168, 0.168)


def test_real_jpeg2000_monochrome1(cxr_dev):
    path = cxr_dev / "dicom" / "RG1_J2KI.dcm"
    image, meta = read_image(path)
    assert image.shape == (1955, 1841) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert meta.inverted and meta.intensity.startswith("window")
    ds = pydicom.dcmread(path)
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    sample = ds.pixel_array[::97, ::89].astype(float)
    expected = 1.0 - np.vectorize(_window_reference)(sample, center, width)
    np.testing.assert_allclose(image[::97, ::89], expected, atol=1e-5)


# ----------------------------------------------------------------------------- bad input


def test_missing_empty_and_folder(tmp_path):
    assert _kind(tmp_path / "nope.dcm").kind == "missing"
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "empty.png").write_bytes(b"")
    assert _kind(tmp_path / "empty.dcm").kind == "empty"
    assert _kind(tmp_path / "empty.png").kind == "empty"
    assert _kind(tmp_path).kind == "not-a-file"


@pytest.mark.parametrize("keep", [0.95, 0.6, 0.2])
def test_truncated_dicom_is_corrupt(tmp_path, keep):
    path = write_dicom(tmp_path / "t.dcm", ramp(20, 20, top=4095, dtype="uint16"), bits_stored=12)
    assert _kind(truncate(path, keep)).kind == "corrupt"


def test_truncated_compressed_real_dicom_is_corrupt(cxr_dev, tmp_path):
    path = Path(shutil.copy(cxr_dev / "dicom" / "RG1_J2KI.dcm", tmp_path / "j.dcm"))
    assert _kind(truncate(path, 0.7)).kind == "corrupt"


@pytest.mark.parametrize("keep", [0.8, 0.3, 0.1])
def test_truncated_png_is_corrupt(tmp_path, keep):
    path = write_png(
        tmp_path / "t.png", np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    )
    assert _kind(truncate(path, keep)).kind == "corrupt"


def test_garbage_files(tmp_path):
    (tmp_path / "junk.dcm").write_bytes(b"not a dicom at all " * 20)
    (tmp_path / "junk.png").write_bytes(b"not a png at all " * 20)
    assert _kind(tmp_path / "junk.dcm").kind == "corrupt"
    assert _kind(tmp_path / "junk.png").kind == "unsupported-format"


def test_unsupported_transfer_syntax(tmp_path):
    ds = pydicom.dcmread(write_dicom(tmp_path / "a.dcm", ramp()))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no decoder
    ds.PixelData = encapsulate([bytes(32)])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "mpeg.dcm")
    error = _kind(tmp_path / "mpeg.dcm")
    assert error.kind == "unsupported-transfer-syntax" and "MPEG2" in error.reason


def test_non_image_and_multi_frame_dicom(tmp_path):
    report = write_dicom(tmp_path / "sr.dcm", None, sop_class=BASIC_TEXT_SR)
    error = _kind(report)
    assert error.kind == "non-image" and "Basic Text SR" in error.reason
    frames = write_dicom(tmp_path / "mf.dcm", np.zeros((2, 4, 4), np.uint8), frames=2)
    assert _kind(frames).kind == "multi-frame"


def test_error_type_contract(tmp_path):
    error = _kind(tmp_path / "gone.png")
    assert isinstance(error, CxrError) and isinstance(error, OSError)
    copy = pickle.loads(pickle.dumps(error))  # crosses worker-process boundaries intact
    assert (copy.path, copy.reason, copy.kind) == (error.path, error.reason, error.kind)


def test_bad_window_argument(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", ramp())
    with pytest.raises(ValueError, match="window"):
        read_image(path, window="soft")
    with pytest.raises(ValueError, match="width"):
        read_image(path, window=(10.0, 0.0))
